package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import org.junit.jupiter.api.Test;

class TaskGraphTest {
    public static void addOne(FloatArray x, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) + 1f);
        }
    }

    @Test
    void plansRunTransfersAndTasksInOrderOnEveryDevice() {
        List<Device> devices = new ArrayList<>(List.of(TestDevices.jvm()));
        TestDevices.accelerators().forEach(id -> devices.add(Devices.get(id)));
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

    @Test
    void buffersOfAnotherDeviceAreRefused() {
        DeviceBuffer foreign = new JvmDevice(1).allocate(DType.F32, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new TaskGraph("g").transferToDevice(FloatArray.allocate(4), foreign).plan(TestDevices.jvm()));
        assertTrue(e.getMessage().contains("uses a buffer of jvm"), e.getMessage());
    }
}
