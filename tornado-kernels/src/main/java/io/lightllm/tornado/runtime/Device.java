package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One compute device of one backend: the JVM itself, an OpenCL device, a CUDA GPU. It owns
 * buffers, compiles kernels on first use (cached per kernel) and launches them in order;
 * launches may be asynchronous until {@link #synchronize()}.
 */
public abstract class Device implements AutoCloseable {
    private final Map<KernelRef, KernelOverride> overrides = new ConcurrentHashMap<>();
    private final List<KernelTiming> timings = new ArrayList<>();
    private boolean profiling;

    /** Selection string: {@code jvm}, {@code opencl:P:D}, {@code cuda:N}. */
    public abstract String id();

    public abstract String name();

    public abstract long memoryBytes();

    public abstract int computeUnits();

    public abstract DeviceBuffer allocate(DType dtype, long elements);

    /** Host to device: copies all of {@code src} to {@code dst} at {@code dstByteOffset}. */
    public abstract void write(MemorySegment src, DeviceBuffer dst, long dstByteOffset);

    /** Device to host: fills all of {@code dst} from {@code src} at {@code srcByteOffset}. Waits for pending work. */
    public abstract void read(DeviceBuffer src, long srcByteOffset, MemorySegment dst);

    /** Device to device. */
    public abstract void copy(DeviceBuffer src, long srcByteOffset, DeviceBuffer dst, long dstByteOffset, long bytes);

    /** Waits until every launch and copy issued so far is done. */
    public abstract void synchronize();

    /** Runs the portable Java kernel, compiled for this device. Arguments are already checked. */
    protected abstract void execute(KernelRef kernel, Grid grid, Object[] args);

    /**
     * Puts read-only data (weights) on the device. Devices that compute in host memory may
     * return a buffer that aliases {@code data} instead of copying it.
     */
    public DeviceBuffer upload(NativeArray data) {
        DeviceBuffer b = allocate(data.dtype(), data.getSize());
        write(data.segment(), b, 0);
        return b;
    }

    public void copyIn(NativeArray src, DeviceBuffer dst) {
        write(src.segment(), dst, 0);
    }

    public void copyOut(DeviceBuffer src, NativeArray dst) {
        read(src, 0, dst.segment());
    }

    /** A host array holding a copy of the buffer's contents. */
    public NativeArray download(DeviceBuffer src) {
        NativeArray a = NativeArray.allocate(src.dtype(), src.elements());
        copyOut(src, a);
        return a;
    }

    /** Launches {@code kernel}, through this device's override for it when one is registered. */
    public final void launch(KernelRef kernel, Grid grid, Object... args) {
        Object[] checked = KernelArguments.check(this, kernel, args);
        checkBounds(kernel, grid);
        KernelOverride o = overrides.get(kernel);
        if (o != null) {
            if (TornadoDebug.threadInfo()) {
                TornadoDebug.launch(id(), kernel.name(), grid.sizes("none") + ", run by this backend's replacement (Device.override)");
            }
            runOrRecord(() -> o.launch(this, grid, checked));
        } else {
            runOrRecord(() -> execute(kernel, grid, checked));
        }
    }

    /** Launches the portable Java kernel even where an override exists (tests compare the two). */
    public final void launchPortable(KernelRef kernel, Grid grid, Object... args) {
        Object[] checked = KernelArguments.check(this, kernel, args);
        checkBounds(kernel, grid);
        runOrRecord(() -> execute(kernel, grid, checked));
    }

    /** A kernel compiled under launch bounds runs groups of at most that many work-items (on every backend, so tests catch it). */
    private static void checkBounds(KernelRef kernel, Grid grid) {
        long items = grid.localSize(0) * grid.localSize(1) * grid.localSize(2);
        if (kernel.bounds() != null && items > kernel.bounds().items()) {
            throw new IllegalArgumentException(kernel + " is compiled for groups of at most " + kernel.bounds().items() + " work-items, not "
                    + items);
        }
    }

    /**
     * Whether kernels using {@code feature} run here, natively or emulated (a kernel that uses a
     * missing one is refused when it is compiled). Launchers that have a kernel for each case ask
     * this before picking, say, tensor cores.
     */
    public boolean supports(io.lightllm.tornado.compiler.Feature feature) {
        return true;
    }

    public void override(KernelRef kernel, KernelOverride implementation) {
        overrides.put(kernel, implementation);
    }

    public boolean hasOverride(KernelRef kernel) {
        return overrides.containsKey(kernel);
    }

    // ---- recorded launch sequences ----------------------------------------------------

    /** A recorded sequence of launches that can be queued again with one call (a CUDA graph). */
    public interface Replay extends AutoCloseable {
        void replay();

        @Override
        void close();
    }

    /**
     * Records the launches {@code launches} makes, without running them, for replay; null where
     * the backend cannot record (then the caller just launches). Arguments are frozen at
     * recording: per-step values must live in device buffers that the host updates before each
     * replay. Run the launches once before recording, so kernels are compiled and scratch exists.
     */
    public Replay capture(Runnable launches) {
        return null;
    }

    /** The thread whose launches {@link #recordLaunches} is recording, and what it has recorded; null when not recording. */
    private Thread recorder;
    private List<Runnable> recorded;

    /**
     * {@link #capture} for a backend whose launches run from the host anyway (the JVM): the launches and device-to-device
     * copies that {@code launches} makes on this thread are kept, arguments frozen, and replayed in order, as a CUDA graph
     * would be; what a graph cannot hold (host transfers, allocation, synchronize) throws while recording
     * ({@link #refuseWhileRecording}), so a step that records here records on a GPU too. Launches from other threads run
     * as they come.
     */
    protected final synchronized Replay recordLaunches(Runnable launches) {
        if (recorder != null) {
            throw new IllegalStateException(id() + " is already recording");
        }
        List<Runnable> ops = new ArrayList<>();
        recorder = Thread.currentThread();
        recorded = ops;
        try {
            launches.run();
        } finally {
            recorder = null;
            recorded = null;
        }
        List<Runnable> frozen = List.copyOf(ops);
        return new Replay() {
            private boolean closed;

            @Override
            public void replay() {
                if (closed) {
                    throw new IllegalStateException("replay of a closed recording on " + id());
                }
                frozen.forEach(Runnable::run);
            }

            @Override
            public void close() {
                closed = true;
            }
        };
    }

    /** Runs {@code op} now, or keeps it for replay if this thread is inside {@link #recordLaunches}. */
    protected final void runOrRecord(Runnable op) {
        if (recorder == Thread.currentThread()) {
            recorded.add(op);
        } else {
            op.run();
        }
    }

    /** Throws if this thread is inside {@link #recordLaunches}: {@code what} is an operation a recorded graph cannot hold. */
    protected final void refuseWhileRecording(String what) {
        if (recorder == Thread.currentThread()) {
            throw new IllegalStateException(what + " while recording launches on " + id() + " (a CUDA graph cannot hold it: do it before the step)");
        }
    }

    // ---- profiling -----------------------------------------------------------------

    public synchronized void setProfiling(boolean on) {
        profiling = on;
    }

    public synchronized boolean profiling() {
        return profiling;
    }

    protected synchronized void record(String name, long nanos) {
        timings.add(new KernelTiming(name, nanos));
    }

    /** Timings recorded since the last call, after waiting for pending work. */
    public List<KernelTiming> drainProfile() {
        synchronize();
        synchronized (this) {
            List<KernelTiming> out = List.copyOf(timings);
            timings.clear();
            return out;
        }
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return id() + " (" + name() + ")";
    }
}
