import java.lang.reflect.Method;
import java.nio.file.Path;
import java.util.function.Function;

/**
 * A Hugging Face Llama checkpoint as a GGUF file of llama.cpp's block types, for the CPU benchmarks of GGUF models
 * (docs/benchmarks.md, session 37): the tests' converter ({@code GgufArchitecturesTest.convert}, llama.cpp's reference
 * quantisers without an importance matrix) under one of {@code GgufQuantizedTest}'s policies (Q4_K_M: Q6_K for the
 * head, v and down projections, Q4_K elsewhere; Q8_0, Q4_0, Q4_K, Q5_K, Q6_K: every matrix). A benchmark helper, not
 * part of the product; needs the test classes (./mvnw -q -B package -DskipTests compiles them).
 *
 * <pre>CP="models/target/test-classes:tornado-kernels/target/test-classes:tornado-kernels/target/tornado-kernels-0.1.0-SNAPSHOT.jar:models/target/models-0.1.0-SNAPSHOT.jar:server/target/lib/*"
 * java -Xmx20g --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$CP" bench/gguf/MakeGguf.java \
 *     /tmp/llama1b-32k /tmp/llama1b-q4km.gguf Q4_K_M</pre>
 */
public class MakeGguf {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MakeGguf.java HF_DIR OUT.gguf Q4_K_M|Q8_0|Q4_0|Q4_K|Q5_K|Q6_K");
            System.exit(2);
        }
        Method policy = Class.forName("io.lightllm.models.gguf.GgufQuantizedTest").getDeclaredMethod("policy", String.class);
        Method convert = Class.forName("io.lightllm.models.gguf.GgufArchitecturesTest")
                .getDeclaredMethod("convert", Path.class, String.class, Path.class, Function.class, boolean.class);
        policy.setAccessible(true);
        convert.setAccessible(true);
        long start = System.nanoTime();
        convert.invoke(null, Path.of(args[0]), "llama", Path.of(args[1]), policy.invoke(null, args[2]), false);
        System.out.printf("%s written in %.1f s%n", args[1], (System.nanoTime() - start) / 1e9);
    }
}
