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
            o.launch(this, grid, checked);
        } else {
            execute(kernel, grid, checked);
        }
    }

    /** Launches the portable Java kernel even where an override exists (tests compare the two). */
    public final void launchPortable(KernelRef kernel, Grid grid, Object... args) {
        Object[] checked = KernelArguments.check(this, kernel, args);
        checkBounds(kernel, grid);
        execute(kernel, grid, checked);
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
