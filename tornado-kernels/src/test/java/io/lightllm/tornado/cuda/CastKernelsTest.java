package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The cast before a cuBLAS GEMM, runs of 8 a work-item, on the JVM and every accelerator: each element rounded
 * as the host's conversion rounds it (nearest even), whole runs and a short last run alike.
 */
class CastKernelsTest {
    @Test
    void narrowsEveryElementAsTheHostRoundsIt() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        for (Device device : devices) {
            for (DType type : new DType[] {DType.BF16, DType.F16}) {
                for (int n : new int[] {1, 7, 64, 75}) {
                    FloatArray in = TensorAssert.random(n, 3f, n);
                    NativeArray expected = NativeArray.allocate(type, n);
                    for (int i = 0; i < n; i++) {
                        expected.setFloat(i, in.get(i));
                    }
                    DeviceBuffer out = device.allocate(type, n);
                    device.launch(CastKernels.NARROW_FROM_F32, CastKernels.runs(n), out, device.upload(in), n);
                    NativeArray actual = device.download(out);
                    for (int i = 0; i < n; i++) {
                        assertEquals(expected.getFloat(i), actual.getFloat(i), 0f, device.id() + " " + type + " n=" + n + " element " + i);
                    }
                }
            }
        }
    }
}
