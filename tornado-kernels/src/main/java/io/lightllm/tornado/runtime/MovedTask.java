package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.NativeArray;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One task of a {@link TaskGraph} that runs on another device than the graph ({@code
 * -D<graph>.<task>.device=B:D}). Devices share no memory, so each buffer argument gets a copy on
 * the task's device; every run copies the graph's buffers there through host memory, launches, and
 * copies them all back (the kernel may write any of them). Slower than staying put, but the
 * graph's other steps see exactly what they would have seen, which is what placing a task is for:
 * running it, or checking it, somewhere else.
 */
final class MovedTask {
    private final Device home;
    private final Device target;
    private final Object[] args;
    private final List<DeviceBuffer> originals = new ArrayList<>();
    private final List<DeviceBuffer> copies = new ArrayList<>();
    private final List<NativeArray> staging = new ArrayList<>();

    MovedTask(Device home, Device target, Object[] graphArgs) {
        this.home = home;
        this.target = target;
        this.args = graphArgs.clone();
        Map<DeviceBuffer, DeviceBuffer> copyOf = new IdentityHashMap<>(); // a buffer passed twice gets one copy
        for (int i = 0; i < args.length; i++) {
            if (args[i] instanceof DeviceBuffer b) {
                args[i] = copyOf.computeIfAbsent(b, this::copyOnTarget);
            }
        }
    }

    private DeviceBuffer copyOnTarget(DeviceBuffer b) {
        DeviceBuffer copy = target.allocate(b.dtype(), b.elements());
        originals.add(b);
        copies.add(copy);
        staging.add(NativeArray.allocate(b.dtype(), b.elements()));
        return copy;
    }

    Device target() {
        return target;
    }

    int buffers() {
        return copies.size();
    }

    void run(KernelRef kernel, Grid grid) {
        for (int i = 0; i < copies.size(); i++) {
            home.copyOut(originals.get(i), staging.get(i)); // waits for the graph's earlier steps
            target.copyIn(staging.get(i), copies.get(i));
        }
        target.launch(kernel, grid, args);
        for (int i = 0; i < copies.size(); i++) {
            target.copyOut(copies.get(i), staging.get(i)); // waits for the launch
            home.copyIn(staging.get(i), originals.get(i));
        }
    }

    void close() {
        copies.forEach(DeviceBuffer::close);
    }
}
