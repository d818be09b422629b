package io.lightllm.tornado.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.cuda.DiagnosticKernels;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.KernelTiming;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Java kernels through the compiler on OpenCL, against the JVM reference. Inputs are small
 * integers and halves, so every result is exact and the two backends must agree bit for bit.
 */
class OpenCLCompiledKernelTest {
    static final KernelRef SCALE = KernelRef.of(OpenCLCompiledKernelTest.class, "scale");
    static final KernelRef ROW_SUM = KernelRef.of(DiagnosticKernels.class, "rowSum");
    static final KernelRef WIDEN = KernelRef.of(OpenCLCompiledKernelTest.class, "widen");

    public static void scale(FloatArray out, FloatArray in, float factor, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, in.get(i) * factor);
        }
    }

    /** dtype-generic: the compiler specialises {@code in} per buffer dtype. */
    public static void widen(FloatArray out, NativeArray in, boolean negate, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float v = in.getFloat(i);
            out.set(i, negate ? -v : v);
        }
    }

    private static FloatArray run(Device dev, KernelRef k, Grid grid, int outSize, NativeArray in, Object... scalars) {
        try (DeviceBuffer din = dev.upload(in); DeviceBuffer out = dev.allocate(DType.F32, outSize)) {
            Object[] args = new Object[2 + scalars.length];
            args[0] = out;
            args[1] = din;
            System.arraycopy(scalars, 0, args, 2, scalars.length);
            dev.launch(k, grid, args);
            return (FloatArray) dev.download(out);
        }
    }

    private static void assertSame(FloatArray expected, FloatArray actual, String what) {
        for (int i = 0; i < expected.getSize(); i++) {
            assertEquals(expected.get(i), actual.get(i), what + " element " + i);
        }
    }

    @Test
    void parallelKernelMatchesTheJvmForAnyGridSize() {
        int n = 1000;
        FloatArray in = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            in.set(i, i - 500);
        }
        FloatArray expected = run(TestDevices.jvm(), SCALE, Grid.of(n), n, in, 0.5f, n);
        for (Grid g : List.of(Grid.of(n), Grid.of(7), Grid.groups(4, 64))) {
            assertSame(expected, run(TestDevices.opencl(), SCALE, g, n, in, 0.5f, n), "scale on " + g);
        }
    }

    @Test
    void explicitKernelWithLocalMemoryMatchesTheJvm() {
        int rows = 5, n = 200;
        FloatArray in = FloatArray.allocate(rows * n);
        for (int i = 0; i < rows * n; i++) {
            in.set(i, i % 13 - 6);
        }
        FloatArray expected = run(TestDevices.jvm(), ROW_SUM, Grid.groups(rows, 1), rows, in, n);
        for (int local : new int[] {1, 16, 64}) {
            assertSame(expected, run(TestDevices.opencl(), ROW_SUM, Grid.groups(rows, local), rows, in, n), "rowSum local " + local);
        }
    }

    @Test
    void genericKernelIsSpecialisedPerDtypeWithABooleanArgument() {
        int n = 100;
        FloatArray f32 = FloatArray.allocate(n);
        HalfArray f16 = HalfArray.allocate(n);
        for (int i = 0; i < n; i++) {
            f32.set(i, i * 0.25f);
            f16.set(i, i * 0.25f); // exact in f16 up to 2048
        }
        for (boolean negate : new boolean[] {false, true}) {
            FloatArray expected = run(TestDevices.jvm(), WIDEN, Grid.of(n), n, f32, negate, n);
            assertSame(expected, run(TestDevices.opencl(), WIDEN, Grid.of(n), n, f32, negate, n), "f32 negate=" + negate);
            assertSame(expected, run(TestDevices.opencl(), WIDEN, Grid.of(n), n, f16, negate, n), "f16 negate=" + negate);
        }
    }

    @Test
    void profilingNamesTheJavaKernel() {
        Device dev = TestDevices.opencl();
        FloatArray in = FloatArray.allocate(16);
        dev.drainProfile();
        dev.setProfiling(true);
        try {
            run(dev, SCALE, Grid.of(16), 16, in, 2f, 16);
            List<KernelTiming> t = dev.drainProfile();
            assertEquals(List.of(SCALE.name()), t.stream().map(KernelTiming::name).toList());
        } finally {
            dev.setProfiling(false);
        }
    }
}
