package io.lightllm.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link Int4TensorGemv} on the JVM (warps emulated) and every accelerator against a double-precision product of the
 * bf16-rounded activations with the blocks as {@link QuantBlocks} decodes them (f32 scale times code, less the offset):
 * INT4 and INT4_ZP, 1, 3 and 8 batch rows, a row count that ends inside a tile, with and without a bias, k shared by
 * 1, 2, 8 and (where the device allows groups of 16 warps) 16 warps (all but 3 past k's 3 blocks), the kernels' four pipelines, and the gated form
 * with its activation.
 */
class Int4TensorGemvTest {
    private static final int N = 40, K = 384;
    /** One or two blocks ahead, each step's activations loaded before it or a block's at once (CUDA's default: one ahead, at once). */
    private static final Int4TensorGemv.Pipeline[] PIPELINES = {new Int4TensorGemv.Pipeline(false, false), new Int4TensorGemv.Pipeline(false, true),
        new Int4TensorGemv.Pipeline(true, false), new Int4TensorGemv.Pipeline(true, true)};

    /**
     * The product and the f32 bound of any summation order of its terms: the kernel sums s (q - c) x per block (c = 8 for
     * INT4) and for INT4_ZP s Σ q x - o Σ x, so each term's magnitude is |x| (|s q'| + |o|); (k + 3) roundings of
     * that (MatmulReference's bound), twice for the tensor cores' own order as QuantTensorGemmTest allows.
     */
    private record Reference(double[] value, double[] bound) {
        static Reference of(QuantFormat format, ByteArray blocks, FloatArray a, FloatArray bias, int m, int n, int k) {
            double[] value = new double[m * n];
            double[] bound = new double[m * n];
            int bytes = QuantBlocks.blockBytes(format.code());
            for (int b = 0; b < m; b++) {
                for (int row = 0; row < n; row++) {
                    double s = 0, magnitude = 0;
                    for (int c = 0; c < k; c++) {
                        int rowAt = row * (k / 128) * bytes;
                        double scale = QuantBlocks.scale(blocks, format.code(), rowAt, k, c);
                        double offset = QuantBlocks.offset(blocks, format.code(), rowAt, k, c);
                        int code = QuantBlocks.code(blocks, format.code(), rowAt, k, c);
                        double x = bf16(a.get(b * k + c));
                        s += x * (scale * code - offset);
                        magnitude += Math.abs(x) * (Math.abs(scale * code) + Math.abs(offset));
                    }
                    double add = bias == null ? 0 : bias.get(row);
                    value[b * n + row] = s + add;
                    bound[b * n + row] = 2 * (k + 3) * MatmulReference.UNIT_ROUNDOFF * (magnitude + Math.abs(add));
                }
            }
            return new Reference(value, bound);
        }

        /**
         * act(gate) * up (SiLU) of a reference over [gate; up] rows (m rows of 2 width): the activation moves an error e of
         * the gate by at most 1.1 e (SiLU's slope), the product adds the up's error times |act(gate)| and a few roundings.
         */
        Reference gated(int m, int width) {
            double[] value = new double[m * width];
            double[] bound = new double[m * width];
            for (int r = 0; r < m; r++) {
                for (int p = 0; p < width; p++) {
                    int gateAt = r * 2 * width + p, upAt = gateAt + width;
                    double gate = value()[gateAt], up = value()[upAt];
                    double silu = gate / (1 + Math.exp(-gate));
                    value[r * width + p] = silu * up;
                    bound[r * width + p] = 1.1 * bound()[gateAt] * Math.abs(up) + Math.abs(silu) * bound()[upAt] + 1e-5 * Math.abs(silu * up);
                }
            }
            return new Reference(value, bound);
        }
    }

    @Test
    void int4BlocksTimesUpToSixteenRowsMatchTheRoundedProduct() {
        FloatArray bias = TensorAssert.random(N, 1f, 1);
        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            ByteArray blocks = QuantMatmulTest.randomBlocks(format, N, K, 2);
            for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
                DeviceBuffer w = device.upload(blocks), b = device.upload(bias);
                for (int m : new int[] {1, 3, 8, 9, 16}) { // one B fragment a k-step up to 8 rows, two beyond
                    FloatArray a = TensorAssert.random(m * K, 1f, 3 + m);
                    DeviceBuffer in = device.upload(a);
                    for (boolean withBias : new boolean[] {false, true}) {
                        Reference ref = Reference.of(format, blocks, a, withBias ? bias : null, m, N, K);
                        for (int parts : new int[] {1, 2, 8, 16}) {
                            if (parts > Int4TensorGemv.maxParts(device)) {
                                continue;
                            }
                            for (Int4TensorGemv.Pipeline pipeline : PIPELINES) {
                                DeviceBuffer out = device.allocate(DType.F32, (long) m * N);
                                Elementwise.launchFill(device, out, Float.NaN, m * N);
                                int tiles = (N + 15) / 16;
                                device.launch(Int4TensorGemv.gemvKernel(format, pipeline, m), Int4TensorGemv.grid(tiles, parts), out, in, w,
                                        withBias ? b : out, withBias, m, N, K, parts);
                                assertWithin(ref.value(), ref.bound(), (FloatArray) device.download(out), device.id() + " " + format + ", m " + m
                                        + (withBias ? ", bias" : "") + ", " + parts + " parts, " + pipeline);
                            }
                        }
                    }
                }
            }
        }
    }

    /** The gated form: act(gate) * up from the two references ({@link Reference#gated}). */
    @Test
    void gatedInt4BlocksMatchTheActivatedProduct() {
        int width = 24; // 2 x 24 rows: the up rows start inside the gate rows' second tile
        FloatArray bias = TensorAssert.random(2 * width, 1f, 11);
        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            ByteArray blocks = QuantMatmulTest.randomBlocks(format, 2 * width, K, 12);
            for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
                DeviceBuffer w = device.upload(blocks), b = device.upload(bias);
                for (int m : new int[] {1, 5, 12}) {
                    FloatArray a = TensorAssert.random(m * K, 1f, 13 + m);
                    Reference ref = Reference.of(format, blocks, a, bias, m, 2 * width, K).gated(m, width);
                    for (int parts : new int[] {1, 2}) {
                        for (Int4TensorGemv.Pipeline pipeline : PIPELINES) {
                            DeviceBuffer out = device.allocate(DType.F32, (long) m * width);
                            Elementwise.launchFill(device, out, Float.NaN, m * width);
                            device.launch(Int4TensorGemv.gatedKernel(format, pipeline, m), Int4TensorGemv.grid((width + 15) / 16, parts), out,
                                    device.upload(a), w, b, true, m, width, K, parts, Activations.Kind.SILU.code);
                            assertWithin(ref.value(), ref.bound(), (FloatArray) device.download(out), device.id() + " gated " + format + ", m " + m + ", "
                                    + parts + " parts, " + pipeline);
                        }
                    }
                }
            }
        }
    }

    /**
     * Tuned on (the JVM's {@code matmul.int4_mma_gemv_max_m}), QuantMatmul's launchers take the path up to that many rows
     * and not beyond; the results equal the kernel's own reference.
     */
    @Test
    void launchersTakeThePathWhereTuned() {
        TestProperties.with(Map.of("lightllm.tuning.jvm.matmul.int4_mma_gemv_max_m", "12"), () -> {
            try (JvmDevice jvm = new JvmDevice(2)) {
                KernelLibrary.installOverrides(jvm);
                assertTrue(Int4TensorGemv.applies(jvm, QuantFormat.INT4, 1, 256));
                assertTrue(Int4TensorGemv.applies(jvm, QuantFormat.INT4_ZP, 12, 256));
                assertFalse(Int4TensorGemv.applies(jvm, QuantFormat.INT4, 13, 256));
                assertFalse(Int4TensorGemv.applies(jvm, QuantFormat.INT4, 1, 200));
                assertFalse(Int4TensorGemv.applies(jvm, QuantFormat.Q4_0, 1, 256));
                assertTrue(QuantMatmul.gatedApplies(jvm, QuantFormat.INT4, 3, 256));
                assertEquals(16, Int4TensorGemv.maxParts(jvm), "the JVM runs groups of 16 warps (tornado.properties)");
                int m = 11, n = 24, k = 256;
                FloatArray a = TensorAssert.random(m * k, 1f, 21);
                ByteArray blocks = QuantMatmulTest.randomBlocks(QuantFormat.INT4, n, k, 22);
                Reference ref = Reference.of(QuantFormat.INT4, blocks, a, null, m, n, k);
                DeviceBuffer out = jvm.allocate(DType.F32, (long) m * n);
                Elementwise.launchFill(jvm, out, Float.NaN, m * n);
                QuantMatmul.launch(jvm, out, jvm.upload(a), jvm.upload(blocks), QuantFormat.INT4, null, m, n, k);
                assertWithin(ref.value(), ref.bound(), (FloatArray) jvm.download(out), "int4 through QuantMatmul.launch");
                DeviceBuffer gated = jvm.allocate(DType.F32, (long) m * n / 2);
                Elementwise.launchFill(jvm, gated, Float.NaN, m * n / 2);
                QuantMatmul.launchGated(jvm, gated, jvm.upload(a), jvm.upload(blocks), QuantFormat.INT4, null, Activations.Kind.SILU, m, n / 2, k);
                Reference gatedRef = ref.gated(m, n / 2);
                assertWithin(gatedRef.value(), gatedRef.bound(), (FloatArray) jvm.download(gated), "gated through QuantMatmul.launchGated");
            }
        });
    }

    private static void assertWithin(double[] expected, double[] bound, FloatArray got, String what) {
        assertEquals(expected.length, got.getSize(), what + ": size");
        for (int i = 0; i < expected.length; i++) {
            float g = got.get(i);
            assertTrue(Math.abs(g - expected[i]) <= bound[i], what + ": element " + i + " is " + g + ", expected " + expected[i] + " +- " + bound[i]);
        }
    }

    private static float bf16(float x) {
        return KMath.bf16ToFloat(KMath.floatToBf16(x));
    }
}
