package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import org.junit.jupiter.api.Test;

/**
 * A helper's number parameter that receives a constant and is never assigned stays that constant in the kernel, so a
 * local array's size may be computed from it (TensorCoreAttention's decode entries size their tiles by their warps
 * this way); one the helper assigns is a variable as before.
 */
class ConstantArgumentsTest {
    static final KernelRef TILE_OF_TWO = KernelRef.of(ConstantArgumentsTest.class, "tileOfTwo");

    /** Each item writes its id into a tile of two groups' size, then reads its neighbour's; out = neighbour + (bias + 1). */
    public static void tileOfTwo(KernelContext ctx, FloatArray out, int bias) {
        neighbours(ctx, out, 2, bias);
    }

    static void neighbours(KernelContext ctx, FloatArray out, int groups, int bias) {
        float[] tile = ctx.allocateFloatLocalArray(groups * 32 + 1);
        bias += 1; // assigned: stays a variable
        int lid = ctx.localIdx;
        tile[lid] = lid;
        ctx.localBarrier();
        out.set(ctx.groupIdx * ctx.localGroupSizeX + lid, tile[(lid + 1) % ctx.localGroupSizeX] + bias);
    }

    /** The same helper with a size the caller computes: refused, as any local array of no constant size. */
    public static void tileOfRuntimeSize(KernelContext ctx, FloatArray out, int groups) {
        neighbours(ctx, out, groups, 0);
    }

    @Test
    void aConstantArgumentSizesTheHelpersLocalArray() {
        String cl = KernelCompiler.compile(TILE_OF_TWO, Dialect.OPENCL, null).source();
        assertTrue(cl.contains("[65]"), "a local array of 2 * 32 + 1 floats: " + cl);
        CudaCheck.assertCompiles(KernelCompiler.compile(TILE_OF_TWO, Dialect.CUDA, null).source(), "tileOfTwo");
        KernelCompileException e = assertThrows(KernelCompileException.class,
                () -> KernelCompiler.compile(KernelRef.of(getClass(), "tileOfRuntimeSize"), Dialect.OPENCL, null));
        assertTrue(e.getMessage().contains("needs a constant size"), e.getMessage());
    }

    @Test
    void runsOnEveryDevice() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            int local = 64, groups = 3;
            DeviceBuffer out = device.allocate(DType.F32, groups * local);
            device.launch(TILE_OF_TWO, Grid.groups(groups, local), out, 5);
            FloatArray got = (FloatArray) device.download(out);
            for (int i = 0; i < groups * local; i++) {
                assertEquals((i % local + 1) % local + 6f, got.get(i), device.id() + " item " + i);
            }
        }
    }
}
