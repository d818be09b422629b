package io.lightllm.tornado.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.LongArray;
import io.lightllm.tornado.compiler.KernelCompileException;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelTiming;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Hand-written OpenCL C on the real driver; inputs are small integers and halves so every float result is exact. */
class OpenCLKernelTest {

    static final String AXPY = """
            __kernel void axpy(__global float* out, __global const float* x, __global const float* y, float alpha, int n) {
                int i = get_global_id(0);
                if (i < n) {
                    out[i] = x[i] + alpha * y[i];
                }
            }
            """;

    /** One work-group per row; a tree reduction over __local memory with barriers (any power-of-two group size up to 64). */
    static final String ROW_SUM = """
            __kernel void rowSum(__global float* out, __global const float* in, int n) {
                __local float partial[64];
                int row = get_group_id(0);
                int lid = get_local_id(0);
                int size = get_local_size(0);
                float s = 0.0f;
                for (int i = lid; i < n; i += size) {
                    s += in[row * n + i];
                }
                partial[lid] = s;
                for (int stride = size / 2; stride > 0; stride /= 2) {
                    barrier(CLK_LOCAL_MEM_FENCE);
                    if (lid < stride) {
                        partial[lid] += partial[lid + stride];
                    }
                }
                if (lid == 0) {
                    out[row] = partial[0];
                }
            }
            """;

    /** Echoes each scalar kind as bits, to check how the host encodes arguments. */
    static final String SCALARS = """
            __kernel void scalars(__global long* out, int i, long l, float f, double d, int flag) {
                out[0] = i;
                out[1] = l;
                out[2] = as_int(f);
                out[3] = as_long(d);
                out[4] = flag;
            }
            """;

    private static FloatArray ramp(int n, float scale, float offset) {
        FloatArray a = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            a.set(i, i * scale + offset);
        }
        return a;
    }

    @Test
    void vectorAddWithScalarWithAndWithoutLocalSizes() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        int n = 1000;
        FloatArray x = ramp(n, 1, 0), y = ramp(n, 3, -7);
        OpenCLKernel axpy = dev.buildKernel(AXPY, "axpy");
        try (DeviceBuffer dx = dev.upload(x); DeviceBuffer dy = dev.upload(y); DeviceBuffer out = dev.allocate(DType.F32, n)) {
            for (Grid grid : List.of(Grid.of(n), Grid.groups(16, 64))) {
                dev.zero(out);
                dev.enqueue(axpy, grid, out, dx, dy, 0.5f, n);
                FloatArray r = (FloatArray) dev.download(out);
                for (int i = 0; i < n; i++) {
                    assertEquals(x.get(i) + 0.5f * y.get(i), r.get(i), grid + " element " + i);
                }
            }
        }
    }

    @Test
    void localMemoryReductionWithBarriers() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        int rows = 7, n = 300;
        FloatArray in = FloatArray.allocate(rows * n);
        float[] expected = new float[rows];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < n; i++) {
                int v = (r * 31 + i * 7) % 23 - 11; // small integers: any summation order gives the exact sum
                in.set(r * n + i, v);
                expected[r] += v;
            }
        }
        OpenCLKernel rowSum = dev.buildKernel(ROW_SUM, "rowSum");
        try (DeviceBuffer din = dev.upload(in); DeviceBuffer out = dev.allocate(DType.F32, rows)) {
            for (int local : new int[] {1, 16, 64}) {
                dev.zero(out);
                dev.enqueue(rowSum, Grid.groups(rows, local), out, din, n);
                FloatArray r = (FloatArray) dev.download(out);
                for (int row = 0; row < rows; row++) {
                    assertEquals(expected[row], r.get(row), "local size " + local + " row " + row);
                }
            }
        }
    }

    @Test
    void everyScalarKindReachesTheKernelBitExact() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        OpenCLKernel scalars = dev.buildKernel(SCALARS, "scalars");
        try (DeviceBuffer out = dev.allocate(DType.I64, 5)) {
            for (boolean flag : new boolean[] {true, false}) {
                dev.enqueue(scalars, Grid.of(1), out, -123456, 0x1234_5678_9ABCL, -1.75f, Math.PI, flag);
                LongArray r = (LongArray) dev.download(out);
                assertEquals(-123456, r.get(0));
                assertEquals(0x1234_5678_9ABCL, r.get(1));
                assertEquals(Float.floatToRawIntBits(-1.75f), r.get(2));
                assertEquals(Double.doubleToRawLongBits(Math.PI), r.get(3));
                assertEquals(flag ? 1 : 0, r.get(4));
            }
        }
    }

    @Test
    void builtKernelsAreCachedInMemory() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        OpenCLKernel first = dev.buildKernel(AXPY, "axpy");
        int built = dev.sourceBuilds() + dev.binaryLoads();
        assertSame(first, dev.buildKernel(AXPY, "axpy"));
        assertEquals(built, dev.sourceBuilds() + dev.binaryLoads(), "a cached kernel builds no program");
    }

    @Test
    void buildErrorsCarryTheLogAndNumberedSource() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        String source = """
                __kernel void broken(__global float* x) {
                    x[0] = undefined_variable + 1.0f;
                }
                """;
        KernelCompileException e = assertThrows(KernelCompileException.class, () -> dev.buildKernel(source, "broken"));
        String m = e.getMessage();
        assertTrue(m.contains("kernel broken"), m);
        assertTrue(m.contains("undefined_variable") && m.contains("error"), "build log missing: " + m);
        assertTrue(m.contains("2|     x[0] = undefined_variable + 1.0f;"), "numbered source missing: " + m);
    }

    @Test
    void unknownEntryPointNamesTheKernelAndTheCLError() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        OpenCLException e = assertThrows(OpenCLException.class, () -> dev.buildKernel(AXPY, "nosuchkernel"));
        assertEquals("clCreateKernel", e.call());
        assertTrue(e.getMessage().contains("CL_INVALID_KERNEL_NAME") && e.getMessage().contains("nosuchkernel"), e.getMessage());
    }

    @Test
    void badArgumentsFailWithTheirIndex() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        OpenCLKernel axpy = dev.buildKernel(AXPY, "axpy");
        try (DeviceBuffer buf = dev.allocate(DType.F32, 4)) {
            IllegalArgumentException wrongType = assertThrows(IllegalArgumentException.class,
                    () -> dev.enqueue(axpy, Grid.of(4), buf, buf, buf, "0.5", 4));
            assertTrue(wrongType.getMessage().contains("argument 3") && wrongType.getMessage().contains("String"), wrongType.getMessage());
            // a float where the kernel declares int: the driver checks the size
            OpenCLException wrongSize = assertThrows(OpenCLException.class, () -> dev.enqueue(axpy, Grid.of(4), buf, buf, buf, 0.5f, 4L));
            assertTrue(wrongSize.getMessage().contains("CL_INVALID_ARG_SIZE") && wrongSize.getMessage().contains("argument 4"),
                    wrongSize.getMessage());
        }
    }

    @Test
    void launchErrorsNameTheKernelAndGrid() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        OpenCLKernel rowSum = dev.buildKernel(ROW_SUM, "rowSum");
        try (DeviceBuffer buf = dev.allocate(DType.F32, 4)) {
            // one group larger than any device allows (PoCL's limit is 4096)
            OpenCLException e = assertThrows(OpenCLException.class, () -> dev.enqueue(rowSum, Grid.groups(1, 1 << 20), buf, buf, 4));
            assertEquals("clEnqueueNDRangeKernel", e.call());
            assertTrue(e.getMessage().contains("CL_INVALID_WORK_GROUP_SIZE") || e.getMessage().contains("CL_INVALID_WORK_ITEM_SIZE"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("kernel rowSum on Grid[1048576]/[1048576]"), e.getMessage());
        }
    }

    @Test
    void explicitJavaKernelWithoutLocalSizeIsRejectedBeforeCompiling() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        try (DeviceBuffer buf = dev.allocate(DType.F32, 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> dev.launch(OpenCLCompiledKernelTest.ROW_SUM, Grid.of(4), buf, buf, 4));
            assertTrue(e.getMessage().contains("explicit kernels need local (work-group) sizes"), e.getMessage());
        }
    }

    @Test
    void profilingRecordsEachLaunchOnSynchronize() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        int n = 1 << 20;
        OpenCLKernel axpy = dev.buildKernel(AXPY, "axpy");
        try (DeviceBuffer x = dev.allocate(DType.F32, n); DeviceBuffer out = dev.allocate(DType.F32, n)) {
            dev.drainProfile();
            dev.setProfiling(true);
            try {
                dev.enqueue(axpy, Grid.of(n), out, x, x, 2f, n);
                dev.enqueue(axpy, Grid.of(n), out, x, x, 3f, n);
                List<KernelTiming> timings = dev.drainProfile();
                assertEquals(List.of("axpy", "axpy"), timings.stream().map(KernelTiming::name).toList());
                // a million-element launch takes measurable device time; zero would mean the events were not read
                assertTrue(timings.stream().allMatch(t -> t.nanos() > 0), timings.toString());
                assertEquals(List.of(), dev.drainProfile(), "drained timings are gone");
            } finally {
                dev.setProfiling(false);
            }
        }
    }
}
