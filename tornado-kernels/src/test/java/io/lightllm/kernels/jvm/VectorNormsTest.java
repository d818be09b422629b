package io.lightllm.kernels.jvm;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.kernels.KernelLibrary;
import io.lightllm.kernels.Norms;
import io.lightllm.testing.TensorAssert;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link VectorNorms} against the portable RMSNorm kernels on the same JVM device: rows whose length leaves a tail past
 * whole vectors and rows shorter than one, f32 and bf16 weights, the plain norm and the one that adds into the residual
 * first. The residual's update is one f32 add either way (exact); the output within NormsTest's bound for the kernel
 * against the JVM (the sum of squares adds lane by lane here, element by element there).
 */
class VectorNormsTest {
    private static final int ROWS = 5;
    private final JvmDevice device = new JvmDevice(2);

    @AfterEach
    void close() {
        device.close();
    }

    @Test
    void vectorNormsMatchThePortableKernels() {
        KernelLibrary.installOverrides(device);
        assertTrue(device.hasOverride(Norms.RMS_NORM) && device.hasOverride(Norms.RMS_NORM_ADD_RESIDUAL));
        for (int dim : new int[] {3, 1000, 4099}) {
            FloatArray x = TensorAssert.random(ROWS * dim, 3f, 11 + dim), residual = TensorAssert.random(ROWS * dim, 2f, 12 + dim);
            FloatArray w = TensorAssert.random(dim, 1.5f, 13 + dim);
            BFloat16Array wb = BFloat16Array.allocate(dim);
            for (int i = 0; i < dim; i++) {
                wb.setFloat(i, w.get(i));
            }
            for (NativeArray weight : new NativeArray[] {w, wb}) {
                String what = "dim " + dim + ", " + weight.dtype() + " weights";
                DeviceBuffer dw = device.upload(weight), dx = device.upload(x);
                Grid grid = Grid.groups(ROWS, 1);
                DeviceBuffer fast = device.allocate(DType.F32, ROWS * dim), portable = device.allocate(DType.F32, ROWS * dim);
                device.launch(Norms.RMS_NORM, grid, fast, dx, dw, 1e-5f, dim);
                device.launchPortable(Norms.RMS_NORM, grid, portable, dx, dw, 1e-5f, dim);
                assertClose(device.download(portable), device.download(fast), 2e-6f, 2e-4f, "rmsNorm, " + what);
                // (a JVM upload may share the host array: each launch gets its own copy of the residual)
                DeviceBuffer r1 = device.upload(copy(residual)), r2 = device.upload(copy(residual));
                device.launch(Norms.RMS_NORM_ADD_RESIDUAL, grid, fast, r1, dx, dw, 1e-5f, dim);
                device.launchPortable(Norms.RMS_NORM_ADD_RESIDUAL, grid, portable, r2, dx, dw, 1e-5f, dim);
                assertClose(device.download(r2), device.download(r1), 0f, 0f, "residual, " + what);
                assertClose(device.download(portable), device.download(fast), 2e-6f, 2e-4f, "rmsNormAddResidual, " + what);
            }
        }
    }

    private static FloatArray copy(FloatArray a) {
        FloatArray c = FloatArray.allocate(a.getSize());
        c.copyFrom(a);
        return c;
    }
}
