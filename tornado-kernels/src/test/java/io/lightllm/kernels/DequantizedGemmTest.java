package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link DequantizedGemm}: its kernels give each weight's dequantised value rounded to bf16 (int8
 * rows exactly, every block format to an f32 rounding of its terms), on the JVM and every accelerator; and where a device tunes it, the
 * int8 and packed launchers take that path for many rows and give the product with bf16 weights.
 */
class DequantizedGemmTest {
    private static final int N = 24;

    private static List<Device> devices() {
        List<Device> all = TestDevices.jvmAndAcceleratorDevices();
        return all;
    }

    @Test
    void int8RowsDequantiseToTheirBf16Values() {
        int k = 48;
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * k, 2f, 1), N, k);
        for (Device device : devices()) {
            DeviceBuffer out = device.allocate(DType.BF16, (long) N * k);
            device.launch(DequantizedGemm.INT8_ROWS, Grid.of((long) N * k / 8), out, device.upload(q.weights()), device.upload(q.scales()), N, k);
            BFloat16Array got = (BFloat16Array) device.download(out);
            for (int i = 0; i < N * k; i++) {
                float expected = q.weights().get(i) * q.scales().get(i / k);
                assertEquals(Float.floatToRawIntBits(bf16(expected)), Float.floatToRawIntBits(got.getFloat(i)), device.id() + " element " + i);
            }
        }
    }

    @Test
    void blocksOfEveryFormatDequantiseToTheirBf16Values() {
        for (QuantFormat format : QuantFormat.values()) {
            int k = format.blockSize() == 32 ? 96 : 256;
            ByteArray w = QuantMatmulTest.randomBlocks(format, N, k, 2);
            FloatArray reference = format.dequantize(w.segment(), N, k);
            for (Device device : devices()) {
                DeviceBuffer out = device.allocate(DType.BF16, (long) N * k);
                device.launch(DequantizedGemm.BLOCKS, Grid.of((long) N * k / QuantBlocks.UNIT), out, device.upload(w), format.code(), N, k);
                assertDequantised(reference, (BFloat16Array) device.download(out), device.id() + " " + format);
                if (format == QuantFormat.INT4 || format == QuantFormat.INT4_ZP) {
                    device.launch(DequantizedGemm.INT4_BLOCKS, Grid.of((long) N * k / 16), out, device.upload(w), format.code(), N, k);
                    assertDequantised(reference, (BFloat16Array) device.download(out), device.id() + " " + format + " (int4 kernel)");
                }
            }
        }
    }

    private static void assertDequantised(FloatArray reference, BFloat16Array got, String what) {
        int count = reference.getSize();
        FloatArray gotFloats = FloatArray.allocate(count), expected = FloatArray.allocate(count);
        float largest = 0f;
        for (int i = 0; i < count; i++) {
            gotFloats.set(i, got.getFloat(i));
            expected.set(i, bf16(reference.get(i)));
            largest = Math.max(largest, Math.abs(reference.get(i)));
        }
        // scale x code - offset may be one fused multiply-add on a GPU compiler (OpenCL, CUDA contract
        // it): the same to within f32 rounding of the terms, which can move the bf16 rounding by an ulp
        assertClose(expected, gotFloats, 0x1p-20f * largest, 0x1p-7f, what);
    }

    /**
     * With the JVM tuned to take the path from 17 rows (as CUDA is), int8 and int4 matmuls of 40 rows go
     * through it and give the product with the bf16-rounded weights; 16 rows keep the GEMV.
     */
    @Test
    void launchersTakeThePathWhereTuned() {
        String key = "lightllm.tuning.jvm.matmul.dequant_min_m";
        System.setProperty(key, "17");
        try (JvmDevice jvm = new JvmDevice(2)) {
            KernelLibrary.installOverrides(jvm);
            assertTrue(DequantizedGemm.applies(jvm, 40, 256));
            assertFalse(DequantizedGemm.applies(jvm, 16, 256));
            int m = 40, k = 256;
            FloatArray a = TensorAssert.random(m * k, 1f, 3);
            Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * k, 0.5f, 4), N, k);
            BFloat16Array rounded = BFloat16Array.allocate(N * k);
            for (int i = 0; i < N * k; i++) {
                rounded.setFloat(i, q.weights().get(i) * q.scales().get(i / k));
            }
            MatmulReference ref = MatmulReference.of(a, rounded, null, null, m, N, k);
            DeviceBuffer out = jvm.allocate(DType.F32, (long) m * N);
            Matmul.launchMatmulInt8(jvm, out, jvm.upload(a), jvm.upload(q.weights()), jvm.upload(q.scales()), null, m, N, k);
            assertClose(ref.expected(), jvm.download(out), 2 * ref.errorBound(), 0f, "int8 through the dequantised GEMM");
            ByteArray blocks = QuantFormat.quantizeInt4(TensorAssert.random(N * k, 0.5f, 5), N, k);
            FloatArray values = QuantFormat.INT4.dequantize(blocks.segment(), N, k);
            BFloat16Array roundedBlocks = BFloat16Array.allocate(N * k);
            for (int i = 0; i < N * k; i++) {
                roundedBlocks.setFloat(i, values.get(i));
            }
            MatmulReference blockRef = MatmulReference.of(a, roundedBlocks, null, null, m, N, k);
            QuantMatmul.launch(jvm, out, jvm.upload(a), jvm.upload(blocks), QuantFormat.INT4, null, m, N, k);
            assertClose(blockRef.expected(), jvm.download(out), 2 * blockRef.errorBound(), 0f, "int4 through the dequantised GEMM");
        } finally {
            System.clearProperty(key);
        }
    }

    private static float bf16(float x) {
        return io.lightllm.tornado.api.KMath.bf16ToFloat(io.lightllm.tornado.api.KMath.floatToBf16(x));
    }
}
