package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link QuantTensorGemm} on the JVM (warps emulated) and every accelerator: the activations' fragment order is
 * a permutation of each run of 64 columns, and the GEMM over int8 rows and int4 blocks equals the product of
 * the bf16-rounded activations with the weights (int8: codes times scales; int4: each weight dequantised in bf16
 * as the kernel does), for 1, 2 and 4 row tiles, two tiles of rows, columns that end inside a warp's tile, with
 * and without a bias and split k.
 */
class QuantTensorGemmTest {
    private static List<Device> devices() {
        List<Device> all = TestDevices.jvmAndAcceleratorDevices();
        return all;
    }

    /** Where column p of a run of 64 goes: written out from the class comment, not from the kernel. */
    private static int fragmentColumn(int p) {
        int t = p / 16, s = p % 16 / 4, j = p % 4;
        return 16 * s + 2 * t + (j < 2 ? j : j + 6);
    }

    @Test
    void permutationMovesEachColumnOfARunOfSixtyFourOnce() {
        boolean[] seen = new boolean[64];
        for (int p = 0; p < 64; p++) {
            int c = fragmentColumn(p);
            assertFalse(seen[c], "column " + c + " taken twice");
            seen[c] = true;
        }
        int m = 3, k = 192;
        FloatArray a = TensorAssert.random(m * k, 3f, 1);
        BFloat16Array a16 = BFloat16Array.allocate(m * k);
        for (int i = 0; i < m * k; i++) {
            a16.setFloat(i, a.get(i));
        }
        for (Device device : devices()) {
            for (NativeArray input : new NativeArray[] {a, a16}) {
                DeviceBuffer out = device.allocate(DType.BF16, (long) m * k);
                // the launch also zeroes the first 2,001 elements of a NaN buffer: more than the permutation's work-items
                int zeros = 2001;
                DeviceBuffer zeroed = device.allocate(DType.F32, zeros + 7);
                Elementwise.launchFill(device, zeroed, Float.NaN, zeros + 7);
                device.launch(QuantTensorGemm.PERMUTE, QuantTensorGemm.permuteGrid(m, k, zeros), out, device.upload(input), zeroed, m, k, zeros);
                FloatArray z = (FloatArray) device.download(zeroed);
                for (int i = 0; i < zeros + 7; i++) {
                    assertEquals(i < zeros ? 0f : Float.NaN, z.get(i), device.id() + " zeroed element " + i);
                }
                BFloat16Array got = (BFloat16Array) device.download(out);
                for (int i = 0; i < m * k; i++) {
                    int run = i - i % 64;
                    assertEquals(Float.floatToRawIntBits(bf16(a.get(i))), Float.floatToRawIntBits(got.getFloat(run + fragmentColumn(i % 64))),
                            device.id() + " " + input.dtype() + " element " + i);
                }
            }
        }
    }

    @Test
    void int8RowsMatchTheProductOfRoundedActivations() {
        int n = 140, k = 384;
        FloatArray bias = TensorAssert.random(n, 1f, 2);
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 3), n, k);
        for (Device device : devices()) {
            DeviceBuffer w = device.upload(q.weights()), scales = device.upload(q.scales()), b = device.upload(bias);
            for (int m : new int[] {5, 20, 40, 70}) {
                FloatArray a = TensorAssert.random(m * k, 1f, 4 + m);
                for (boolean withBias : new boolean[] {false, true}) {
                    MatmulReference ref = MatmulReference.of(rounded(a), q.weights(), q.scales(), withBias ? bias : null, m, n, k);
                    for (int splits : new int[] {1, 2}) {
                        DeviceBuffer out = run(device, a, m, n, k, splits, (kernel, permuted, o) -> device.launch(kernel, QuantTensorGemm.grid(m, n, splits), o,
                                permuted, w, scales, withBias ? b : o, withBias, m, n, k, splits), true, false);
                        // products of bf16 values are exact in f32; the tensor cores sum in their own order (twice the f32 bound)
                        assertClose(ref.expected(), device.download(out), 2 * ref.errorBound(), 0f,
                                device.id() + " int8, m " + m + (withBias ? ", bias" : "") + ", " + splits + " k-splits");
                    }
                }
            }
        }
    }

    /**
     * Int4 weights as the kernel dequantises them (bf16 scale and offset, one bf16 rounding of code x scale - offset),
     * computed here from {@link QuantBlocks}' decoding of the blocks: the same bound as int8's. And those weights are
     * within a relative 2^-8 of the scale (times the code) and of the offset, plus their own rounding, of the f32 dequantisation.
     */
    @Test
    void int4BlocksMatchTheProductOfRoundedActivationsAndWeights() {
        // n not a multiple of 4: the epilogue's scalar stores and adds (int8's 140 takes the vector ones)
        checkInt4(138, 384, new int[] {5, 20, 40, 70}, false);
    }

    /** Rows of 4 groups (16-byte aligned): a lane's codes of a block in one load, the same product. */
    @Test
    void int4WideCodeLoadsMatchTheSameProduct() {
        assertTrue(QuantBlocks.int4RowsAligned(QuantBlocks.INT4, 4) && QuantBlocks.int4RowsAligned(QuantBlocks.INT4_ZP, 4));
        assertFalse(QuantBlocks.int4RowsAligned(QuantBlocks.INT4, 3) || QuantBlocks.int4RowsAligned(QuantBlocks.INT4, 6));
        checkInt4(138, 512, new int[] {5, 40}, true);
    }

    private static void checkInt4(int n, int k, int[] ms, boolean wide) {
        FloatArray bias = TensorAssert.random(n, 1f, 5);
        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            ByteArray blocks = QuantMatmulTest.randomBlocks(format, n, k, 6);
            FloatArray exact = format.dequantize(blocks.segment(), n, k);
            BFloat16Array weights = kernelWeights(format, blocks, n, k);
            int bytes = QuantBlocks.blockBytes(format.code());
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < k; c++) {
                    int rowAt = r * (k / 128) * bytes;
                    float scale = QuantBlocks.scale(blocks, format.code(), rowAt, k, c);
                    float offset = QuantBlocks.offset(blocks, format.code(), rowAt, k, c);
                    float e = exact.get(r * k + c);
                    // bf16 rounds to 8 significant bits (half an ulp: a relative 2^-8): the scale (times a code of at most 16),
                    // the offset and the weight itself, each once
                    float step = 0x1p-8f * (16 * Math.abs(scale) + 2 * Math.abs(offset) + Math.abs(e));
                    assertTrue(Math.abs(weights.getFloat(r * k + c) - e) <= step, format + " weight " + r + "," + c);
                }
            }
            for (Device device : devices()) {
                DeviceBuffer w = device.upload(blocks), b = device.upload(bias);
                for (int m : ms) {
                    FloatArray a = TensorAssert.random(m * k, 1f, 7 + m);
                    for (boolean withBias : new boolean[] {false, true}) {
                        MatmulReference ref = MatmulReference.of(rounded(a), weights, null, withBias ? bias : null, m, n, k);
                        for (int splits : new int[] {1, 2}) {
                            DeviceBuffer out = run(device, a, m, n, k, splits, (kernel, permuted, o) -> device.launch(kernel,
                                    QuantTensorGemm.grid(m, n, splits), o, permuted, w, format.code(), withBias ? b : o, withBias, m, n, k, splits), false, wide);
                            assertClose(ref.expected(), device.download(out), 2 * ref.errorBound(), 0f,
                                    device.id() + " " + format + ", m " + m + (withBias ? ", bias" : "") + ", " + splits + " k-splits" + (wide ? ", wide" : ""));
                        }
                    }
                }
            }
        }
    }

    /**
     * With the JVM tuned to take the path up to 64 rows, int8 and int4 matmuls of 40 rows go through it (the
     * launchers permute, split and zero on their own); from 2 rows, while 1 keeps the GEMV and 65 rows go on.
     */
    @Test
    void launchersTakeThePathWhereTuned() {
        TestProperties.with(Map.of("lightllm.tuning.jvm.matmul.quant_mma_max_m", "64"), () -> {
            try (JvmDevice jvm = new JvmDevice(2)) {
                KernelLibrary.installOverrides(jvm);
                assertTrue(QuantTensorGemm.applies(jvm, 40, 256));
                assertTrue(QuantTensorGemm.applies(jvm, 2, 256));
                assertFalse(QuantTensorGemm.applies(jvm, 1, 256));
                assertFalse(QuantTensorGemm.applies(jvm, 65, 256));
                assertFalse(QuantTensorGemm.applies(jvm, 40, 200));
                int m = 40, n = 24, k = 1024;
                FloatArray a = TensorAssert.random(m * k, 1f, 8);
                DeviceBuffer out = jvm.allocate(DType.F32, (long) m * n);
                checkInt8Launcher(jvm, a, out, m, n, k);
                ByteArray blocks = QuantFormat.quantizeInt4(TensorAssert.random(n * k, 0.5f, 10), n, k);
                BFloat16Array weights = kernelWeights(QuantFormat.INT4, blocks, n, k);
                MatmulReference blockRef = MatmulReference.of(rounded(a), weights, null, null, m, n, k);
                Elementwise.launchFill(jvm, out, Float.NaN, m * n);
                QuantMatmul.launch(jvm, out, jvm.upload(a), jvm.upload(blocks), QuantFormat.INT4, null, m, n, k);
                assertClose(blockRef.expected(), jvm.download(out), 2 * blockRef.errorBound(), 0f, "int4 through the launcher");
            }
        });
    }

    /**
     * An int8 matmul of m rows a through {@link Matmul#launchMatmulInt8} into out (filled with NaN first) against the product
     * of a's bf16-rounded values: a tensor-core kernel's bound (the GEMV, on f32 activations, would miss it by their rounding).
     */
    static void checkInt8Launcher(Device device, FloatArray a, DeviceBuffer out, int m, int n, int k) {
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 9), n, k);
        MatmulReference ref = MatmulReference.of(rounded(a), q.weights(), q.scales(), null, m, n, k);
        Elementwise.launchFill(device, out, Float.NaN, m * n);
        Matmul.launchMatmulInt8(device, out, device.upload(a), device.upload(q.weights()), device.upload(q.scales()), null, m, n, k);
        assertClose(ref.expected(), device.download(out), 2 * ref.errorBound(), 0f, "int8 through the launcher");
    }

    private interface Launch {
        void run(io.lightllm.tornado.runtime.KernelRef kernel, DeviceBuffer permuted, DeviceBuffer out);
    }

    /** Permutes a on the device (zeroing the output for split k, else leaving it NaN) and runs the entry point of m's row tiles. */
    private static DeviceBuffer run(Device device, FloatArray a, int m, int n, int k, int splits, Launch launch, boolean int8, boolean wide) {
        DeviceBuffer permuted = device.allocate(DType.BF16, (long) m * k);
        DeviceBuffer out = device.allocate(DType.F32, (long) m * n);
        Elementwise.launchFill(device, out, Float.NaN, m * n);
        int zeros = splits > 1 ? m * n : 0;
        device.launch(QuantTensorGemm.PERMUTE, QuantTensorGemm.permuteGrid(m, k, zeros), permuted, device.upload(a), out, m, k, zeros);
        launch.run(QuantTensorGemm.kernel(int8, m, wide), permuted, out);
        return out;
    }

    /** Int4 blocks' weights as the kernel dequantises them: bf16(bf16(scale) * code - bf16(offset)), from {@link QuantBlocks}' decoding. */
    private static BFloat16Array kernelWeights(QuantFormat format, ByteArray blocks, int n, int k) {
        BFloat16Array weights = BFloat16Array.allocate(n * k);
        int bytes = QuantBlocks.blockBytes(format.code());
        for (int i = 0; i < n * k; i++) {
            int rowAt = i / k * (k / 128) * bytes;
            float scale = QuantBlocks.scale(blocks, format.code(), rowAt, k, i % k);
            float offset = QuantBlocks.offset(blocks, format.code(), rowAt, k, i % k);
            weights.setFloat(i, bf16(scale) * QuantBlocks.code(blocks, format.code(), rowAt, k, i % k) - bf16(offset));
        }
        return weights;
    }

    /** a rounded to bf16, element by element: what the tensor-core kernels multiply. */
    static FloatArray rounded(FloatArray a) {
        FloatArray r = FloatArray.allocate(a.getSize());
        for (int i = 0; i < a.getSize(); i++) {
            r.set(i, bf16(a.get(i)));
        }
        return r;
    }

    private static float bf16(float x) {
        return KMath.bf16ToFloat(KMath.floatToBf16(x));
    }
}
