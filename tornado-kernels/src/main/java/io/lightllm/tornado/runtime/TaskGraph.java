package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.NativeArray;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * TornadoVM's task-graph style on top of {@link Device}: declare the transfers and kernel
 * launches of a computation once, then execute the plan as often as needed. Device buffers
 * persist between executions, so data marked {@link #transferToDevice} once stays there.
 *
 * <pre>{@code
 * TaskGraph.Plan plan = new TaskGraph("norm")
 *         .transferToDevice(x, xBuf)
 *         .task("rmsnorm", Norms.RMS_NORM, Grid.groups(rows, 64), outBuf, xBuf, wBuf, 1e-5f, dim)
 *         .transferToHost(outBuf, out)
 *         .plan(device);
 * plan.execute();                    // runs everything, waits
 * Map<String, Long> ns = plan.profile(); // runs again, device time per task
 * }</pre>
 */
public final class TaskGraph {
    private sealed interface Step permits CopyIn, Launch, CopyOut {
        String name();
    }

    private record CopyIn(String name, NativeArray host, DeviceBuffer buffer) implements Step {
    }

    private record Launch(String name, KernelRef kernel, Grid grid, Object[] args) implements Step {
    }

    private record CopyOut(String name, DeviceBuffer buffer, NativeArray host) implements Step {
    }

    private final String name;
    private final List<Step> steps = new ArrayList<>();

    public TaskGraph(String name) {
        this.name = name;
    }

    /** Copies {@code host} into {@code buffer} at every execution. */
    public TaskGraph transferToDevice(NativeArray host, DeviceBuffer buffer) {
        steps.add(new CopyIn("copy-in " + steps.size(), host, buffer));
        return this;
    }

    /** Launches {@code kernel} with {@code args} (as for {@link Device#launch}). */
    public TaskGraph task(String taskName, KernelRef kernel, Grid grid, Object... args) {
        steps.add(new Launch(taskName, kernel, grid, args.clone()));
        return this;
    }

    /** Copies {@code buffer} back into {@code host} at every execution. */
    public TaskGraph transferToHost(DeviceBuffer buffer, NativeArray host) {
        steps.add(new CopyOut("copy-out " + steps.size(), buffer, host));
        return this;
    }

    /** Binds the graph to a device; buffers must belong to it. */
    public Plan plan(Device device) {
        for (Step s : steps) {
            DeviceBuffer b = switch (s) {
                case CopyIn c -> c.buffer();
                case CopyOut c -> c.buffer();
                case Launch l -> null;
            };
            if (b != null && b.device() != device) {
                throw new IllegalArgumentException("task graph " + name + ": " + s.name() + " uses a buffer of " + b.device().id());
            }
        }
        return new Plan(device);
    }

    /** A task graph bound to a device. */
    public final class Plan {
        private final Device device;

        private Plan(Device device) {
            this.device = device;
        }

        /** Runs every step in order and waits for the device. */
        public void execute() {
            for (Step s : steps) {
                run(s);
            }
            device.synchronize();
        }

        /** Runs the graph once more, waiting after each step; returns nanoseconds per step. */
        public Map<String, Long> profile() {
            Map<String, Long> times = new LinkedHashMap<>();
            device.synchronize();
            for (Step s : steps) {
                long t0 = System.nanoTime();
                run(s);
                device.synchronize();
                times.put(s.name(), System.nanoTime() - t0);
            }
            return times;
        }

        private void run(Step s) {
            switch (s) {
                case CopyIn c -> device.copyIn(c.host(), c.buffer());
                case Launch l -> device.launch(l.kernel(), l.grid(), l.args());
                case CopyOut c -> device.copyOut(c.buffer(), c.host());
            }
        }
    }
}
