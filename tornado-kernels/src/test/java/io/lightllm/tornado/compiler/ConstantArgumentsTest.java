package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import org.junit.jupiter.api.Test;

/**
 * A helper's number parameter that receives a constant and is never assigned stays that constant in the kernel, so a
 * local array's size may be computed from it; one the helper assigns is a variable as before. A kernel's own parameter
 * bound by its ref ({@link KernelRef#with}) is a constant the same way (TensorCoreAttention's decode kernels size their
 * tiles by their bound warps).
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

    /** Assigns its own parameter: it cannot be bound. */
    public static void assignsItsParameter(KernelContext ctx, FloatArray out, int bias) {
        bias += 1;
        out.set(ctx.globalIdx, bias);
    }

    @Test
    void aBoundParameterIsAConstantOfThatKernel() {
        KernelRef three = KernelRef.of(getClass(), "tileOfRuntimeSize").with("groups", 3);
        assertEquals("ConstantArgumentsTest.tileOfRuntimeSize[groups=3]", three.name());
        KernelSource cl = KernelCompiler.compile(three, Dialect.OPENCL, null);
        assertTrue(cl.source().contains("[97]"), "a local array of 3 * 32 + 1 floats: " + cl.source());
        assertTrue(cl.entryName().endsWith("__3"), cl.entryName());
        CudaCheck.assertCompiles(KernelCompiler.compile(three, Dialect.CUDA, null).source(), "tileOfRuntimeSize[groups=3]");
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            int local = 96, groups = 2;
            DeviceBuffer out = device.allocate(DType.F32, groups * local);
            device.launch(three, Grid.groups(groups, local), out, 3);
            FloatArray got = (FloatArray) device.download(out);
            assertNeighbours(got, groups * local, local, 1f, device.id());
            IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class,
                    () -> device.launch(three, Grid.groups(groups, local), out, 2));
            assertTrue(wrong.getMessage().contains("bound to 3"), wrong.getMessage());
            // the bound parameter is the last: the launch may leave it to the ref
            DeviceBuffer again = device.allocate(DType.F32, groups * local);
            device.launch(three, Grid.groups(groups, local), again);
            TensorAssert.assertClose(got, (FloatArray) device.download(again), 0f, 0f, device.id() + " without the bound argument");
        }
        // launch bounds: a group larger than the kernel was compiled for is refused on every backend
        KernelRef bounded = TILE_OF_TWO.withLaunchBounds(64, 2);
        assertEquals("ConstantArgumentsTest.tileOfTwo{64 items, 2 groups a unit}", bounded.name());
        Device jvm = TestDevices.jvmAndAcceleratorDevices().getFirst();
        DeviceBuffer small = jvm.allocate(DType.F32, 128);
        jvm.launch(bounded, Grid.groups(2, 64), small, 5);
        assertNeighbours((FloatArray) jvm.download(small), 128, 64, 6f, "bounded");
        IllegalArgumentException tooLarge = assertThrows(IllegalArgumentException.class, () -> jvm.launch(bounded, Grid.groups(1, 128), small, 5));
        assertTrue(tooLarge.getMessage().contains("at most 64 work-items"), tooLarge.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TILE_OF_TWO.with("groups", 3), "tileOfTwo has no parameter groups");
        assertThrows(IllegalArgumentException.class, () -> TILE_OF_TWO.with("bias", 2f), "bias is an int");
        KernelCompileException assigned = assertThrows(KernelCompileException.class, () -> KernelCompiler.compile(
                KernelRef.of(getClass(), "assignsItsParameter").with("bias", 1), Dialect.OPENCL, null));
        assertTrue(assigned.getMessage().contains("assigned in the body"), assigned.getMessage());
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
            assertNeighbours((FloatArray) device.download(out), groups * local, local, 6f, device.id());
        }
    }

    /** What {@link #neighbours} writes: each item its neighbour's local id plus {@code plus}. */
    private static void assertNeighbours(FloatArray got, int items, int local, float plus, String what) {
        for (int i = 0; i < items; i++) {
            assertEquals((i % local + 1) % local + plus, got.get(i), what + " item " + i);
        }
    }
}
