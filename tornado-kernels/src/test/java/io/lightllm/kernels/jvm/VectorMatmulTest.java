package io.lightllm.kernels.jvm;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.kernels.KernelLibrary;
import io.lightllm.kernels.Matmul;
import io.lightllm.kernels.MatmulReference;
import io.lightllm.testing.TensorAssert;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The Vector API overrides against the portable kernels on the same inputs. Shapes leave
 * tails everywhere: k not a multiple of the vector length, n not a multiple of the row block,
 * m not a multiple of four.
 */
class VectorMatmulTest {
    private final JvmDevice device = new JvmDevice(2);

    @AfterEach
    void close() {
        device.close();
    }

    @Test
    void installsAnOverrideForEveryMatmulKernel() {
        KernelLibrary.installOverrides(device);
        for (KernelRef k : new KernelRef[] {Matmul.MATMUL_TILED, Matmul.MATMUL_GEMV, Matmul.MATMUL_INT8_TILED, Matmul.MATMUL_INT8_GEMV}) {
            assertTrue(device.hasOverride(k), k.name());
        }
    }

    /**
     * k = 203 leaves a tail after the vector blocks, 512 none; m < 4 streams bf16 weights into the FMAs, m = 9 stages them
     * in 4 x 4 dot-product blocks, m >= 32 runs the outer-product GEMM (33: a last block of one row; 48: a block of 32
     * and one of 16; 70: two of 32 and six rows), n = 23 a panel with a partial group of weight rows.
     */
    @Test
    void floatWeightOverrideMatchesThePortableKernel() {
        KernelLibrary.installOverrides(device);
        floatWeightsMatch(23, 203);
        floatWeightsMatch(8, 512);
    }

    /**
     * Batch-1-to-3 products over enough rows that a thread walks its run in four quarters side by side (301 rows: runs of
     * 37 over two threads, quarters of 10, the last rows of a quarter fewer than four), bf16, f16 and int8 weights.
     */
    @Test
    void streamedRunsInQuartersMatchThePortableKernel() {
        KernelLibrary.installOverrides(device);
        int n = 301, k = 203;
        for (int m : new int[] {1, 3}) {
            for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
                FloatArray a = TensorAssert.random(m * k, 1f, 41);
                NativeArray w = TensorAssert.fill(NativeArray.allocate(dtype, n * k), 1f, 42);
                float bound = MatmulReference.of(a, w, null, null, m, n, k).errorBound();
                DeviceBuffer out = device.allocate(DType.F32, m * n), portable = device.allocate(DType.F32, m * n);
                DeviceBuffer aBuf = device.upload(a), wBuf = device.upload(w);
                Grid grid = Matmul.gemvGrid(m, n, 1, 1);
                device.launch(Matmul.MATMUL_GEMV, grid, out, aBuf, wBuf, out, false, m, n, k, 1, 1);
                device.launchPortable(Matmul.MATMUL_GEMV, grid, portable, aBuf, wBuf, portable, false, m, n, k, 1, 1);
                assertClose(device.download(portable), device.download(out), 2 * bound, 0f, dtype + " m=" + m + " n=" + n);
            }
            FloatArray a = TensorAssert.random(m * k, 1f, 43);
            Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 1f, 44), n, k);
            FloatArray bias = TensorAssert.random(n, 1f, 45);
            float bound = MatmulReference.of(a, q.weights(), q.scales(), bias, m, n, k).errorBound();
            DeviceBuffer out = device.allocate(DType.F32, m * n), portable = device.allocate(DType.F32, m * n);
            Object[] args = {device.upload(a), device.upload(q.weights()), device.upload(q.scales()), device.upload(bias), true, m, n, k, 1};
            Grid grid = Matmul.gemvGrid(m, n, 1, 1);
            device.launch(Matmul.MATMUL_INT8_GEMV, grid, prepend(out, args));
            device.launchPortable(Matmul.MATMUL_INT8_GEMV, grid, prepend(portable, args));
            assertClose(device.download(portable), device.download(out), 2 * bound, 0f, "int8 m=" + m + " n=" + n);
        }
    }

    private void floatWeightsMatch(int n, int k) {
        for (int m : new int[] {1, 2, 3, 9, 33, 48, 70}) {
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                for (boolean withBias : new boolean[] {false, true}) {
                    FloatArray a = TensorAssert.random(m * k, 1f, 21);
                    NativeArray w = TensorAssert.fill(NativeArray.allocate(dtype, n * k), 1f, 22);
                    FloatArray bias = TensorAssert.random(n, 1f, 23);
                    float bound = MatmulReference.of(a, w, null, withBias ? bias : null, m, n, k).errorBound();
                    DeviceBuffer out = device.allocate(DType.F32, m * n), portable = device.allocate(DType.F32, m * n);
                    DeviceBuffer aBuf = device.upload(a), wBuf = device.upload(w);
                    DeviceBuffer biasBuf = withBias ? device.upload(bias) : out;
                    Grid grid = Matmul.gemvGrid(m, n, 1, 1);
                    device.launch(Matmul.MATMUL_GEMV, grid, out, aBuf, wBuf, biasBuf, withBias, m, n, k, 1, 1);
                    device.launchPortable(Matmul.MATMUL_GEMV, grid, portable, aBuf, wBuf, biasBuf, withBias, m, n, k, 1, 1);
                    // each is within the bound of the exact product, so within twice it of the other
                    assertClose(device.download(portable), device.download(out), 2 * bound, 0f,
                            "m=" + m + " k=" + k + " " + dtype + (withBias ? " with bias" : ""));
                }
            }
        }
    }

    @Test
    void int8OverrideMatchesThePortableKernel() {
        KernelLibrary.installOverrides(device);
        int n = 10, k = 150;
        for (int m : new int[] {1, 2, 6, 40}) {
            FloatArray a = TensorAssert.random(m * k, 1f, 24);
            Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 1f, 25), n, k);
            FloatArray bias = TensorAssert.random(n, 1f, 26);
            float bound = MatmulReference.of(a, q.weights(), q.scales(), bias, m, n, k).errorBound();
            DeviceBuffer out = device.allocate(DType.F32, m * n), portable = device.allocate(DType.F32, m * n);
            Object[] args = {device.upload(a), device.upload(q.weights()), device.upload(q.scales()), device.upload(bias), true, m, n, k};
            Grid grid = Matmul.tiledGrid(m, n, 4);
            device.launch(Matmul.MATMUL_INT8_TILED, grid, prepend(out, args));
            device.launchPortable(Matmul.MATMUL_INT8_TILED, grid, prepend(portable, args));
            assertClose(device.download(portable), device.download(out), 2 * bound, 0f, "int8 m=" + m);
        }
    }

    @Test
    void wideningIsExactForEveryHalfAndBfloat16Value() {
        int count = 1 << 16;
        HalfArray half = HalfArray.allocate(count);
        BFloat16Array bf16 = BFloat16Array.allocate(count);
        for (int i = 0; i < count; i++) {
            half.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) i);
            bf16.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) i);
        }
        float[] wide = new float[count];
        VectorMatmul.widen(half, 0, count, wide, 0);
        for (int i = 0; i < count; i++) {
            assertEquals(Float.floatToRawIntBits(Float.float16ToFloat((short) i)), Float.floatToRawIntBits(wide[i]), "f16 bits " + i);
        }
        VectorMatmul.widen(bf16, 0, count, wide, 0);
        for (int i = 0; i < count; i++) {
            assertEquals(i << 16, Float.floatToRawIntBits(wide[i]), "bf16 bits " + i);
        }
        ByteArray bytes = ByteArray.allocate(256 + 7);
        for (int i = 0; i < bytes.getSize(); i++) {
            bytes.set(i, (byte) i);
        }
        float[] fromBytes = new float[bytes.getSize()];
        VectorMatmul.widen(bytes, 0, bytes.getSize(), fromBytes, 0);
        for (int i = 0; i < bytes.getSize(); i++) {
            assertEquals((byte) i, fromBytes[i], "int8 " + i);
        }
    }

    /**
     * Batch-1 products stream f16 weights through a bit trick ({@code VectorMatmul.dotF16}): with a one-hot activation
     * row each output is one weight, which must come out as Float.float16ToFloat gives it, for every finite f16 (zeros,
     * subnormals, 65,504, negatives). k = 67 puts weights in the vector blocks and the scalar tail; n = 949 rows (not a
     * multiple of four) in the four-row loop and the single-row one.
     */
    @Test
    void streamedHalfWeightsAreExactForEveryFiniteValue() {
        KernelLibrary.installOverrides(device);
        int k = 67, n = 949;
        HalfArray w = HalfArray.allocate(n * k);
        int filled = 0;
        for (int bits = 0; bits < 1 << 16; bits++) {
            if (Float.isFinite(Float.float16ToFloat((short) bits))) {
                w.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, filled++, (short) bits);
            }
        }
        assertEquals(63_488, filled);
        DeviceBuffer wBuf = device.upload(w), out = device.allocate(DType.F32, n);
        for (int p = 0; p < k; p++) {
            FloatArray oneHot = FloatArray.allocate(k);
            oneHot.set(p, 1f);
            DeviceBuffer a = device.upload(oneHot);
            device.launch(Matmul.MATMUL_GEMV, Matmul.gemvGrid(1, n, 1, 1), out, a, wBuf, out, false, 1, n, k, 1, 1);
            FloatArray got = (FloatArray) device.download(out);
            for (int row = 0; row < n; row++) {
                float expected = Float.float16ToFloat(w.getBits(row * k + p));
                assertEquals(Float.floatToRawIntBits(expected + 0f), Float.floatToRawIntBits(got.get(row)),
                        "f16 bits 0x" + Integer.toHexString(w.getBits(row * k + p) & 0xffff) + " at row " + row + ", column " + p);
            }
        }
    }

    private static Object[] prepend(Object first, Object[] rest) {
        Object[] all = new Object[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }
}
