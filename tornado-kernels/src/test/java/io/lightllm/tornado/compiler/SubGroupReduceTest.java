package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Sub-group reductions: warps on CUDA, sub-groups on OpenCL where the device has them, size 1 elsewhere. */
class SubGroupReduceTest {
    static final KernelRef ROW_SUM = KernelRef.of(SubGroupReduceTest.class, "rowSum");

    /** Row sums: a sub-group reduction, then one partial per sub-group in local memory; correct for any sub-group size. */
    public static void rowSum(KernelContext ctx, FloatArray out, FloatArray in, int n) {
        float[] partial = ctx.allocateFloatLocalArray(256);
        int lid = ctx.localIdx;
        int size = ctx.localGroupSizeX;
        int sg = ctx.subGroupSize();
        float s = 0f;
        for (int i = lid; i < n; i += size) {
            s += in.get(ctx.groupIdx * n + i);
        }
        float sum = ctx.subGroupReduceAdd(s);
        if (lid % sg == 0) {
            partial[lid / sg] = sum;
        }
        ctx.localBarrier();
        if (lid == 0) {
            float total = 0f;
            for (int j = 0; j < size / sg; j++) {
                total += partial[j];
            }
            out.set(ctx.groupIdx, total);
        }
    }

    @Test
    void sumsRowsOnEveryDeviceAndLocalSize() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        int rows = 7, n = 1000;
        FloatArray in = TensorAssert.random(rows * n, 1f, 11);
        for (Device device : devices) {
            for (int local : new int[] {1, 4, 32, 64, 256}) {
                DeviceBuffer out = device.allocate(DType.F32, rows);
                device.launch(ROW_SUM, Grid.groups(rows, local), out, device.upload(in), n);
                FloatArray got = (FloatArray) device.download(out);
                for (int r = 0; r < rows; r++) {
                    double expected = 0, magnitude = 0;
                    for (int i = 0; i < n; i++) {
                        expected += in.get(r * n + i);
                        magnitude += Math.abs(in.get(r * n + i));
                    }
                    // n float additions in some order: at most n * 2^-24 * sum|x|
                    double bound = n * Math.ulp(1f) / 2 * magnitude;
                    assertTrue(Math.abs(got.get(r) - expected) <= bound,
                            device.id() + " local " + local + " row " + r + ": " + got.get(r) + " vs " + expected);
                }
            }
        }
    }

    @Test
    void compilesToCudaWarpShuffles() {
        String cuda = KernelCompiler.compile(ROW_SUM, Dialect.CUDA, null).source();
        assertTrue(cuda.contains("__shfl_xor_sync"), cuda);
        CudaCheck.assertCompiles(cuda, "rowSum with a sub-group reduction");
    }
}
