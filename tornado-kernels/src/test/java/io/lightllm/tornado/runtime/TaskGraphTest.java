package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.jvm.JvmDevice;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class TaskGraphTest {
    public static void addOne(FloatArray x, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) + 1f);
        }
    }

    @Test
    void plansRunTransfersAndTasksInOrderOnEveryDevice() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        for (Device device : devices) {
            int n = 1000;
            FloatArray in = FloatArray.allocate(n), out = FloatArray.allocate(n);
            for (int i = 0; i < n; i++) {
                in.set(i, i);
            }
            DeviceBuffer buf = device.allocate(DType.F32, n);
            KernelRef k = KernelRef.of(TaskGraphTest.class, "addOne");
            TaskGraph.Plan plan = new TaskGraph("twice").transferToDevice(in, buf).task("first", k, Grid.of(n), buf, n)
                    .task("second", k, Grid.of(n), buf, n).transferToHost(buf, out).plan(device);
            plan.execute();
            for (int i = 0; i < n; i++) {
                assertEquals(i + 2f, out.get(i), device.id());
            }
            Map<String, Long> times = plan.profile();
            assertEquals(List.of("copy-in 0", "first", "second", "copy-out 3"), List.copyOf(times.keySet()));
            assertTrue(times.values().stream().allMatch(t -> t > 0), times.toString());
            assertEquals(2f, out.get(0), "a second execution starts again from the host data");
        }
    }

    public static void scaleInto(FloatArray out, FloatArray in, float factor, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, in.get(i) * factor);
        }
    }

    /**
     * TornadoVM's {@code -D<graph>.<task>.device=B:D}: one task of a graph on the JVM runs on
     * OpenCL (and the other way round), and the graph computes what it computes in one place.
     */
    @Test
    void aTaskPlacedOnAnotherDeviceGivesTheSameResult() {
        List<String> accelerators = TestDevices.accelerators();
        Assumptions.assumeFalse(accelerators.isEmpty(), "no accelerator to move a task to");
        Device accelerator = Devices.get(accelerators.getFirst());
        assertEquals(expectedOfMovedGraph(), runMovedGraph(TestDevices.jvm(), "second", accelerator));
        assertEquals(expectedOfMovedGraph(), runMovedGraph(accelerator, "first", TestDevices.jvm()));
    }

    private static final int N = 1000;

    private static List<Float> expectedOfMovedGraph() {
        List<Float> out = new ArrayList<>();
        for (int i = 0; i < N; i++) {
            out.add((i + 1f) * 3f + 1f);
        }
        return out;
    }

    /** in + 1 (first), times 3 into a second buffer (second, which reads one buffer and writes another), + 1 (third). */
    private static List<Float> runMovedGraph(Device device, String movedTask, Device target) {
        String property = TaskGraph.deviceProperty("moved", movedTask);
        System.setProperty(property, Devices.numbering().tornadoId(target.id()).orElseThrow().toString());
        try {
            FloatArray in = FloatArray.allocate(N), out = FloatArray.allocate(N);
            for (int i = 0; i < N; i++) {
                in.set(i, i);
            }
            DeviceBuffer a = device.allocate(DType.F32, N), b = device.allocate(DType.F32, N);
            KernelRef addOne = KernelRef.of(TaskGraphTest.class, "addOne");
            KernelRef scale = KernelRef.of(TaskGraphTest.class, "scaleInto");
            try (TaskGraph.Plan plan = new TaskGraph("moved").transferToDevice(in, a).task("first", addOne, Grid.of(N), a, N)
                    .task("second", scale, Grid.of(N), b, a, 3f, N).task("third", addOne, Grid.of(N), b, N).transferToHost(b, out).plan(device)) {
                assertSame(target, plan.device(movedTask));
                assertSame(device, plan.device("third"));
                plan.execute();
                plan.execute(); // copies on the task's device are refreshed at every run
                List<Float> result = new ArrayList<>();
                for (int i = 0; i < N; i++) {
                    result.add(out.get(i));
                }
                return result;
            }
        } finally {
            System.clearProperty(property);
        }
    }

    @Test
    void aWrongTaskDeviceNamesThePropertyAndTheValidIds() {
        System.setProperty("g.t.device", "7:0");
        try {
            TaskGraph g = new TaskGraph("g").task("t", KernelRef.of(TaskGraphTest.class, "addOne"), Grid.of(4),
                    TestDevices.jvm().allocate(DType.F32, 4), 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.plan(TestDevices.jvm()));
            assertTrue(e.getMessage().startsWith("-Dg.t.device=7:0: no device 7:0: there is no backend 7") && e.getMessage().contains("2:0 = jvm"),
                    e.getMessage());
            System.setProperty("g.t.device", "2:0");
            assertSame(TestDevices.jvm(), g.plan(TestDevices.jvm()).device("t"), "placing a task on the graph's own device changes nothing");
        } finally {
            System.clearProperty("g.t.device");
        }
    }

    @Test
    void buffersOfAnotherDeviceAreRefused() {
        DeviceBuffer foreign = new JvmDevice(1).allocate(DType.F32, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new TaskGraph("g").transferToDevice(FloatArray.allocate(4), foreign).plan(TestDevices.jvm()));
        assertTrue(e.getMessage().contains("uses a buffer of jvm"), e.getMessage());
        IllegalArgumentException task = assertThrows(IllegalArgumentException.class, () -> new TaskGraph("g")
                .task("t", KernelRef.of(TaskGraphTest.class, "addOne"), Grid.of(4), foreign, 4).plan(TestDevices.jvm()));
        assertTrue(task.getMessage().contains("task graph g: t uses a buffer of jvm"), task.getMessage());
    }
}
