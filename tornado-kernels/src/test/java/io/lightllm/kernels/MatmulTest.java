package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The portable matmul kernels on the JVM against the naive double-precision product; the
 * tolerance is the float32 error bound of the sums (see {@link MatmulReference}). Shapes are
 * small and not multiples of the tile or group sizes, so edges are exercised.
 */
class MatmulTest {
    private static final int M = 11, N = 13, K = 37;

    private final Device jvm = TestDevices.jvm();

    static NativeArray weights(DType dtype, int size, long seed) {
        return TensorAssert.fill(NativeArray.allocate(dtype, size), 1f, seed);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 4, 16})
    void tiledKernelMatchesReferenceForEveryWeightType(int tile) {
        checkTiled(jvm, tile);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 4, 64})
    void gemvKernelMatchesReferenceForEveryWeightType(int local) {
        checkGemv(jvm, local);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 4, 16})
    void int8TiledKernelMatchesDequantisedReference(int tile) {
        checkInt8Kernel(jvm, Matmul.MATMUL_INT8_TILED, Matmul.tiledGrid(M, N, tile), M, true, null, "int8 tiled " + tile);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 4, 64})
    void int8GemvKernelMatchesDequantisedReference(int local) {
        for (int columns : gemvColumns(local)) {
            checkInt8Kernel(jvm, Matmul.MATMUL_INT8_GEMV, Matmul.gemvGrid(M, N, local, columns), M, false, columns,
                    "int8 gemv " + local + "/" + columns);
        }
    }

    /** Columns per GEMV group to try with a local size: one, two, and one item per column (team sizes local, local/2, 1). */
    private static int[] gemvColumns(int local) {
        return java.util.stream.IntStream.of(1, 2, local).filter(c -> c <= local).distinct().toArray();
    }

    private static void checkTiled(Device device, int tile) {
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (boolean withBias : new boolean[] {false, true}) {
                checkFloatKernel(device, Matmul.MATMUL_TILED, Matmul.tiledGrid(M, N, tile), dtype, withBias, M, null,
                        device.id() + " tiled " + tile + " " + dtype + (withBias ? " with bias" : ""));
            }
        }
    }

    private static void checkGemv(Device device, int local) {
        // 1 row, and 11 rows: a full block of GEMV_ROWS plus a partial one; k = 37 element by element,
        // k = 64 and 456 in runs of 8 (456: runs left over past the pairs a team takes at once); int8 rows of a
        // multiple of 16 (64, 464) in runs of 16 (464: 29 runs, one left over past the pairs); 1,048: 131 runs, so
        // that a warp-sized team at batch 1 takes four runs at once and has a pair and a run left over
        for (int columns : gemvColumns(local)) {
            for (int m : new int[] {1, M}) {
                for (int k : new int[] {K, 64, 456, 464, 1048}) {
                    for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                        checkFloatKernel(device, Matmul.MATMUL_GEMV, Matmul.gemvGrid(m, N, local, columns), dtype, m == 1, m, k, columns, 1,
                                device.id() + " gemv " + local + "/" + columns + " m=" + m + " k=" + k + " " + dtype);
                        if (m == 1 && k % 8 == 0) {
                            // four weight rows a team (Matmul.floatRowsPerTeam where tuned; N = 13: a partial team)
                            checkFloatKernel(device, Matmul.MATMUL_GEMV, Matmul.gemvGrid(m, N, local, columns, Matmul.GEMV_ROWS_PER_TEAM), dtype,
                                    true, m, k, columns, Matmul.GEMV_ROWS_PER_TEAM,
                                    device.id() + " gemv of four rows a team " + local + "/" + columns + " k=" + k + " " + dtype);
                        }
                    }
                    // the launcher's grid: at m = 1 over rows of a multiple of 16, a team per 4 weight rows (N = 13: a partial team)
                    checkInt8Kernel(device, Matmul.MATMUL_INT8_GEMV, Matmul.gemvGrid(m, N, local, columns, Matmul.int8RowsPerTeam(m, k)), m, k,
                            m == 1, columns,
                            device.id() + " int8 gemv " + local + "/" + columns + " m=" + m + " k=" + k);
                }
            }
        }
    }

    /**
     * The gated GEMV (gate and up rows [gate; up] and the activation in one launch) against the product's reference
     * and the activation applied to it in Java: widths odd and even (a team's second output past the end), k in runs
     * of 8, with and without bias, SiLU and tanh-GELU, f32/f16/bf16 rows, on the JVM and every accelerator. The bound:
     * the product's, times |up| + |act(gate)| (the activations' slopes stay below 1.13), plus float rounding.
     */
    @Test
    void gatedGemvMatchesTheActivatedProduct() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        for (Device device : devices) {
            for (int width : new int[] {13, 40}) {
                for (int k : new int[] {64, 456}) {
                    for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                        for (Activations.Kind act : new Activations.Kind[] {Activations.Kind.SILU, Activations.Kind.GELU_TANH}) {
                            boolean withBias = width == 13;
                            FloatArray a = TensorAssert.random(k, 1f, 7);
                            NativeArray w = weights(dtype, 2 * width * k, 8);
                            FloatArray bias = withBias ? TensorAssert.random(2 * width, 1f, 9) : null;
                            MatmulReference ref = MatmulReference.of(a, w, null, bias, 1, 2 * width, k);
                            DeviceBuffer out = device.allocate(DType.F32, width);
                            Matmul.launchGatedGemv(device, out, device.upload(a), device.upload(w), withBias ? device.upload(bias) : null, act, width, k);
                            assertActivatedProduct(ref.expected(), ref.errorBound(), width, act, device.download(out),
                                    device.id() + " gated gemv width " + width + " k " + k + " " + dtype + " " + act);
                        }
                    }
                }
            }
        }
    }

    /**
     * The int8 gated GEMV on int8 activations ([gate; up] int8 rows with their scales, the activation in the same launch)
     * against the dequantised product's reference with the activation applied in Java, within the product's bound plus the
     * activations' rounding (groups of 16), carried through the activation as {@link #assertActivatedProduct} does; widths
     * odd and even, with and without bias, on the JVM and every accelerator.
     */
    @Test
    void int8GatedGemvMatchesTheActivatedProductWithinTheActivationsRounding() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            for (int width : new int[] {13, 40}) {
                for (int k : new int[] {64, 1040}) {
                    for (Activations.Kind act : new Activations.Kind[] {Activations.Kind.SILU, Activations.Kind.GELU_TANH}) {
                        boolean withBias = width == 13;
                        FloatArray a = TensorAssert.random(k, 1f, 71);
                        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(2 * width * k, 0.5f, 72), 2 * width, k);
                        FloatArray bias = withBias ? TensorAssert.random(2 * width, 1f, 73) : null;
                        MatmulReference ref = MatmulReference.of(a, q.weights(), q.scales(), bias, 1, 2 * width, k);
                        FloatArray weights = dequantized(q, 2 * width, k);
                        float rounding = QuantMatmulTest.activationRoundingBound(a, weights, 1, 2 * width, k, 16);
                        DeviceBuffer out = device.allocate(DType.F32, width);
                        Matmul.launchGatedGemvInt8(device, out, device.upload(a), device.upload(q.weights()), device.upload(q.scales()),
                                withBias ? device.upload(bias) : null, act, width, k);
                        assertActivatedProduct(ref.expected(), 2 * ref.errorBound() + rounding, width, act, device.download(out),
                                device.id() + " int8 gated gemv width " + width + " k " + k + " " + act);
                    }
                }
            }
        }
    }

    /** The weights int8 rows with their scales stand for: code times its row's scale, [rows, k]. */
    private static FloatArray dequantized(Matmul.Int8Weights q, int rows, int k) {
        FloatArray weights = FloatArray.allocate(rows * k);
        for (int e = 0; e < rows * k; e++) {
            weights.set(e, q.weights().get(e) * q.scales().get(e / k));
        }
        return weights;
    }

    /**
     * A gated GEMV's output against act(gate) * up of the reference product [gate; up] ({@code products}, each within
     * {@code productBound}): the bound carried through is productBound times |up| x 1.13 + |act(gate)| (the activations'
     * slopes stay below 1.13), plus its square's share and float rounding.
     */
    static void assertActivatedProduct(FloatArray products, float productBound, int width, Activations.Kind act, NativeArray actual, String what) {
        FloatArray expected = FloatArray.allocate(width);
        float bound = 0f;
        for (int i = 0; i < width; i++) {
            float gate = products.get(i), up = products.get(width + i);
            float activated = Activations.activate(gate, act.code);
            expected.set(i, activated * up);
            bound = Math.max(bound, productBound * (1.13f * Math.abs(up) + Math.abs(activated) + 1f) + 1e-6f);
        }
        assertClose(expected, actual, bound, 0f, what);
    }

    /** {@code columns}: the GEMV kernels' columns per group; null for the tiled kernels, which lack the argument. */
    private static void checkFloatKernel(Device device, KernelRef kernel, Grid grid, DType dtype, boolean withBias, int m, Integer columns,
            String what) {
        checkFloatKernel(device, kernel, grid, dtype, withBias, m, K, columns, 1, what);
    }

    /** {@code rowsPerTeam}: the GEMV's last argument (passed with {@code columns}). */
    private static void checkFloatKernel(Device device, KernelRef kernel, Grid grid, DType dtype, boolean withBias, int m, int k,
            Integer columns, int rowsPerTeam, String what) {
        FloatArray a = TensorAssert.random(m * k, 1f, 1);
        NativeArray w = weights(dtype, N * k, 2);
        FloatArray bias = withBias ? TensorAssert.random(N, 1f, 3) : null;
        MatmulReference ref = MatmulReference.of(a, w, null, bias, m, N, k);
        DeviceBuffer out = device.allocate(DType.F32, m * N);
        Object[] args = {out, device.upload(a), device.upload(w), withBias ? device.upload(bias) : out, withBias, m, N, k, columns, rowsPerTeam};
        device.launchPortable(kernel, grid, columns == null ? java.util.Arrays.copyOf(args, args.length - 2) : args);
        assertClose(ref.expected(), device.download(out), ref.errorBound(), 0f, what);
    }

    private static void checkInt8Kernel(Device device, KernelRef kernel, Grid grid, int m, boolean withBias, Integer columns, String what) {
        checkInt8Kernel(device, kernel, grid, m, K, withBias, columns, what);
    }

    private static void checkInt8Kernel(Device device, KernelRef kernel, Grid grid, int m, int k, boolean withBias, Integer columns,
            String what) {
        FloatArray a = TensorAssert.random(m * k, 1f, 4);
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * k, 0.5f, 5), N, k);
        FloatArray bias = withBias ? TensorAssert.random(N, 1f, 6) : null;
        MatmulReference ref = MatmulReference.of(a, q.weights(), q.scales(), bias, m, N, k);
        DeviceBuffer out = device.allocate(DType.F32, m * N);
        Object[] args = {out, device.upload(a), device.upload(q.weights()), device.upload(q.scales()), withBias ? device.upload(bias) : out,
            withBias, m, N, k, columns};
        device.launchPortable(kernel, grid, columns == null ? java.util.Arrays.copyOf(args, args.length - 1) : args);
        assertClose(ref.expected(), device.download(out), ref.errorBound(), 0f, device.id() + " " + what);
    }

    /**
     * The batch-1 int8 GEMV on int8 activations (dp4a on CUDA) on every device, for one group of 16, three, and rows of
     * 512 and 1,040 (a team's last step part way through): exact integer sums, so within the activations' rounding of
     * the f32 product (per group of 16: (max |x| / 127) / 2 times the sum of |w|) and the float sums' own bound; teams
     * of 128, 64, 32 and 1 items, on every device and on the JVM with sub-groups of a warp (the reductions of teams of
     * one and of several warps); and the launcher takes it where the tuning matmul.int8_q8 says so, with teams widened
     * where matmul.int8_q8_items_per_unit says so.
     */
    @Test
    void int8GemvOnInt8ActivationsMatchesTheProductWithinTheirRounding() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            checkInt8GemvOnInt8Activations(device, device.id());
        }
        // the JVM with sub-groups of a warp (tuning jvm.sub_groups=32): the teams' reductions by shuffles, as on CUDA
        io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.sub_groups", "32"),
                () -> checkInt8GemvOnInt8Activations(jvm, "jvm with sub-groups of 32"));
        FloatArray a = TensorAssert.random(512, 1f, 64);
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * 512, 0.5f, 65), N, 512);
        int local = Matmul.gemvLocal(jvm), columns = Matmul.gemvColumns(jvm, 1);
        DeviceBuffer direct = jvm.allocate(DType.F32, N);
        jvm.launchPortable(Matmul.MATMUL_INT8_GEMV_Q8, Matmul.gemvGrid(1, N, local, columns, Matmul.GEMV_ROWS_PER_TEAM), direct, jvm.upload(a),
                jvm.upload(q.weights()), jvm.upload(q.scales()), direct, false, 1, N, 512, columns);
        System.setProperty("lightllm.tuning.jvm.matmul.int8_q8", "1");
        try {
            DeviceBuffer out = jvm.allocate(DType.F32, N);
            Matmul.launchMatmulInt8(jvm, out, jvm.upload(a), jvm.upload(q.weights()), jvm.upload(q.scales()), null, 1, N, 512);
            assertClose(jvm.download(direct), jvm.download(out), 0f, 0f, "launcher under matmul.int8_q8=1");
        } finally {
            System.clearProperty("lightllm.tuning.jvm.matmul.int8_q8");
        }
        // its teams widen where matmul.int8_q8_items_per_unit asks for more items than warp teams give (eight 16-item teams a
        // group of 128 become one team of 128), and the launcher's floats are those of the kernel launched on that grid
        java.util.Map<String, String> grid = java.util.Map.of("lightllm.tuning.jvm.matmul.int8_q8", "1", "lightllm.tuning.jvm.reduce.local", "128",
                "lightllm.tuning.jvm.matmul.gemv_columns", "8", "lightllm.tuning.jvm.matmul.int8_q8_items_per_unit", "1000000");
        io.lightllm.testing.TestProperties.with(grid, () -> {
            DeviceBuffer wide = jvm.allocate(DType.F32, N);
            jvm.launchPortable(Matmul.MATMUL_INT8_GEMV_Q8, Matmul.gemvGrid(1, N, 128, 1, Matmul.GEMV_ROWS_PER_TEAM), wide, jvm.upload(a),
                    jvm.upload(q.weights()), jvm.upload(q.scales()), wide, false, 1, N, 512, 1);
            DeviceBuffer out = jvm.allocate(DType.F32, N);
            Matmul.launchMatmulInt8(jvm, out, jvm.upload(a), jvm.upload(q.weights()), jvm.upload(q.scales()), null, 1, N, 512);
            assertClose(jvm.download(wide), jvm.download(out), 0f, 0f, "launcher under matmul.int8_q8_items_per_unit");
        });
    }

    /** {@link #int8GemvOnInt8ActivationsMatchesTheProductWithinTheirRounding} on one device, {@code what} naming it in failures. */
    private static void checkInt8GemvOnInt8Activations(Device device, String what) {
        for (int k : new int[] {16, 48, 512, 1040}) {
            FloatArray a = TensorAssert.random(k, 1f, 61);
            Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * k, 0.5f, 62), N, k);
            FloatArray bias = TensorAssert.random(N, 1f, 63);
            MatmulReference ref = MatmulReference.of(a, q.weights(), q.scales(), bias, 1, N, k);
            FloatArray weights = dequantized(q, N, k);
            float rounding = QuantMatmulTest.activationRoundingBound(a, weights, 1, N, k, 16);
            for (int[] shape : new int[][] {{64, 1}, {256, 8}, {256, 2}, {1, 1}}) {
                DeviceBuffer out = device.allocate(DType.F32, N);
                device.launchPortable(Matmul.MATMUL_INT8_GEMV_Q8, Matmul.gemvGrid(1, N, shape[0], shape[1], Matmul.GEMV_ROWS_PER_TEAM), out,
                        device.upload(a), device.upload(q.weights()), device.upload(q.scales()), device.upload(bias), true, 1, N, k, shape[1]);
                assertClose(ref.expected(), device.download(out), 2 * ref.errorBound() + rounding, 0f,
                        what + " int8 GEMV on int8 activations, k=" + k + " local " + shape[0] + "/" + shape[1]);
            }
        }
    }

    /**
     * The tensor-core matmul on the JVM (warps emulated) and every accelerator: f32 activations are
     * rounded to the weights' type as they are read, 16-bit ones are used as they are, so the
     * reference is the product of the rounded activations; products of 16-bit values are exact in
     * f32 and the tensor cores' sums round in their own order (twice the float32 bound). Shapes end
     * inside a 128 x 128 tile and a 32-step of k.
     */
    @Test
    void tensorCoreMatmulMatchesTheProductOfRoundedActivations() {
        int m = 130, n = 136, k = 72;
        java.util.List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        FloatArray a = TensorAssert.random(m * k, 1f, 91);
        FloatArray bias = TensorAssert.random(n, 1f, 92);
        for (Device device : devices) {
            for (DType wType : new DType[] {DType.BF16, DType.F16}) {
                NativeArray w = weights(wType, n * k, 93);
                NativeArray rounded = NativeArray.allocate(wType, m * k);
                FloatArray roundedF32 = FloatArray.allocate(m * k);
                for (int i = 0; i < m * k; i++) {
                    rounded.setFloat(i, a.get(i));
                    roundedF32.set(i, rounded.getFloat(i));
                }
                for (boolean withBias : new boolean[] {false, true}) {
                    MatmulReference ref = MatmulReference.of(roundedF32, w, null, withBias ? bias : null, m, n, k);
                    float[] fromF32 = null;
                    for (NativeArray input : new NativeArray[] {a, rounded}) {
                        DeviceBuffer out = device.allocate(DType.F32, m * n);
                        Matmul.launchTensorCores(device, out, device.upload(input), device.upload(w), withBias ? device.upload(bias) : null, m, n, k);
                        String what = device.id() + " tensor cores, " + wType + " weights, " + input.dtype() + " activations" + (withBias ? ", bias" : "");
                        FloatArray got = (FloatArray) device.download(out);
                        assertClose(ref.expected(), got, 2 * ref.errorBound(), 0f, what);
                        if (fromF32 == null) {
                            fromF32 = got.toArray();
                        } else { // what a norm that writes Matmul.activationType hands the GEMM: the same sums, bit for bit
                            org.junit.jupiter.api.Assertions.assertArrayEquals(fromF32, got.toArray(), what + ": the f32 activations' sums");
                        }
                    }
                }
            }
        }
    }

    /**
     * The GEMM on Hopper's warpgroup MMA ({@link WarpgroupMatmul}) against the product of the bf16 operands, on the JVM and
     * every accelerator that has it (OpenCL computes the MMA in loops; CUDA from compute capability 9.0), directly and through
     * the launcher under matmul.tc_warpgroup=1: m = 130 ends inside a second row of 128 x 256 tiles, n = 300 inside a second
     * column, k = 200 inside a step of 64 (its last chunks zeros). The sums round in the MMA's order: twice the float32 bound.
     * The CUDA C goes through ptxas for sm_90a.
     */
    @Test
    void warpgroupMmaGemmMatchesTheProductOfBf16Operands() {
        int m = 130, n = 300, k = 200;
        FloatArray a = TensorAssert.random(m * k, 1f, 111);
        FloatArray bias = TensorAssert.random(n, 1f, 112);
        NativeArray w = weights(DType.BF16, n * k, 113);
        NativeArray a16 = NativeArray.allocate(DType.BF16, m * k);
        FloatArray roundedF32 = FloatArray.allocate(m * k);
        for (int i = 0; i < m * k; i++) {
            a16.setFloat(i, a.get(i));
            roundedF32.set(i, a16.getFloat(i));
        }
        MatmulReference ref = MatmulReference.of(roundedF32, w, null, bias, m, n, k);
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            if (!device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA)) {
                continue;
            }
            DeviceBuffer out = device.allocate(DType.F32, m * n);
            device.launchPortable(Matmul.MATMUL_WARPGROUP_BF16, WarpgroupMatmul.grid(m, n), out, device.upload(a16), device.upload(w), device.upload(bias),
                    true, m, n, k);
            assertClose(ref.expected(), (FloatArray) device.download(out), 2 * ref.errorBound(), 0f, device.id() + " warpgroup MMA GEMM");
            if (device.id().startsWith("cuda")) {
                // where the copies, barriers and MMAs really run asynchronously: 32 steps of 50 groups in flight (the small
                // shape above is 4 steps of 4 groups)
                int bm = 640, bn = 1280, bk = 2048;
                NativeArray bigA = weights(DType.BF16, bm * bk, 114), bigW = weights(DType.BF16, bn * bk, 115);
                FloatArray bigAF32 = FloatArray.allocate(bm * bk);
                for (int i = 0; i < bm * bk; i++) {
                    bigAF32.set(i, bigA.getFloat(i));
                }
                MatmulReference big = MatmulReference.of(bigAF32, bigW, null, null, bm, bn, bk);
                DeviceBuffer got = device.allocate(DType.F32, (long) bm * bn);
                device.launchPortable(Matmul.MATMUL_WARPGROUP_BF16, WarpgroupMatmul.grid(bm, bn), got, device.upload(bigA), device.upload(bigW), got, false,
                        bm, bn, bk);
                assertClose(big.expected(), (FloatArray) device.download(got), 2 * big.errorBound(), 0f, device.id() + " warpgroup MMA GEMM, 640 x 1280 x 2048");
            }
        }
        System.setProperty("lightllm.tuning.jvm.matmul.tc_warpgroup", "1");
        System.setProperty("lightllm.tuning.jvm.matmul.tensor_cores", "1");
        try {
            assertTrue(Matmul.usesWarpgroupMma(jvm, Matmul.MATMUL_TC_BF16, jvm.upload(a16), jvm.upload(w), m), "the launcher takes it where tuned");
            DeviceBuffer out = jvm.allocate(DType.F32, m * n);
            Matmul.launchTensorCores(jvm, out, jvm.upload(a16), jvm.upload(w), jvm.upload(bias), m, n, k);
            assertClose(ref.expected(), (FloatArray) jvm.download(out), 2 * ref.errorBound(), 0f, "jvm launcher, matmul.tc_warpgroup=1");
            assertTrue(!Matmul.usesWarpgroupMma(jvm, Matmul.MATMUL_TC_BF16, jvm.upload(a), jvm.upload(w), m), "f32 activations take mma.sync");
        } finally {
            System.clearProperty("lightllm.tuning.jvm.matmul.tc_warpgroup");
            System.clearProperty("lightllm.tuning.jvm.matmul.tensor_cores");
        }
        String report = io.lightllm.testing.CudaCheck.assertAssembles(
                io.lightllm.tornado.compiler.KernelCompiler.compile(Matmul.MATMUL_WARPGROUP_BF16, io.lightllm.tornado.compiler.Dialect.CUDA,
                        new DType[] {DType.F32, DType.BF16, DType.BF16, DType.F32, null, null, null, null}).source(), "WarpgroupMatmul.matmulBf16");
        assertTrue(report.contains("0 bytes spill stores"), report);
    }

    /**
     * The 128 x 256 tiles (eight warps) give every output the sums of the 128 x 128 ones, bit for bit: the same k order
     * and MMA sequence per output, only the tile a group covers differs. bf16, f16 and int8 weights, f32 and 16-bit
     * activations, on the JVM (warps emulated) and every accelerator; n = 300 ends inside a second wide tile, m = 130
     * inside a second row of tiles, k = 72 inside a 32-step. Then through the launcher under matmul.tc_wide=1, against
     * the product of the rounded activations as above.
     */
    @Test
    void wideTensorCoreTilesGiveTheNarrowTilesSums() {
        int m = 130, n = 300, k = 72;
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        FloatArray a = TensorAssert.random(m * k, 1f, 97);
        FloatArray bias = TensorAssert.random(n, 1f, 98);
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 99), n, k);
        for (Device device : devices) {
            for (DType wType : new DType[] {DType.BF16, DType.F16}) {
                assertVariantGivesNarrowSums(device, wType, wType == DType.BF16 ? Matmul.MATMUL_TC_BF16_WIDE : Matmul.MATMUL_TC_F16_WIDE,
                        TensorCoreMatmul.grid(m, n, 1, true), a, bias, m, n, k, 100, "wide tiles");
            }
            DeviceBuffer in = device.upload(a), codes = device.upload(q.weights()), scales = device.upload(q.scales());
            DeviceBuffer outNarrow = device.allocate(DType.F32, m * n), outWide = device.allocate(DType.F32, m * n);
            device.launchPortable(Matmul.MATMUL_TC_INT8, TensorCoreMatmul.grid(m, n, 1, false), outNarrow, in, codes, scales, outNarrow, false, m, n,
                    k, true, 1);
            device.launchPortable(Matmul.MATMUL_TC_INT8_WIDE, TensorCoreMatmul.grid(m, n, 1, true), outWide, in, codes, scales, outWide, false, m, n,
                    k, true, 1);
            assertClose(device.download(outNarrow), device.download(outWide), 0f, 0f, device.id() + " wide tiles, int8 weights");
        }
        // the launcher under the tuning (split k where the backend tunes tc_groups: partial tiles added in any order)
        String key = "lightllm.tuning.jvm.matmul.tc_wide";
        System.setProperty(key, "1");
        try {
            NativeArray w = weights(DType.BF16, n * k, 101);
            FloatArray roundedF32 = FloatArray.allocate(m * k);
            NativeArray rounded = NativeArray.allocate(DType.BF16, m * k);
            for (int i = 0; i < m * k; i++) {
                rounded.setFloat(i, a.get(i));
                roundedF32.set(i, rounded.getFloat(i));
            }
            MatmulReference ref = MatmulReference.of(roundedF32, w, null, bias, m, n, k);
            DeviceBuffer out = jvm.allocate(DType.F32, m * n);
            Matmul.launchTensorCores(jvm, out, jvm.upload(a), jvm.upload(w), jvm.upload(bias), m, n, k);
            assertClose(ref.expected(), jvm.download(out), 2 * ref.errorBound(), 0f, "launcher under matmul.tc_wide=1");
            assertTrue(Matmul.wideTensorCores(jvm, Matmul.MATMUL_TC_BF16), "the JVM has no GEMM of its own for the tensor-core kernel");
        } finally {
            System.clearProperty(key);
        }
    }

    /**
     * The deep entries (k 64 a step through three stages, matmul.tc_deep) give the 32-step entries' sums bit for bit: each
     * output's k16 MMAs run in the same order. k = 136 ends inside a third deep step, n = 300 and m = 130 inside second
     * tiles; bf16 with f32 and bf16 activations on the JVM and every accelerator, f16 on the JVM and CUDA (PoCL would
     * compile the same body once more). Then through the launcher under the tuning.
     */
    @Test
    void deepTensorCoreStepsGiveTheNarrowSums() {
        int m = 130, n = 300, k = 136;
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        FloatArray a = TensorAssert.random(m * k, 1f, 197);
        FloatArray bias = TensorAssert.random(n, 1f, 198);
        for (Device device : devices) {
            for (DType wType : device.id().startsWith("opencl") ? new DType[] {DType.BF16} : new DType[] {DType.BF16, DType.F16}) {
                assertVariantGivesNarrowSums(device, wType, wType == DType.BF16 ? Matmul.MATMUL_TC_BF16_DEEP : Matmul.MATMUL_TC_F16_DEEP,
                        TensorCoreMatmul.grid(m, n, 1, false), a, bias, m, n, k, 200, "deep steps");
            }
        }
        NativeArray w = weights(DType.BF16, n * k, 201);
        DeviceBuffer in = jvm.upload(a), wBuf = jvm.upload(w), biasBuf = jvm.upload(bias);
        DeviceBuffer expected = jvm.allocate(DType.F32, m * n), out = jvm.allocate(DType.F32, m * n);
        Matmul.launchTensorCores(jvm, expected, in, wBuf, biasBuf, m, n, k);
        io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.matmul.tc_deep", "1"),
                () -> Matmul.launchTensorCores(jvm, out, in, wBuf, biasBuf, m, n, k));
        assertClose(jvm.download(expected), jvm.download(out), 0f, 0f, "launcher under matmul.tc_deep=1");
    }

    /**
     * A variant entry of the tensor-core GEMM ({@code variant} on {@code grid}) against the 128 x 128, k-32 entry of the same
     * weight type, bit for bit, with f32 activations and with them rounded to the weights' type beforehand.
     */
    private static void assertVariantGivesNarrowSums(Device device, DType wType, KernelRef variant, io.lightllm.tornado.runtime.Grid grid,
            FloatArray a, FloatArray bias, int m, int n, int k, long seed, String what) {
        NativeArray w = weights(wType, n * k, seed);
        NativeArray rounded = NativeArray.allocate(wType, m * k);
        for (int i = 0; i < m * k; i++) {
            rounded.setFloat(i, a.get(i));
        }
        KernelRef narrow = wType == DType.BF16 ? Matmul.MATMUL_TC_BF16 : Matmul.MATMUL_TC_F16;
        for (NativeArray input : new NativeArray[] {a, rounded}) {
            DeviceBuffer in = device.upload(input), wBuf = device.upload(w), biasBuf = device.upload(bias);
            DeviceBuffer outNarrow = device.allocate(DType.F32, m * n), outVariant = device.allocate(DType.F32, m * n);
            device.launchPortable(narrow, TensorCoreMatmul.grid(m, n, 1, false), outNarrow, in, wBuf, biasBuf, true, m, n, k, input == a, 1);
            device.launchPortable(variant, grid, outVariant, in, wBuf, biasBuf, true, m, n, k, input == a, 1);
            assertClose(device.download(outNarrow), device.download(outVariant), 0f, 0f, device.id() + " " + what + ", " + wType + " weights, "
                    + input.dtype() + " activations");
        }
    }

    /**
     * Through the launcher with the backend's overrides (cuBLAS on CUDA, which narrows the activations
     * once for GEMMs of the same input back to back): two weights times one input, then the input
     * changed by a kernel and multiplied again, each against the product of the input as the kernel
     * reads it (rounded to bf16 by a vendor GEMM).
     */
    @Test
    void backToBackMatmulsOfOneInputSeeItsLatestValues() {
        int m = 40, n = 48, k = 64;
        for (String id : TestDevices.accelerators()) {
            Device device = Devices.get(id);
            KernelLibrary.installOverrides(device);
            FloatArray a = TensorAssert.random(m * k, 1f, 94);
            DeviceBuffer input = device.upload(a);
            NativeArray w1 = weights(DType.BF16, n * k, 95), w2 = weights(DType.BF16, n * k, 96);
            DeviceBuffer d1 = device.upload(w1), d2 = device.upload(w2);
            DeviceBuffer out1 = device.allocate(DType.F32, m * n), out2 = device.allocate(DType.F32, m * n), out3 = device.allocate(DType.F32, m * n);
            Matmul.launchMatmul(device, out1, input, d1, null, m, n, k);
            Matmul.launchMatmul(device, out2, input, d2, null, m, n, k);
            Elementwise.launchScale(device, input, m * k, 2f);
            Matmul.launchMatmul(device, out3, input, d2, null, m, n, k);
            // a vendor GEMM (the override) rounds the activations to the weights' bf16; the portable kernels keep f32
            boolean vendor = device.hasOverride(Matmul.MATMUL_TILED);
            FloatArray rounded = FloatArray.allocate(m * k), doubled = FloatArray.allocate(m * k);
            for (int i = 0; i < m * k; i++) {
                rounded.set(i, vendor ? KMathBf16.round(a.get(i)) : a.get(i));
                doubled.set(i, vendor ? KMathBf16.round(2f * a.get(i)) : 2f * a.get(i));
            }
            int i = 0;
            for (Object[] c : new Object[][] {{out1, rounded, w1}, {out2, rounded, w2}, {out3, doubled, w2}}) {
                MatmulReference ref = MatmulReference.of((FloatArray) c[1], (NativeArray) c[2], null, null, m, n, k);
                assertClose(ref.expected(), device.download((DeviceBuffer) c[0]), 2 * ref.errorBound(), 0f, id + " product " + ++i);
            }
        }
    }

    /** bf16 rounding of a float (the vendor GEMM's activations). */
    private static final class KMathBf16 {
        static float round(float x) {
            return io.lightllm.tornado.api.KMath.bf16ToFloat(io.lightllm.tornado.api.KMath.floatToBf16(x));
        }
    }

    /**
     * The tensor-core matmul over int8 weights, on the JVM and every accelerator: the codes are exact
     * in bf16 and each column's scale multiplies its sum, so the reference is the product of the
     * bf16-rounded activations and the dequantised weights, within the tensor-core bound above.
     */
    @Test
    void tensorCoreInt8MatmulMatchesTheProductOfRoundedActivations() {
        int m = 130, n = 136, k = 72;
        java.util.List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        FloatArray a = TensorAssert.random(m * k, 1f, 94);
        FloatArray bias = TensorAssert.random(n, 1f, 95);
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 96), n, k);
        BFloat16Array rounded = BFloat16Array.allocate(m * k);
        FloatArray roundedF32 = FloatArray.allocate(m * k);
        for (int i = 0; i < m * k; i++) {
            rounded.set(i, a.get(i));
            roundedF32.set(i, rounded.getFloat(i));
        }
        for (Device device : devices) {
            for (boolean withBias : new boolean[] {false, true}) {
                MatmulReference ref = MatmulReference.of(roundedF32, q.weights(), q.scales(), withBias ? bias : null, m, n, k);
                for (NativeArray input : new NativeArray[] {a, rounded}) {
                    // k = 72 is three steps of 32: whole, and split three ways (split-k adds into zeros, the bias once)
                    for (int splits : new int[] {1, 3}) {
                        DeviceBuffer out = device.allocate(DType.F32, m * n);
                        Elementwise.launchFill(device, out, splits > 1 ? 0f : Float.NaN, m * n);
                        device.launch(Matmul.MATMUL_TC_INT8, Matmul.tensorCoreGrid(m, n, splits), out, device.upload(input), device.upload(q.weights()),
                                device.upload(q.scales()), withBias ? device.upload(bias) : out, withBias, m, n, k, input.dtype() == DType.F32, splits);
                        assertClose(ref.expected(), device.download(out), 2 * ref.errorBound(), 0f, device.id() + " tensor cores, int8 weights, "
                                + input.dtype() + " activations" + (withBias ? ", bias" : "") + ", " + splits + " k-splits");
                    }
                }
            }
        }
    }

    @Test
    void quantisationIsSymmetricPerRowWithinHalfAStep() {
        int rows = 5, cols = 40;
        FloatArray w = TensorAssert.random(rows * cols, 3f, 7);
        for (int c = 0; c < cols; c++) {
            w.set(2 * cols + c, 0f); // an all-zero row
        }
        BFloat16Array wb = BFloat16Array.allocate(rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            wb.set(i, w.get(i));
        }
        for (NativeArray source : new NativeArray[] {w, wb}) {
            Matmul.Int8Weights q = Matmul.quantizeInt8(source, rows, cols);
            for (int r = 0; r < rows; r++) {
                float maxAbs = 0;
                int maxQ = 0;
                for (int c = 0; c < cols; c++) {
                    maxAbs = Math.max(maxAbs, Math.abs(source.getFloat(r * cols + c)));
                    maxQ = Math.max(maxQ, Math.abs(q.weights().get(r * cols + c)));
                }
                float scale = q.scales().get(r);
                assertEquals(maxAbs / 127f, scale, 0f, "scale of row " + r);
                assertEquals(maxAbs == 0 ? 0 : 127, maxQ, "largest |q| of row " + r);
                for (int c = 0; c < cols; c++) {
                    float error = Math.abs(source.getFloat(r * cols + c) - q.weights().get(r * cols + c) * scale);
                    // half a quantisation step, plus float rounding of w / scale (relative 2^-23 of |w|)
                    assertTrue(error <= scale / 2 + maxAbs * 0x1p-22f, "element " + r + "," + c + " is off by " + error);
                }
            }
        }
    }

    @Test
    void launcherPicksAKernelByRowCountAndComputesTheProduct() {
        // m = 2 runs the GEMV kernel, m = 20 the tiled one, under the JVM's tuning
        for (int m : new int[] {2, 20}) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                FloatArray a = TensorAssert.random(m * K, 1f, 8);
                NativeArray w = weights(dtype, N * K, 9);
                FloatArray bias = TensorAssert.random(N, 1f, 10);
                MatmulReference ref = MatmulReference.of(a, w, null, bias, m, N, K);
                DeviceBuffer out = jvm.allocate(DType.F32, m * N);
                Matmul.launchMatmul(jvm, out, jvm.upload(a), jvm.upload(w), jvm.upload(bias), m, N, K);
                assertClose(ref.expected(), jvm.download(out), ref.errorBound(), 0f, "launchMatmul m=" + m + " " + dtype);
            }
            FloatArray a = TensorAssert.random(m * K, 1f, 11);
            Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * K, 1f, 12), N, K);
            MatmulReference ref = MatmulReference.of(a, q.weights(), q.scales(), null, m, N, K);
            DeviceBuffer out = jvm.allocate(DType.F32, m * N);
            Matmul.launchMatmulInt8(jvm, out, jvm.upload(a), jvm.upload(q.weights()), jvm.upload(q.scales()), null, m, N, K);
            assertClose(ref.expected(), jvm.download(out), ref.errorBound(), 0f, "launchMatmulInt8 m=" + m);
        }
    }

    /** The activations a matmul reads as they are: its 16-bit weights' type where it runs on tensor cores (more rows than the GEMV takes). */
    @Test
    void activationTypeIsTheWeightsWhereTensorCoresRun() {
        DeviceBuffer bf16 = jvm.allocate(DType.BF16, N * 72), f32 = jvm.allocate(DType.F32, N * 72);
        assertEquals(DType.F32, Matmul.activationType(jvm, bf16, 20, 64), "the JVM's tuning keeps tensor cores off");
        io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.matmul.tensor_cores", "1"), () -> {
            assertEquals(DType.BF16, Matmul.activationType(jvm, bf16, 20, 64));
            assertEquals(DType.F32, Matmul.activationType(jvm, bf16, 2, 64), "the GEMV reads f32");
            assertEquals(DType.F32, Matmul.activationType(jvm, f32, 20, 64), "f32 weights take the tiled kernel");
            assertEquals(DType.F32, Matmul.activationType(jvm, bf16, 20, 68), "k not a multiple of 8");
        });
    }

    @Test
    void launcherRefusesWrongShapesAndWeightTypes() {
        DeviceBuffer out = jvm.allocate(DType.F32, 4), a = jvm.allocate(DType.F32, 4);
        DeviceBuffer w = jvm.allocate(DType.F32, 4), wInt8 = jvm.allocate(DType.I8, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Matmul.launchMatmul(jvm, out, a, w, null, 2, 2, 3));
        assertEquals("matmul input a holds 4 elements, needs 6", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Matmul.launchMatmul(jvm, out, a, wInt8, null, 2, 2, 2));
        assertEquals("matmul weights must be F32, F16 or BF16, got I8 (int8 weights go through launchMatmulInt8)", e.getMessage());
    }

    /**
     * Every accelerator passes the same reference checks with every tile and local size, and
     * its launchers compute what the JVM's compute.
     */
    @Test
    void acceleratorsMatchTheJvm() {
        int m = 20;
        for (String id : TestDevices.accelerators()) {
            Device device = Devices.get(id);
            for (int tile : new int[] {1, 4, 16}) {
                checkTiled(device, tile);
                checkInt8Kernel(device, Matmul.MATMUL_INT8_TILED, Matmul.tiledGrid(M, N, tile), M, true, null, "int8 tiled " + tile);
            }
            // 256 / 8: the CUDA tuning (a warp per column, shuffles); 64 / 2 a team of 32 elsewhere
            for (int local : new int[] {1, 4, 64, 256}) {
                checkGemv(device, local);
                for (int columns : gemvColumns(local)) {
                    checkInt8Kernel(device, Matmul.MATMUL_INT8_GEMV, Matmul.gemvGrid(M, N, local, columns), M, false, columns,
                            "int8 gemv " + local + "/" + columns);
                }
            }
            checkFloatKernel(device, Matmul.MATMUL_GEMV, Matmul.gemvGrid(M, N, 256, 8), DType.BF16, true, M, 8, id + " gemv 256/8");
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                FloatArray a = TensorAssert.random(m * K, 1f, 13);
                NativeArray w = weights(dtype, N * K, 14);
                FloatArray bias = TensorAssert.random(N, 1f, 15);
                MatmulReference ref = MatmulReference.of(a, w, null, bias, m, N, K);
                for (int rows : new int[] {1, m}) {
                    FloatArray onJvm = runLauncher(jvm, a, w, bias, rows);
                    FloatArray onDevice = runLauncher(device, a, w, bias, rows);
                    // both are within the bound of the exact product, so within twice it of each other
                    assertClose(onJvm, onDevice, 2 * ref.errorBound(), 0f, id + " matmul " + dtype + " m=" + rows);
                }
            }
        }
    }

    private static FloatArray runLauncher(Device device, FloatArray a, NativeArray w, FloatArray bias, int m) {
        DeviceBuffer aBuf = device.allocate(DType.F32, m * K);
        device.write(a.segment().asSlice(0, (long) m * K * 4), aBuf, 0);
        DeviceBuffer out = device.allocate(DType.F32, m * N);
        Matmul.launchMatmul(device, out, aBuf, device.upload(w), device.upload(bias), m, N, K);
        return (FloatArray) device.download(out);
    }
}
