package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.NativeArray;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
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
 *
 * <p>As in TornadoVM, {@code -D<graph>.<task>.device=B:D} runs one task on another device
 * ({@link MovedTask}): the graph's buffers stay on the graph's device, and the task works on
 * copies of its buffer arguments there.
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

    /** The system property that places a task on another device, TornadoVM's {@code <graph>.<task>.device}. */
    public static String deviceProperty(String graphName, String taskName) {
        return graphName + "." + taskName + ".device";
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

    /**
     * Binds the graph to a device; buffers must belong to it. Tasks that a
     * {@code -D<graph>.<task>.device=B:D} property places elsewhere get their copies there now.
     */
    public Plan plan(Device device) {
        for (Step s : steps) {
            for (DeviceBuffer b : buffersOf(s)) {
                if (b.device() != device) {
                    throw new IllegalArgumentException("task graph " + name + ": " + s.name() + " uses a buffer of " + b.device().id());
                }
            }
        }
        return new Plan(device);
    }

    private static List<DeviceBuffer> buffersOf(Step s) {
        return switch (s) {
            case CopyIn c -> List.of(c.buffer());
            case CopyOut c -> List.of(c.buffer());
            case Launch l -> Arrays.stream(l.args()).filter(DeviceBuffer.class::isInstance).map(DeviceBuffer.class::cast).toList();
        };
    }

    /** A task graph bound to a device. Closing frees the copies of moved tasks. */
    public final class Plan implements AutoCloseable {
        private final Device device;
        private final Map<Launch, MovedTask> moved = new IdentityHashMap<>();

        private Plan(Device device) {
            this.device = device;
            try {
                for (Step s : steps) {
                    if (s instanceof Launch l) {
                        placeElsewhere(l);
                    }
                }
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        private void placeElsewhere(Launch l) {
            String property = deviceProperty(name, l.name());
            String value = System.getProperty(property);
            if (value == null) {
                return;
            }
            Device target = Devices.get(Devices.fromTornadoProperty(property, value));
            if (target != device) {
                MovedTask m = new MovedTask(device, target, l.args());
                moved.put(l, m);
                TornadoDebug.note("task graph " + name + ": task " + l.name() + " runs on " + target.id() + " (-D" + property + "=" + value
                        + "), the graph on " + device.id() + "; its " + m.buffers() + " buffer(s) are copied there and back at each run");
            }
        }

        /** The device that runs {@code taskName}: the graph's, unless a property moved it. */
        public Device device(String taskName) {
            for (Step s : steps) {
                if (s instanceof Launch l && l.name().equals(taskName)) {
                    MovedTask m = moved.get(l);
                    return m == null ? device : m.target();
                }
            }
            throw new IllegalArgumentException("task graph " + name + " has no task " + taskName);
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
                case Launch l -> {
                    MovedTask m = moved.get(l);
                    if (m == null) {
                        device.launch(l.kernel(), l.grid(), l.args());
                    } else {
                        m.run(l.kernel(), l.grid());
                    }
                }
                case CopyOut c -> device.copyOut(c.buffer(), c.host());
            }
        }

        @Override
        public void close() {
            moved.values().forEach(MovedTask::close);
            moved.clear();
        }
    }
}
