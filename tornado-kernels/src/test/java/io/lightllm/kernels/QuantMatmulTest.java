package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.kernels.jvm.VectorQuantMatmul;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The packed-weight kernels against the product of the dequantised weights ({@link QuantFormat#dequantize},
 * then the double-precision {@link MatmulReference}, whose float32 bound covers any order of the sums:
 * the kernels compute each weight exactly as the dequantisation does, up to one rounding of
 * scale * code - offset). The weights are random bytes, every bit pattern a valid code, with sane
 * scales written over the scale fields: all codes, signs and scale combinations occur.
 */
class QuantMatmulTest {
    private static final int M = 11, N = 13;

    /** Random blocks for [rows, k]: random codes, scales in [0.5, 1) / 64 (f16 or f32) where the format keeps them. */
    static ByteArray randomBlocks(QuantFormat format, int rows, int k, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = Math.toIntExact(rows * format.rowBytes(k) / format.blockBytes());
        ByteArray w = ByteArray.allocate(blocks * format.blockBytes());
        for (int i = 0; i < w.getSize(); i++) {
            w.set(i, (byte) r.nextInt(256));
        }
        ValueLayout.OfShort f16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        int groups = QuantBlocks.rowBlocks(format.code(), k), rowBytes = Math.toIntExact(format.rowBytes(k));
        for (int b = 0; b < blocks; b++) {
            long at = b * format.blockBytes();
            // an int4 group's scale (and offset) follow its row's codes
            long termsAt = QuantBlocks.int4ScaleAt(format.code(), b / groups * rowBytes, groups, b % groups);
            float scale = (float) (0.5 + r.nextDouble() / 2) / 64;
            switch (format) {
                case INT4 -> w.segment().set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), termsAt, scale);
                case Q4_0, Q8_0 -> w.segment().set(f16, at, Float.floatToFloat16(scale));
                case Q4_K, Q5_K -> {
                    w.segment().set(f16, at, Float.floatToFloat16(scale / 8));
                    w.segment().set(f16, at + 2, Float.floatToFloat16(scale));
                }
                case Q6_K -> w.segment().set(f16, at + 208, Float.floatToFloat16(scale / 8));
                case INT4_ZP -> { // offset = scale x a zero point in [0, 15]
                    w.segment().set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), termsAt, scale);
                    w.segment().set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), termsAt + 4, scale * r.nextInt(16));
                }
            }
        }
        return w;
    }

    private static void check(Device device, KernelRef kernel, Grid grid, QuantFormat format, int m, int k, boolean withBias,
            Integer columns, boolean portable) {
        check(device, kernel, grid, format, m, N, k, withBias, columns, portable);
    }

    private static void check(Device device, KernelRef kernel, Grid grid, QuantFormat format, int m, int n, int k, boolean withBias,
            Integer columns, boolean portable) {
        FloatArray a = TensorAssert.random(m * k, 1f, 31);
        ByteArray w = randomBlocks(format, n, k, 32);
        FloatArray bias = withBias ? TensorAssert.random(n, 1f, 33) : null;
        MatmulReference ref = MatmulReference.of(a, format.dequantize(w.segment(), n, k), null, bias, m, n, k);
        DeviceBuffer out = device.allocate(DType.F32, m * n);
        Object[] args = {out, device.upload(a), device.upload(w), format.code(), withBias ? device.upload(bias) : out, withBias, m, n, k, columns};
        Object[] used = columns == null ? java.util.Arrays.copyOf(args, args.length - 1) : args;
        if (portable) {
            device.launchPortable(kernel, grid, used);
        } else {
            device.launch(kernel, grid, used);
        }
        // one more rounding per weight (scale * code - offset, possibly fused) than the reference's sums; the JVM's
        // int4 and Q4_K GEMVs round the activations to int8 too (x^ within scale / 2 of x, scale = max |x| / 127 per group
        // of 128, of 256 for Q4_K)
        boolean jvmQ8 = !portable && VectorQuantMatmul.int8Activations(format, m, k);
        float activations = kernel == QuantMatmul.GEMV_INT4_Q8 || jvmQ8 ? activationRoundingBound(a, format.dequantize(w.segment(), n, k), m, n, k,
                jvmQ8 ? VectorQuantMatmul.int8ActivationGroup(format) : 128) : 0f;
        assertClose(ref.expected(), device.download(out), 2 * ref.errorBound() + activations, 0f,
                device.id() + " " + kernel.name() + " " + format + " m=" + m + " k=" + k + (columns == null ? "" : " columns " + columns));
    }

    /**
     * The most the product with int8-rounded activations can differ from the exact one: over the outputs, the sum over
     * groups of {@code group} elements (each rounded with its own scale) of (max |x| / 127) / 2 times the group's sum of |w|.
     */
    static float activationRoundingBound(FloatArray a, FloatArray w, int m, int n, int k, int group) {
        double most = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double bound = 0;
                for (int g = 0; g < k / group; g++) {
                    double max = 0, weights = 0;
                    for (int e = group * g; e < group * g + group; e++) {
                        max = Math.max(max, Math.abs(a.get(i * k + e)));
                        weights += Math.abs(w.get(j * k + e));
                    }
                    bound += max / 127 / 2 * weights;
                }
                most = Math.max(most, bound);
            }
        }
        return (float) most;
    }

    /**
     * One block, several, and for int4 a partial last group (k = 200, not even a multiple of the 16-element runs) and
     * 9 blocks (1152: the GEMV's items take blocks four steps at a time, so a row ends part way through a step).
     */
    private static int[] ks(QuantFormat format) {
        return format == QuantFormat.INT4 ? new int[] {128, 200, 512, 1152}
                : format == QuantFormat.INT4_ZP ? new int[] {256, 512, 1152} : new int[] {format.blockSize() == 32 ? 160 : 256, 512};
    }

    /** The launcher's GEMV grid: at batch 1 over whole int4 blocks, a team per 4 weight rows (N = 13: a partial team). */
    private static Grid gemvGrid(QuantFormat format, int m, int k, int local, int columns) {
        return Matmul.gemvGrid(m, N, local, columns, QuantMatmul.rowsPerTeam(format.code(), m, k, local / columns));
    }

    @ParameterizedTest
    @EnumSource(QuantFormat.class)
    void portableKernelsMatchTheDequantisedProductOnTheJvm(QuantFormat format) {
        Device jvm = TestDevices.jvm();
        for (int k : ks(format)) {
            for (int tile : new int[] {1, 4, 16}) {
                check(jvm, QuantMatmul.TILED, Matmul.tiledGrid(M, N, tile), format, M, k, tile == 4, null, true);
            }
            for (int local : new int[] {1, 4, 64}) {
                for (int m : new int[] {1, M}) {
                    int columns = local == 4 ? 2 : 1;
                    check(jvm, QuantMatmul.GEMV, gemvGrid(format, m, k, local, columns), format, m, k, m == 1, columns, true);
                }
            }
        }
    }

    /** The JVM's Vector API override (rows decoded 16 codes at a time), for decode (m < 4) and prefill sizes. */
    @ParameterizedTest
    @EnumSource(QuantFormat.class)
    void jvmOverrideMatchesTheDequantisedProduct(QuantFormat format) {
        try (JvmDevice jvm = new JvmDevice(2)) {
            KernelLibrary.installOverrides(jvm);
            assertTrue(jvm.hasOverride(QuantMatmul.GEMV) && jvm.hasOverride(QuantMatmul.TILED));
            for (int k : ks(format)) {
                for (int m : new int[] {1, 3, 9, 37}) { // 37: the outer-product GEMM (m >= 32)
                    check(jvm, QuantMatmul.GEMV, Matmul.gemvGrid(m, N, 1, 1), format, m, k, m == 3 || m == 37, 1, false);
                }
                check(jvm, QuantMatmul.TILED, Matmul.tiledGrid(M, N, 16), format, M, k, true, null, false);
            }
        }
    }

    /**
     * The JVM's int4 GEMV over enough rows that each thread streams four runs of rows at once ({@code Int4Gemv}: 301
     * rows, tasks of 37 split in quarters of 10, the rows left over one at a time), batch 1 and 3.
     */
    @Test
    void jvmInt4GemvOverManyRowsMatchesTheDequantisedProduct() {
        try (JvmDevice jvm = new JvmDevice(2)) {
            KernelLibrary.installOverrides(jvm);
            for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
                for (int m : new int[] {1, 3}) {
                    check(jvm, QuantMatmul.GEMV, Matmul.gemvGrid(m, 301, 1, 1), format, m, 301, 256, true, 1, false);
                }
            }
        }
    }

    @Test
    void acceleratorsMatchTheDequantisedProduct() {
        for (String id : TestDevices.accelerators()) {
            Device device = Devices.get(id);
            for (QuantFormat format : QuantFormat.values()) {
                // int4 at 512 too: whole 128-element groups take the word-per-item path (QuantMatmul.int4Sums)
                for (int k : format == QuantFormat.INT4 ? new int[] {200, 512} : new int[] {512}) {
                    check(device, QuantMatmul.TILED, Matmul.tiledGrid(M, N, 16), format, M, k, true, null, false);
                    for (int local : new int[] {64, 256}) {
                        for (int m : new int[] {1, M}) {
                            check(device, QuantMatmul.GEMV, gemvGrid(format, m, k, local, local / 32), format, m, k, false, local / 32, false);
                        }
                    }
                }
            }
        }
    }

    /**
     * The batch-1 int4 GEMV on int8 activations (dp4a on CUDA) on every device: within the activations' rounding of the
     * f32 product, for one group, several, and a number of groups that leaves the last step's second half of a
     * 32-item team without a group (1152 = 9 groups); teams of 64, 32 and 16 items (two 16s in one warp), and
     * 13 rows (a partial team of 4).
     */
    @Test
    void int4GemvOnInt8ActivationsMatchesTheDequantisedProductWithinTheirRounding() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            checkInt4GemvOnInt8Activations(device);
        }
        // the JVM with sub-groups of a warp (tuning jvm.sub_groups=32): the warp teams' reductions by shuffles, as on CUDA
        io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.sub_groups", "32"),
                () -> checkInt4GemvOnInt8Activations(TestDevices.jvm()));
        // the launcher takes it where the tuning matmul.int4_q8 says so (and work-groups are whole warps: the JVM's GEMV
        // groups are single items unless reduce.local says otherwise): the same floats as the kernel launched directly
        String q8 = "lightllm.tuning.jvm.matmul.int4_q8", local = "lightllm.tuning.jvm.reduce.local";
        Device jvm = TestDevices.jvm();
        FloatArray a = TensorAssert.random(512, 1f, 51);
        ByteArray w = randomBlocks(QuantFormat.INT4, N, 512, 52);
        System.setProperty(local, "64");
        try {
            DeviceBuffer direct = jvm.allocate(DType.F32, N);
            int columns = Matmul.fillingGemvColumns(jvm, 1, N, Matmul.GEMV_ROWS_PER_TEAM);
            jvm.launchPortable(QuantMatmul.GEMV_INT4_Q8, Matmul.gemvGrid(1, N, 64, columns, Matmul.GEMV_ROWS_PER_TEAM), direct, jvm.upload(a),
                    jvm.upload(w), QuantFormat.INT4.code(), direct, false, 1, N, 512, columns);
            System.setProperty(q8, "1");
            DeviceBuffer out = jvm.allocate(DType.F32, N);
            QuantMatmul.launch(jvm, out, jvm.upload(a), jvm.upload(w), QuantFormat.INT4, null, 1, N, 512);
            assertClose(jvm.download(direct), jvm.download(out), 0f, 0f, "launcher under matmul.int4_q8=1");
        } finally {
            System.clearProperty(q8);
            System.clearProperty(local);
        }
        // its grid follows matmul.int4_q8_items_per_unit where set (CUDA's 768, session 22), not gemv_items_per_unit: with
        // eight 16-item teams a group, a large target widens them to one 128-item team, and the launcher's floats are those
        // of the kernel launched on that grid
        java.util.Map<String, String> grid = java.util.Map.of(q8, "1", local, "128", "lightllm.tuning.jvm.matmul.gemv_columns", "8",
                "lightllm.tuning.jvm.matmul.int4_q8_items_per_unit", "1000000");
        io.lightllm.testing.TestProperties.with(grid, () -> {
            assertEquals(8, Matmul.fillingGemvColumns(jvm, 1, N, Matmul.GEMV_ROWS_PER_TEAM), "the plain tuning leaves the teams alone");
            assertEquals(1, Matmul.fillingGemvColumns(jvm, 1, N, Matmul.GEMV_ROWS_PER_TEAM, 1_000_000));
            DeviceBuffer direct = jvm.allocate(DType.F32, N);
            jvm.launchPortable(QuantMatmul.GEMV_INT4_Q8, Matmul.gemvGrid(1, N, 128, 1, Matmul.GEMV_ROWS_PER_TEAM), direct, jvm.upload(a),
                    jvm.upload(w), QuantFormat.INT4.code(), direct, false, 1, N, 512, 1);
            DeviceBuffer out = jvm.allocate(DType.F32, N);
            QuantMatmul.launch(jvm, out, jvm.upload(a), jvm.upload(w), QuantFormat.INT4, null, 1, N, 512);
            assertClose(jvm.download(direct), jvm.download(out), 0f, 0f, "launcher under matmul.int4_q8_items_per_unit");
        });
    }


    private static void checkInt4GemvOnInt8Activations(Device device) {
        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            for (int k : new int[] {128, 512, 1152}) {
                for (int[] shape : new int[][] {{64, 1}, {256, 8}, {64, 2}, {32, 2}}) {
                    check(device, QuantMatmul.GEMV_INT4_Q8, Matmul.gemvGrid(1, N, shape[0], shape[1], Matmul.GEMV_ROWS_PER_TEAM), format, 1, k,
                            shape[1] == 8, shape[1], true);
                }
            }
        }
    }
    /**
     * The int4 gated GEMV on int8 activations ([gate; up] int4 rows, the activation in the same launch), taken by the
     * launcher where the tunings matmul.gemv_gated and matmul.int4_q8 say so (work-groups of whole warps), against the
     * dequantised product's reference with the activation applied in Java: within the product's bound plus the
     * activations' rounding (groups of 128), through the activation ({@link MatmulTest#assertActivatedProduct}); widths odd
     * and even, with and without bias, both int4 formats, on the JVM and every accelerator.
     */
    @Test
    void int4GatedGemvMatchesTheActivatedProductWithinTheActivationsRounding() {
        java.util.Map<String, String> tunings = new java.util.HashMap<>();
        for (String backend : new String[] {"jvm", "opencl"}) {
            tunings.put("lightllm.tuning." + backend + ".matmul.gemv_gated", "1");
            tunings.put("lightllm.tuning." + backend + ".matmul.int4_q8", "1");
            tunings.put("lightllm.tuning." + backend + ".reduce.local", "64");
        }
        io.lightllm.testing.TestProperties.with(tunings, () -> {
            for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
                for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
                    for (int width : new int[] {13, 40}) {
                        for (int k : new int[] {128, 1152}) {
                            Activations.Kind act = width == 13 ? Activations.Kind.SILU : Activations.Kind.GELU_TANH;
                            boolean withBias = width == 13;
                            FloatArray a = TensorAssert.random(k, 1f, 81);
                            ByteArray w = randomBlocks(format, 2 * width, k, 82);
                            FloatArray bias = withBias ? TensorAssert.random(2 * width, 1f, 83) : null;
                            FloatArray weights = format.dequantize(w.segment(), 2 * width, k);
                            MatmulReference ref = MatmulReference.of(a, weights, null, bias, 1, 2 * width, k);
                            float rounding = activationRoundingBound(a, weights, 1, 2 * width, k, 128);
                            assertTrue(QuantMatmul.gatedApplies(device, format, 1, k), device.id() + ": the gated int4 GEMV applies");
                            DeviceBuffer out = device.allocate(DType.F32, width);
                            QuantMatmul.launchGated(device, out, device.upload(a), device.upload(w), format, withBias ? device.upload(bias) : null,
                                    act, 1, width, k);
                            MatmulTest.assertActivatedProduct(ref.expected(), 2 * ref.errorBound() + rounding, width, act, device.download(out),
                                    device.id() + " int4 gated gemv " + format + " width " + width + " k " + k + " " + act);
                        }
                    }
                }
            }
        });
    }

    @Test
    void kernelsCompileToCuda() {
        for (KernelRef kernel : new KernelRef[] {QuantMatmul.TILED, QuantMatmul.GEMV, QuantMatmul.GEMV_INT4_Q8, QuantMatmul.GEMV_INT4_GATED_Q8}) {
            CudaCheck.assertCompiles(KernelCompiler.compile(kernel, Dialect.CUDA, null).source(), kernel.name());
        }
    }

    @Test
    void launcherRunsBothKernelsAndRefusesPartialBlocks() {
        Device jvm = TestDevices.jvm();
        for (int m : new int[] {2, 20}) {
            FloatArray a = TensorAssert.random(m * 256, 1f, 41);
            ByteArray w = randomBlocks(QuantFormat.Q4_K, N, 256, 42);
            MatmulReference ref = MatmulReference.of(a, QuantFormat.Q4_K.dequantize(w.segment(), N, 256), null, null, m, N, 256);
            DeviceBuffer out = jvm.allocate(DType.F32, m * N);
            QuantMatmul.launch(jvm, out, jvm.upload(a), jvm.upload(w), QuantFormat.Q4_K, null, m, N, 256);
            assertClose(ref.expected(), jvm.download(out), 2 * ref.errorBound(), 0f, "launch m=" + m);
        }
        DeviceBuffer out = jvm.allocate(DType.F32, 4), a = jvm.allocate(DType.F32, 200), w = jvm.allocate(DType.I8, 4096);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> QuantMatmul.launch(jvm, out, a, w, QuantFormat.Q4_K, null, 1, 4, 200));
        assertEquals("Q4_K rows hold whole blocks of 256 elements; 200 is not a multiple", e.getMessage());
    }
}
