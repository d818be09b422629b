import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * KernelAb's method for the JVM decode attention: two tornado-kernels builds (a class loader each) run
 * {@code bench kernels}' attention cases (KernelBench.runAttention at the 1B model's shapes, f16, int8 and fp8 pools) in
 * turn, A then B, round after round in one JVM, so that the shared machine's drift hits both alike (separate
 * `bench kernels` runs of one build varied 2x at batch 1). Prints each case's median microseconds a launch per build.
 *
 * <pre>java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED bench/jvm-ab/AttentionAb.java \
 *     A.jar B.jar [batch 1] [context 1024] [rounds 9] [seconds a case 0.5]</pre>
 */
public class AttentionAb {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: AttentionAb.java A.jar B.jar [batch] [context] [rounds] [seconds]");
            System.exit(2);
        }
        int batch = args.length > 2 ? Integer.parseInt(args[2]) : 1, context = args.length > 3 ? Integer.parseInt(args[3]) : 1024;
        int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 9;
        double seconds = args.length > 5 ? Double.parseDouble(args[5]) : 0.5;
        Build[] builds = {new Build(Path.of(args[0])), new Build(Path.of(args[1]))};
        List<Map<String, List<Double>>> times = List.of(new TreeMap<>(), new TreeMap<>());
        for (int round = 0; round < rounds + 1; round++) { // round 0 warms both up
            for (int v = 0; v < 2; v++) {
                for (Object[] r : builds[v].run(batch, context, seconds)) {
                    if (round > 0) {
                        times.get(v).computeIfAbsent((String) r[0], k -> new ArrayList<>()).add((Double) r[1]);
                    }
                }
            }
        }
        for (String shape : times.get(0).keySet()) {
            System.out.printf("%-40s A %8.1f us  B %8.1f us (medians of %d)%n", shape, median(times.get(0).get(shape)),
                    median(times.get(1).get(shape)), rounds);
        }
    }

    static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(null);
        return s.get(s.size() / 2);
    }

    /** One build's JVM device with its overrides and the bench, through reflection into its own class loader. */
    static final class Build {
        final Object device, shape;
        final Class<?> bench, runtimeDevice;

        Build(Path jar) throws Exception {
            URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
            runtimeDevice = loader.loadClass("io.lightllm.tornado.runtime.Device");
            device = loader.loadClass("io.lightllm.tornado.jvm.JvmDevice").getConstructor(int.class).newInstance(2);
            loader.loadClass("io.lightllm.kernels.KernelLibrary").getMethod("installOverrides", runtimeDevice).invoke(null, device);
            bench = loader.loadClass("io.lightllm.kernels.bench.KernelBench");
            shape = loader.loadClass("io.lightllm.kernels.bench.KernelBench$Shape").getField("LLAMA_1B").get(null);
        }

        /** (shape, microseconds a launch) of each attention case. */
        List<Object[]> run(int batch, int context, double seconds) throws Exception {
            Object b = bench.getConstructor(runtimeDevice, double.class).newInstance(device, seconds);
            Method run = bench.getMethod("runAttention", shape.getClass(), int[].class, int[].class, List.class);
            java.io.PrintStream out = System.out;
            System.setOut(new java.io.PrintStream(java.io.OutputStream.nullOutputStream())); // the bench prints its rows
            try {
                run.invoke(b, shape, new int[] {batch}, new int[] {context}, List.of()); // no prefill cases
            } finally {
                System.setOut(out);
            }
            List<Object[]> rows = new ArrayList<>();
            for (Object r : (List<?>) bench.getMethod("results").invoke(b)) {
                rows.add(new Object[] {r.getClass().getMethod("shape").invoke(r), r.getClass().getMethod("microsPerLaunch").invoke(r)});
            }
            return rows;
        }
    }
}
