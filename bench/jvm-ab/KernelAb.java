import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Two builds of the JVM kernels in one JVM, alternating: each tornado-kernels jar gets its own class loader (so both
 * forms of a kernel coexist), the same weights and activations, and rounds of launches of a decode matmul (int4 blocks
 * through QuantMatmul.launch, int8 rows or bf16 through Matmul's launchers, with the JVM's Vector API overrides; m rows
 * of activations, default 1) taken in turn, A then B, so that the shared machine's drift
 * hits both alike. Across separate JVMs the same comparison varied by +-15 %; this way a 2-8 % change showed
 * (docs/benchmarks.md, session 21). Prints each build's median and minimum microseconds a launch.
 *
 * <pre>java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED bench/jvm-ab/KernelAb.java \
 *     A.jar B.jar [rows 8192] [k 2048] [rounds 15] [launches a round 50] [int4|int8|bf16|q4_0|q8_0|q4_k|q5_k|q6_k] [m 1]</pre>
 */
public class KernelAb {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: KernelAb.java A.jar B.jar [rows] [k] [rounds] [launches]");
            System.exit(2);
        }
        int n = args.length > 2 ? Integer.parseInt(args[2]) : 8192, k = args.length > 3 ? Integer.parseInt(args[3]) : 2048;
        int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 15, launches = args.length > 5 ? Integer.parseInt(args[5]) : 50;
        String kind = args.length > 6 ? args[6] : "int4";
        int m = args.length > 7 ? Integer.parseInt(args[7]) : 1;
        Random random = new Random(1);
        float[] weights = new float[n * k], x = new float[m * k];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = (float) random.nextGaussian();
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        Build[] builds = {new Build(Path.of(args[0]), kind, weights, x, m, n, k), new Build(Path.of(args[1]), kind, weights, x, m, n, k)};
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
            System.out.printf("%s %s: median %d us, min %d us a launch (%d x %d %s, batch %d; rounds %s)%n", v == 0 ? "A" : "B", args[v],
                    sorted[rounds / 2], sorted[0], n, k, kind, m, Arrays.toString(us[v]));
        }
        for (Build b : builds) {
            b.close();
        }
    }

    /** One build's device, uploaded weights and the launch, all through reflection into its own class loader. */
    static final class Build {
        final URLClassLoader loader;
        final Object device;
        final Method launch;
        final Object[] arguments;
        final Random random = new Random(2);

        Build(Path jar, String kind, float[] weights, float[] x, int m, int n, int k) throws Exception {
            loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
            Class<?> deviceClass = loader.loadClass("io.lightllm.tornado.jvm.JvmDevice");
            Class<?> floatArray = loader.loadClass("io.lightllm.tornado.api.FloatArray");
            Class<?> nativeArray = loader.loadClass("io.lightllm.tornado.api.NativeArray");
            Class<?> dtype = loader.loadClass("io.lightllm.tornado.api.DType");
            Class<?> quantFormat = loader.loadClass("io.lightllm.kernels.QuantFormat");
            Class<?> matmul = loader.loadClass("io.lightllm.kernels.Matmul");
            Class<?> runtimeDevice = loader.loadClass("io.lightllm.tornado.runtime.Device");
            Class<?> buffer = loader.loadClass("io.lightllm.tornado.runtime.DeviceBuffer");
            device = deviceClass.getConstructor(int.class).newInstance(2);
            loader.loadClass("io.lightllm.kernels.KernelLibrary").getMethod("installOverrides", runtimeDevice).invoke(null, device);
            Method fromArray = floatArray.getMethod("fromArray", float[].class);
            Method upload = runtimeDevice.getMethod("upload", nativeArray);
            Object floats = fromArray.invoke(null, (Object) weights);
            Object a = upload.invoke(device, fromArray.invoke(null, (Object) x));
            Object out = runtimeDevice.getMethod("allocate", dtype, long.class).invoke(device, dtype.getField("F32").get(null), (long) m * n);
            switch (kind) {
                case "int4" -> {
                    Object packed = quantFormat.getMethod("quantizeInt4", nativeArray, int.class, int.class).invoke(null, floats, n, k);
                    launch = loader.loadClass("io.lightllm.kernels.QuantMatmul").getMethod("launch", runtimeDevice, buffer, buffer, buffer, quantFormat,
                            buffer, int.class, int.class, int.class);
                    arguments = new Object[] {device, out, a, upload.invoke(device, packed), quantFormat.getField("INT4").get(null), null, m, n, k};
                }
                case "int8" -> {
                    Object q = matmul.getMethod("quantizeInt8", nativeArray, int.class, int.class).invoke(null, floats, n, k);
                    Object codes = q.getClass().getMethod("weights").invoke(q), scales = q.getClass().getMethod("scales").invoke(q);
                    launch = matmul.getMethod("launchMatmulInt8", runtimeDevice, buffer, buffer, buffer, buffer, buffer, int.class, int.class, int.class);
                    arguments = new Object[] {device, out, a, upload.invoke(device, codes), upload.invoke(device, scales), null, m, n, k};
                }
                case "bf16" -> {
                    Object bf16 = nativeArray.getMethod("allocate", dtype, long.class).invoke(null, dtype.getField("BF16").get(null), (long) n * k);
                    Method set = nativeArray.getMethod("setFloat", int.class, float.class);
                    for (int i = 0; i < n * k; i++) {
                        set.invoke(bf16, i, weights[i]);
                    }
                    launch = matmul.getMethod("launchMatmul", runtimeDevice, buffer, buffer, buffer, buffer, int.class, int.class, int.class);
                    arguments = new Object[] {device, out, a, upload.invoke(device, bf16), null, m, n, k};
                }
                case "q4_0", "q8_0", "q4_k", "q5_k", "q6_k" -> { // GGUF blocks of random codes and scales, as QuantMatmulTest's
                    Object format = quantFormat.getField(kind.toUpperCase()).get(null);
                    long rowBytes = (long) quantFormat.getMethod("rowBytes", int.class).invoke(format, k);
                    int blockBytes = (int) quantFormat.getMethod("blockBytes").invoke(format);
                    Object blocks = loader.loadClass("io.lightllm.tornado.api.ByteArray").getMethod("allocate", int.class)
                            .invoke(null, Math.toIntExact(n * rowBytes));
                    var seg = (java.lang.foreign.MemorySegment) nativeArray.getMethod("segment").invoke(blocks);
                    var f16 = java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
                    for (long i = 0; i < seg.byteSize(); i++) {
                        seg.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) random.nextInt(256));
                    }
                    for (long at = 0; at < seg.byteSize(); at += blockBytes) {
                        float scale = (float) (0.5 + random.nextDouble() / 2) / 64;
                        switch (kind) {
                            case "q4_k", "q5_k" -> {
                                seg.set(f16, at, Float.floatToFloat16(scale / 8));
                                seg.set(f16, at + 2, Float.floatToFloat16(scale));
                            }
                            case "q6_k" -> seg.set(f16, at + 208, Float.floatToFloat16(scale / 8));
                            default -> seg.set(f16, at, Float.floatToFloat16(scale));
                        }
                    }
                    launch = loader.loadClass("io.lightllm.kernels.QuantMatmul").getMethod("launch", runtimeDevice, buffer, buffer, buffer, quantFormat,
                            buffer, int.class, int.class, int.class);
                    arguments = new Object[] {device, out, a, upload.invoke(device, blocks), format, null, m, n, k};
                }
                default -> throw new IllegalArgumentException("kind int4, int8, bf16, q4_0, q8_0, q4_k, q5_k or q6_k, not " + kind);
            }
        }

        void launch() throws Exception {
            launch.invoke(null, arguments);
        }

        void close() throws Exception {
            ((AutoCloseable) device).close();
            loader.close();
        }
    }
}
