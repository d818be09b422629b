package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.LOCAL_SIZES;
import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.random;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class SoftmaxTest {
    // The kernel sums the row with compensation: a few ulps for any n, plus log2(local) tree
    // additions. Rounding the argument x - max (|x - max| <= 40) shifts exp by at most
    // 40 * 2^-24 = 2.4e-6 relative, and exp and the division add a few ulps: 1e-5 relative bounds
    // it. The tiny absolute tolerance only spares probabilities that underflow to subnormals.
    private static final float RTOL = 1e-5f;
    private static final float ATOL = 1e-30f;
    private static final int ROWS = 4;

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void softmaxMatchesScalarReference(String id) {
        Device dev = device(id);
        for (int n : new int[] {1, 3, 1537}) {
            FloatArray x = random(ROWS * n, 20f, 7 + n);
            // logits near 1000 overflow exp unless the row maximum is subtracted first
            for (int i = 0; i < n; i++) {
                x.set(n + i, x.get(n + i) + 1000f);
            }
            FloatArray expected = reference(x, ROWS, n);
            for (int local : LOCAL_SIZES) {
                assertClose(expected, run(dev, Grid.groups(ROWS, local), x, n), ATOL, RTOL, "softmax n " + n + " local " + local);
            }
            FloatArray launched = run(dev, null, x, n);
            assertClose(expected, launched, ATOL, RTOL, "launchSoftmax n " + n);
            if (!isJvm(dev)) {
                // both are within RTOL of the exact value
                assertClose(run(TestDevices.jvm(), null, x, n), launched, ATOL, 2 * RTOL, "softmax " + id + " vs jvm");
            }
        }
    }

    @Test
    void compilesToCuda() {
        assertCompilesToCuda(Softmax.SOFTMAX);
    }

    private static FloatArray run(Device dev, Grid grid, FloatArray x, int n) {
        DeviceBuffer xb = copyOf(dev, x);
        if (grid == null) {
            Softmax.launchSoftmax(dev, xb, ROWS, n);
        } else {
            dev.launch(Softmax.SOFTMAX, grid, xb, n);
        }
        return (FloatArray) dev.download(xb);
    }

    static FloatArray reference(FloatArray x, int rows, int n) {
        FloatArray out = FloatArray.allocate(rows * n);
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) {
                max = Math.max(max, x.get(r * n + i));
            }
            double sum = 0;
            for (int i = 0; i < n; i++) {
                sum += Math.exp(x.get(r * n + i) - max);
            }
            for (int i = 0; i < n; i++) {
                out.set(r * n + i, (float) (Math.exp(x.get(r * n + i) - max) / sum));
            }
        }
        return out;
    }
}
