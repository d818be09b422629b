package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import org.junit.jupiter.api.Test;

/** Sub-group reductions: warps on CUDA, sub-groups on OpenCL where the device has them, size 1 elsewhere. */
class SubGroupReduceTest {
    static final KernelRef ROW_SUM = KernelRef.of(SubGroupReduceTest.class, "rowSum");
    static final KernelRef SIZE = KernelRef.of(SubGroupReduceTest.class, "subGroupSizeOf");

    /** Each group's sub-group size (the barrier makes the JVM run the group's items as threads, as it does every kernel with one). */
    public static void subGroupSizeOf(KernelContext ctx, IntArray out) {
        ctx.localBarrier();
        if (ctx.localIdx == 0) {
            out.set(ctx.groupIdx, ctx.subGroupSize());
        }
    }

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
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            checkRowSums(device, device.id());
        }
    }

    /**
     * The JVM's sub-groups are single items unless the tuning jvm.sub_groups=32 asks for warps (then groups of a multiple
     * of 32 items reduce by emulated shuffles, as CUDA does): the size each group sees, and the row sums.
     */
    @Test
    void jvmEmulatesWarpSubGroupsWhereTuned() {
        Device jvm = TestDevices.jvm();
        assertEquals(1, subGroupSize(jvm, 64), "the JVM's default");
        io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.sub_groups", "32"), () -> {
            assertEquals(32, subGroupSize(jvm, 64));
            assertEquals(32, subGroupSize(jvm, 32));
            assertEquals(1, subGroupSize(jvm, 48), "a group of no whole number of warps");
            checkRowSums(jvm, "jvm with sub-groups of 32");
        });
    }

    private static int subGroupSize(Device device, int local) {
        DeviceBuffer out = device.allocate(DType.I32, 2);
        device.launch(SIZE, Grid.groups(2, local), out);
        IntArray got = (IntArray) device.download(out);
        assertEquals(got.get(0), got.get(1), "every group the same");
        return got.get(0);
    }

    private static void checkRowSums(Device device, String what) {
        int rows = 7, n = 1000;
        FloatArray in = TensorAssert.random(rows * n, 1f, 11);
        {
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
                            what + " local " + local + " row " + r + ": " + got.get(r) + " vs " + expected);
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
