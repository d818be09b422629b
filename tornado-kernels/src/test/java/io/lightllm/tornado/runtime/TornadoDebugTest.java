package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.opencl.OpenCLBackend;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** TornadoVM's debugging flags: -Dtornado.printKernel, -Dtornado.threadInfo, -Dtornado.debug, all to stderr. */
class TornadoDebugTest {
    public static void twice(FloatArray x, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) * 2f);
        }
    }

    public static void groupSum(KernelContext ctx, FloatArray x, FloatArray sums) {
        float[] part = ctx.allocateFloatLocalArray(64);
        part[ctx.localIdx] = x.get(ctx.globalIdx);
        ctx.localBarrier();
        if (ctx.localIdx == 0) {
            float s = 0f;
            for (int i = 0; i < ctx.localGroupSizeX; i++) {
                s += part[i];
            }
            sums.set(ctx.groupIdx, s);
        }
    }

    private static final KernelRef TWICE = KernelRef.of(TornadoDebugTest.class, "twice");
    private static final KernelRef GROUP_SUM = KernelRef.of(TornadoDebugTest.class, "groupSum");

    @AfterEach
    void clearFlags() {
        List.of("tornado.printKernel", "tornado.threadInfo", "tornado.debug", "dbg.second.device").forEach(System::clearProperty);
    }

    /** What {@code work} prints to stderr. */
    private static synchronized String stderrOf(Runnable work) {
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            work.run();
        } finally {
            System.setErr(err);
        }
        return captured.toString(StandardCharsets.UTF_8);
    }

    /** A device of its own, so that its kernels are built (and printed) afresh. */
    private static Device freshOpenCL() {
        return OpenCLBackend.INSTANCE.open(TestDevices.opencl().id());
    }

    private static long count(String text, String part) {
        return text.lines().filter(l -> l.contains(part)).count();
    }

    @Test
    void printKernelPrintsTheOpenCLCOncePerBuild() {
        System.setProperty("tornado.printKernel", "true");
        try (Device cl = freshOpenCL()) {
            DeviceBuffer x = cl.allocate(DType.F32, 64);
            String err = stderrOf(() -> {
                cl.launch(TWICE, Grid.of(64), x, 64);
                cl.launch(TWICE, Grid.of(64), x, 64);
                cl.synchronize();
            });
            assertEquals(1, count(err, "[tornado] OpenCL C of TornadoDebugTest.twice for " + cl.id() + ":"), err);
            assertTrue(err.contains("__kernel void TornadoDebugTest_twice("), err);
            assertTrue(err.contains("[tornado] end of TornadoDebugTest.twice\n"), err);
            assertEquals(0, count(err, "[tornado] launch"), "printKernel alone prints no launches: " + err);
        }
    }

    @Test
    void threadInfoPrintsOneLinePerLaunchWithItsShape() {
        System.setProperty("tornado.threadInfo", "true");
        JvmDevice jvm = new JvmDevice(2);
        DeviceBuffer x = jvm.allocate(DType.F32, 4096), sums = jvm.allocate(DType.F32, 4);
        String err = stderrOf(() -> {
            jvm.launch(TWICE, Grid.of(4096), x, 4096);
            jvm.launch(TWICE, Grid.of(256), x, 256);
            jvm.launch(GROUP_SUM, Grid.groups(4, 64), x, sums);
        });
        assertEquals(List.of(
                "[tornado] launch TornadoDebugTest.twice on jvm: global [4096] local none: the @Parallel loops strided over 2 threads",
                "[tornado] launch TornadoDebugTest.twice on jvm: global [256] local none: the @Parallel loops on the calling thread (at most 1024 work-items)",
                "[tornado] launch TornadoDebugTest.groupSum on jvm: global [256] local [64]: 4 work-groups over 2 threads, "
                        + "a virtual thread per work-item (the kernel has barriers)"), err.lines().toList());

        try (Device cl = freshOpenCL()) {
            DeviceBuffer y = cl.allocate(DType.F32, 256), clSums = cl.allocate(DType.F32, 4);
            String clErr = stderrOf(() -> {
                cl.launch(TWICE, Grid.of(256), y, 256);
                cl.launch(GROUP_SUM, Grid.groups(4, 64), y, clSums);
                cl.synchronize();
            });
            assertEquals(List.of(
                    "[tornado] launch TornadoDebugTest.twice on " + cl.id() + ": global [256] local (the driver's choice)",
                    "[tornado] launch TornadoDebugTest.groupSum on " + cl.id() + ": global [256] local [64]"), clErr.lines().toList());
        }
    }

    @Test
    void debugPrintsLaunchesAndMovedTasks() {
        System.setProperty("tornado.debug", "true");
        Device jvm = TestDevices.jvm(), cl = TestDevices.opencl();
        System.setProperty("dbg.second.device", Devices.numbering().tornadoId(cl.id()).orElseThrow().toString());
        DeviceBuffer x = jvm.allocate(DType.F32, 64);
        String err = stderrOf(() -> {
            try (TaskGraph.Plan plan = new TaskGraph("dbg").task("first", TWICE, Grid.of(64), x, 64).task("second", TWICE, Grid.of(64), x, 64)
                    .plan(jvm)) {
                plan.execute();
            }
        });
        assertTrue(err.contains("[tornado] task graph dbg: task second runs on " + cl.id() + " (-Ddbg.second.device="), err);
        assertTrue(err.contains("the graph on jvm; its 1 buffer(s) are copied there and back at each run"), err);
        assertEquals(1, count(err, "[tornado] launch TornadoDebugTest.twice on jvm: "), err);
        assertEquals(1, count(err, "[tornado] launch TornadoDebugTest.twice on " + cl.id() + ": "), err);

        System.clearProperty("tornado.debug");
        String quiet = stderrOf(() -> jvm.launch(TWICE, Grid.of(64), x, 64));
        assertEquals("", quiet, "the flags are read at each launch");
    }
}
