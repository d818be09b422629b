import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Two builds of the JVM kernels in one JVM, alternating: each tornado-kernels jar gets its own class loader (so both
 * forms of a kernel coexist), the same int4 weights and activations, and rounds of launches of the batch-1 int4 GEMV
 * (QuantMatmul.launch with the JVM's Vector API overrides) taken in turn, A then B, so that the shared machine's drift
 * hits both alike. Across separate JVMs the same comparison varied by +-15 %; this way a 2-8 % change showed
 * (docs/benchmarks.md, session 21). Prints each build's median and minimum microseconds a launch.
 *
 * <pre>java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED bench/jvm-ab/KernelAb.java \
 *     A.jar B.jar [rows 8192] [k 2048] [rounds 15] [launches a round 50]</pre>
 */
public class KernelAb {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: KernelAb.java A.jar B.jar [rows] [k] [rounds] [launches]");
            System.exit(2);
        }
        int n = args.length > 2 ? Integer.parseInt(args[2]) : 8192, k = args.length > 3 ? Integer.parseInt(args[3]) : 2048;
        int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 15, launches = args.length > 5 ? Integer.parseInt(args[5]) : 50;
        Random random = new Random(1);
        float[] weights = new float[n * k], x = new float[k];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = (float) random.nextGaussian();
        }
        for (int i = 0; i < k; i++) {
            x[i] = (float) random.nextGaussian();
        }
        Build[] builds = {new Build(Path.of(args[0]), weights, x, n, k), new Build(Path.of(args[1]), weights, x, n, k)};
        for (Build b : builds) { // warm up until C2 has the loops (a few seconds of launches)
            for (int i = 0; i < 3000; i++) {
                b.launch();
            }
        }
        long[][] us = new long[2][rounds];
        for (int round = 0; round < rounds; round++) {
            for (int v = 0; v < 2; v++) {
                long start = System.nanoTime();
                for (int i = 0; i < launches; i++) {
                    builds[v].launch();
                }
                us[v][round] = (System.nanoTime() - start) / launches / 1000;
            }
        }
        for (int v = 0; v < 2; v++) {
            long[] sorted = us[v].clone();
            Arrays.sort(sorted);
            System.out.printf("%s %s: median %d us, min %d us a launch (%d x %d int4, batch 1; rounds %s)%n", v == 0 ? "A" : "B", args[v],
                    sorted[rounds / 2], sorted[0], n, k, Arrays.toString(us[v]));
        }
        for (Build b : builds) {
            b.close();
        }
    }

    /** One build's device, uploaded weights and the launch, all through reflection into its own class loader. */
    static final class Build {
        final URLClassLoader loader;
        final Object device, out, a, w, format;
        final Method launch;
        final int n, k;

        Build(Path jar, float[] weights, float[] x, int n, int k) throws Exception {
            this.n = n;
            this.k = k;
            loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
            Class<?> deviceClass = loader.loadClass("io.lightllm.tornado.jvm.JvmDevice");
            Class<?> floatArray = loader.loadClass("io.lightllm.tornado.api.FloatArray");
            Class<?> nativeArray = loader.loadClass("io.lightllm.tornado.api.NativeArray");
            Class<?> dtype = loader.loadClass("io.lightllm.tornado.api.DType");
            Class<?> quantFormat = loader.loadClass("io.lightllm.kernels.QuantFormat");
            Class<?> runtimeDevice = loader.loadClass("io.lightllm.tornado.runtime.Device");
            Class<?> buffer = loader.loadClass("io.lightllm.tornado.runtime.DeviceBuffer");
            device = deviceClass.getConstructor(int.class).newInstance(2);
            loader.loadClass("io.lightllm.kernels.KernelLibrary").getMethod("installOverrides", runtimeDevice).invoke(null, device);
            Method fromArray = floatArray.getMethod("fromArray", float[].class);
            Object packed = quantFormat.getMethod("quantizeInt4", nativeArray, int.class, int.class).invoke(null, fromArray.invoke(null, (Object) weights), n, k);
            Method upload = runtimeDevice.getMethod("upload", nativeArray);
            w = upload.invoke(device, packed);
            a = upload.invoke(device, fromArray.invoke(null, (Object) x));
            out = runtimeDevice.getMethod("allocate", dtype, long.class).invoke(device, dtype.getField("F32").get(null), (long) n);
            format = quantFormat.getField("INT4").get(null);
            launch = loader.loadClass("io.lightllm.kernels.QuantMatmul").getMethod("launch", runtimeDevice, buffer, buffer, buffer, quantFormat, buffer,
                    int.class, int.class, int.class);
        }

        void launch() throws Exception {
            launch.invoke(null, device, out, a, w, format, null, 1, n, k);
        }

        void close() throws Exception {
            ((AutoCloseable) device).close();
            loader.close();
        }
    }
}
