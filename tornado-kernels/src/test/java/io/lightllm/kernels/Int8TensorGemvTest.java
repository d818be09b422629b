package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link Int8TensorGemv} on the JVM (warps emulated) and every accelerator: int8 rows times 1, 3 and 8 batch rows equal the
 * product of the bf16-rounded activations with the codes times the row scales (codes are exact in bf16), within twice
 * the f32 bound of any summation order (the tensor cores' own order), for a row count that ends inside a tile, with and
 * without a bias, k shared by 1, 2, 8 and (where the device allows groups of 16 warps) 16 warps, 13 of them past k's 3
 * runs; and the launcher takes the path where tuned.
 */
class Int8TensorGemvTest {
    @Test
    void int8RowsTimesUpToEightRowsMatchTheRoundedProduct() {
        int n = 40, k = 192;
        FloatArray bias = TensorAssert.random(n, 1f, 1);
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 2), n, k);
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            DeviceBuffer w = device.upload(q.weights()), scales = device.upload(q.scales()), b = device.upload(bias);
            for (int m : new int[] {1, 3, 8}) {
                FloatArray a = TensorAssert.random(m * k, 1f, 3 + m);
                DeviceBuffer in = device.upload(a);
                for (boolean withBias : new boolean[] {false, true}) {
                    MatmulReference ref = MatmulReference.of(QuantTensorGemmTest.rounded(a), q.weights(), q.scales(), withBias ? bias : null, m, n, k);
                    for (int parts : new int[] {1, 2, 8, 16}) {
                        if (parts > Int4TensorGemv.maxParts(device)) {
                            continue;
                        }
                        DeviceBuffer out = device.allocate(DType.F32, (long) m * n);
                        Elementwise.launchFill(device, out, Float.NaN, m * n);
                        device.launch(Int8TensorGemv.GEMV, Int4TensorGemv.grid((n + 15) / 16, parts), out, in, w, scales, withBias ? b : out,
                                withBias, m, n, k, parts);
                        assertClose(ref.expected(), device.download(out), 2 * ref.errorBound(), 0f,
                                device.id() + " int8, m " + m + (withBias ? ", bias" : "") + ", " + parts + " parts");
                    }
                }
            }
        }
    }

    @Test
    void launcherTakesThePathWhereTuned() {
        TestProperties.with(Map.of("lightllm.tuning.jvm.matmul.int8_mma_gemv_max_m", "4"), () -> {
            try (JvmDevice jvm = new JvmDevice(2)) {
                KernelLibrary.installOverrides(jvm);
                assertTrue(Int8TensorGemv.applies(jvm, 1, 128));
                assertTrue(Int8TensorGemv.applies(jvm, 4, 128));
                assertFalse(Int8TensorGemv.applies(jvm, 5, 128));
                assertFalse(Int8TensorGemv.applies(jvm, 1, 96));
                int m = 3, n = 24, k = 256;
                QuantTensorGemmTest.checkInt8Launcher(jvm, TensorAssert.random(m * k, 1f, 8), jvm.allocate(DType.F32, (long) m * n), m, n, k);
            }
        });
    }
}
