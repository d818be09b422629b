package io.lightllm.tornado.cuda;

import static io.lightllm.tornado.cuda.CudaDriver.check;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.TornadoDebug;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One NVIDIA GPU, driven through its primary context and one non-blocking stream. Launches,
 * copies and transfers are queued on that stream in call order and run asynchronously;
 * {@link #read} and {@link #synchronize} wait. Any thread may use the device: every entry point
 * makes the context current on the calling thread, and a lock keeps the stream's order and the
 * shared staging buffers consistent.
 *
 * <p>Kernels are compiled on first use per (kernel, argument dtypes): Java bytecode to CUDA C,
 * NVRTC to PTX (cached on disk), then loaded by the driver.
 */
public final class CudaDevice extends Device {
    /** Set to true to wait after every launch, so a faulting kernel is named (slow: debugging only). */
    public static final String SYNC_PROPERTY = "lightllm.cuda.sync";

    private record LaunchKey(KernelRef kernel, List<DType> dtypes) {
    }

    private record PendingTiming(String name, MemorySegment start, MemorySegment end) {
    }

    private final int ordinal;
    private final int cuDevice;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final String name;
    private final long memoryBytes;
    private final int multiprocessors;
    private final int ccMajor;
    private final int ccMinor;
    private final long[] maxGridBlocks;
    private final boolean syncEachLaunch = Boolean.getBoolean(SYNC_PROPERTY);

    private final ReentrantLock streamLock = new ReentrantLock();
    /**
     * Instances of one GPU ({@code Devices.openInstance}: the vision encoder's beside the inference steps) share its
     * primary context, so a graph capture on one must not meet another's calls: cuMemFree synchronizes the device,
     * which would break the capture. Every stream operation holds this gate's read lock, a capture its write lock
     * (taken before the stream lock, in both).
     */
    private static final Map<Integer, java.util.concurrent.locks.ReentrantReadWriteLock> CONTEXT_GATES = new ConcurrentHashMap<>();
    private final java.util.concurrent.locks.ReentrantReadWriteLock contextGate;
    private final Map<LaunchKey, CudaKernelLoader.LoadedKernel> kernels = new ConcurrentHashMap<>();
    private final CudaKernelLoader loader;
    private final KernelParams params = new KernelParams(32);
    private final PinnedStaging staging;
    private final List<PendingTiming> pendingTimings = new ArrayList<>();
    private final ArrayDeque<MemorySegment> timingEvents = new ArrayDeque<>();
    private final List<Runnable> closeActions = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Object closeLock = new Object();
    private volatile Thread captureThread;
    /**
     * Programmatic dependent launch (Hopper and newer, the tuning {@code launch.pdl}): each kernel is launched with
     * CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION and its code begins with {@code griddepcontrol.wait} (the
     * kernel compiler's prelude under LJ_PDL), so its blocks can be placed while the kernel before it finishes and
     * start the moment it is done: the gap between dependent kernels, a few microseconds each, shrinks (docs/cuda.md).
     */
    private final boolean programmaticLaunch;
    /**
     * The CUlaunchConfig of cuLaunchKernelEx and room for its two attributes (programmatic serialization, cluster
     * dimensions); each such launch refills it (under the stream lock).
     */
    private final MemorySegment launchConfig = Arena.ofAuto().allocate(CudaDriver.LAUNCH_CONFIG_BYTES + 2 * CudaDriver.LAUNCH_ATTRIBUTE_BYTES, 8);
    private volatile boolean closed;

    CudaDevice(int ordinal) {
        CudaBackend.requireAvailable();
        this.ordinal = ordinal;
        this.contextGate = CONTEXT_GATES.computeIfAbsent(ordinal, o -> new java.util.concurrent.locks.ReentrantReadWriteLock());
        this.cuDevice = CudaDriver.queryInt("cuDeviceGet(" + ordinal + ")", out -> CudaDriver.cuDeviceGet(out, ordinal));
        this.name = CudaBackend.deviceName(cuDevice);
        this.memoryBytes = CudaDriver.queryLong("cuDeviceTotalMem", out -> CudaDriver.cuDeviceTotalMem(out, cuDevice));
        this.multiprocessors = attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.ccMajor = attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.ccMinor = attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.maxGridBlocks = new long[] {attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X),
                attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y), attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z)};
        this.context = CudaDriver.queryHandle("cuDevicePrimaryCtxRetain(" + id() + ")",
                out -> CudaDriver.cuDevicePrimaryCtxRetain(out, cuDevice));
        makeCurrent();
        this.stream = CudaDriver.queryHandle("cuStreamCreate", out -> CudaDriver.cuStreamCreate(out, CudaDriver.CU_STREAM_NON_BLOCKING));
        this.staging = new PinnedStaging(stream);
        this.programmaticLaunch = ccMajor >= 9 && io.lightllm.tornado.runtime.Tuning.get(this, "launch.pdl", 0) == 1;
        this.loader = new CudaKernelLoader(id(), ccMajor, ccMinor, attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
                PtxCache.standard(), programmaticLaunch);
    }

    private int attribute(int attribute) {
        return CudaDriver.queryInt("cuDeviceGetAttribute(" + attribute + ")", out -> CudaDriver.cuDeviceGetAttribute(out, attribute, cuDevice));
    }

    /** Binds the primary context to the calling thread; every driver call path starts here. */
    void makeCurrent() {
        if (closed) {
            throw new IllegalStateException(id() + " is closed");
        }
        check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent(" + id() + ")");
    }

    // ---- facts ---------------------------------------------------------------------------------

    @Override
    public String id() {
        return "cuda:" + ordinal;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long memoryBytes() {
        return memoryBytes;
    }

    /** Streaming multiprocessors. */
    @Override
    public int computeUnits() {
        return multiprocessors;
    }

    /** Compute capability as {@code 10*major + minor} (90 for an H100). */
    @Override
    public boolean supports(io.lightllm.tornado.compiler.Feature feature) {
        return loader.target.features().contains(feature);
    }

    public int computeCapability() {
        return ccMajor * 10 + ccMinor;
    }

    /** Device memory not yet allocated by anyone, in bytes (cuMemGetInfo). */
    public long freeMemoryBytes() {
        makeCurrent();
        return CudaDriver.queryLong("cuMemGetInfo", free -> {
            try (Arena arena = Arena.ofConfined()) {
                return CudaDriver.cuMemGetInfo(free, arena.allocate(JAVA_LONG));
            }
        });
    }

    /** The NVRTC options kernels are compiled with (target architecture first). */
    public List<String> compileOptions() {
        return loader.options();
    }

    MemorySegment stream() {
        return stream;
    }

    /** The CUDA device ordinal (N of {@code cuda:N}). */
    int ordinal() {
        return ordinal;
    }

    // ---- memory ----------------------------------------------------------------------------------

    /** Zero-filled device memory, like every backend's buffers. */
    @Override
    public DeviceBuffer allocate(DType dtype, long elements) {
        if (isCapturingThread()) {
            throw new IllegalStateException("allocate buffers before capturing a CUDA graph: the zero fill would be recorded into the graph");
        }
        CudaBuffer b = allocateUninitialized(dtype, elements);
        if (b.byteSize() > 0) {
            onStream(() -> check(CudaDriver.cuMemsetD8Async(b.devicePointer(), (byte) 0, b.byteSize(), stream), "cuMemsetD8Async"));
        }
        return b;
    }

    /** Device memory with undefined contents (scratch space that is written before it is read). */
    CudaBuffer allocateUninitialized(DType dtype, long elements) {
        if (elements < 0) {
            throw new IllegalArgumentException("negative element count " + elements);
        }
        long bytes = Math.multiplyExact(elements, (long) dtype.bytes());
        if (bytes == 0) {
            return new CudaBuffer(this, dtype, 0, 0);
        }
        makeCurrent();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            int rc = CudaDriver.cuMemAlloc(out, bytes);
            if (rc != CudaDriver.CUDA_SUCCESS) {
                String free = rc == CudaDriver.CUDA_ERROR_OUT_OF_MEMORY ? "; " + describeFreeMemory() : "";
                throw new CudaException(rc, CudaDriver.error(rc, "cuMemAlloc(" + bytes + " bytes for " + elements + " x " + dtype + ") on "
                        + id()).getMessage() + free);
            }
            return new CudaBuffer(this, dtype, elements, out.get(JAVA_LONG, 0));
        }
    }

    private String describeFreeMemory() {
        try {
            return String.format("%.2f GiB of %.2f GiB free", freeMemoryBytes() / (double) (1L << 30), memoryBytes / (double) (1L << 30));
        } catch (RuntimeException e) {
            return "free memory unknown";
        }
    }

    /** Frees after the queued work, which may still read or write the memory, is done. */
    void free(long pointer) {
        if (closed) {
            return; // the context and everything in it are gone already
        }
        requireNotCapturing("closing a buffer");
        onStream(() -> {
            check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize before cuMemFree on " + id());
            check(CudaDriver.cuMemFree(pointer), "cuMemFree on " + id());
        });
    }

    @Override
    public void write(MemorySegment src, DeviceBuffer dst, long dstByteOffset) {
        long dstPtr = pointer(dst, dstByteOffset, src.byteSize(), "write");
        if (src.byteSize() == 0) {
            return;
        }
        requireNotCapturing("write (host to device)");
        onStream(() -> staging.toDevice(src, dstPtr));
    }

    @Override
    public void read(DeviceBuffer src, long srcByteOffset, MemorySegment dst) {
        long srcPtr = pointer(src, srcByteOffset, dst.byteSize(), "read");
        if (dst.byteSize() == 0) {
            return;
        }
        requireNotCapturing("read (device to host)");
        onStream(() -> staging.toHost(srcPtr, dst));
    }

    @Override
    public void copy(DeviceBuffer src, long srcByteOffset, DeviceBuffer dst, long dstByteOffset, long bytes) {
        long s = pointer(src, srcByteOffset, bytes, "copy source");
        long d = pointer(dst, dstByteOffset, bytes, "copy destination");
        if (bytes == 0) {
            return;
        }
        onStream(() -> timed("copy", () -> check(CudaDriver.cuMemcpyDtoDAsync(d, s, bytes, stream), "cuMemcpyDtoDAsync(" + bytes + " bytes)")));
    }

    /**
     * Copies {@code rows} rows of {@code rowBytes} from {@code src} (rows {@code srcPitch} bytes
     * apart, the first at {@code srcOffset}) to {@code dst} (rows {@code dstPitch} apart, from
     * {@code dstOffset}) as one strided copy: how a block of columns joins a wider matrix.
     */
    void copyRows(DeviceBuffer src, long srcOffset, long srcPitch, DeviceBuffer dst, long dstOffset, long dstPitch, long rowBytes, int rows) {
        if (rows == 0 || rowBytes == 0) {
            return;
        }
        if (rowBytes > srcPitch || rowBytes > dstPitch) {
            throw new IllegalArgumentException("rows of " + rowBytes + " bytes do not fit pitches " + srcPitch + " / " + dstPitch);
        }
        long s = pointer(src, srcOffset, (rows - 1) * srcPitch + rowBytes, "copyRows source");
        long d = pointer(dst, dstOffset, (rows - 1) * dstPitch + rowBytes, "copyRows destination");
        onStream(() -> timed("copyRows", () -> check(CudaDriver.cuMemcpy2DAsync(d, dstPitch, s, srcPitch, rowBytes, rows, stream),
                "cuMemcpy2DAsync(" + rows + " rows of " + rowBytes + " bytes)")));
    }

    /** The device address {@code offset} bytes into {@code b}, after checking that {@code bytes} fit there. */
    long pointer(DeviceBuffer b, long offset, long bytes, String what) {
        if (!(b instanceof CudaBuffer cb) || b.device() != this) {
            throw new IllegalArgumentException(what + ": " + b + " does not belong to " + id());
        }
        if (offset < 0 || bytes < 0 || offset + bytes > b.byteSize()) {
            throw new IllegalArgumentException(what + ": bytes [" + offset + ", " + (offset + bytes) + ") are outside " + b + " ("
                    + b.byteSize() + " bytes)");
        }
        long base = cb.devicePointer();
        return base == 0 ? 0 : base + offset;
    }

    // ---- launches --------------------------------------------------------------------------------

    @Override
    protected void execute(KernelRef kernel, Grid grid, Object[] args) {
        DType[] dtypes = new DType[args.length];
        for (int i = 0; i < args.length; i++) {
            dtypes[i] = args[i] instanceof DeviceBuffer b ? b.dtype() : null;
        }
        CudaKernelLoader.LoadedKernel k = kernels.computeIfAbsent(new LaunchKey(kernel, Arrays.asList(dtypes)), key -> {
            makeCurrent();
            return loader.load(kernel, dtypes);
        });
        LaunchShape shape = LaunchShape.of(grid, k.kind(), k.maxThreadsPerBlock(), maxGridBlocks, kernel + " on " + id());
        if (TornadoDebug.threadInfo()) {
            TornadoDebug.launch(id(), kernel.name(), shape + " for " + grid.sizes("none"));
        }
        onStream(() -> {
            MemorySegment packed = params.pack(args);
            timed(kernel.name(), () -> {
                int rc = programmaticLaunch || grid.cluster() > 1 ? launchEx(k, shape, grid.cluster(), packed)
                        : CudaDriver.cuLaunchKernel(k.function(), shape.gridX(), shape.gridY(), shape.gridZ(), shape.blockX(), shape.blockY(),
                                shape.blockZ(), k.dynamicSharedBytes(), stream, packed, MemorySegment.NULL);
                if (rc != CudaDriver.CUDA_SUCCESS) {
                    throw CudaDriver.error(rc, "launching " + kernel + " (" + k.entryName() + ", " + k.registers() + " registers/thread) with "
                            + shape + " for " + grid + " on " + id());
                }
            });
            if (syncEachLaunch && !isCapturingThread()) {
                check(CudaDriver.cuStreamSynchronize(stream), "kernel " + kernel + " with " + shape + " on " + id());
            }
        });
    }

    /**
     * cuLaunchKernelEx with programmatic serialization where {@link #programmaticLaunch} is on, and the blocks in clusters
     * of {@code cluster} along x where that is more than 1 (Grid.cluster: kernels that meet at cluster barriers).
     */
    private int launchEx(CudaKernelLoader.LoadedKernel k, LaunchShape shape, int cluster, MemorySegment packed) {
        MemorySegment c = launchConfig;
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_GRID_X, shape.gridX());
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_GRID_X + 4, shape.gridY());
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_GRID_X + 8, shape.gridZ());
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_BLOCK_X, shape.blockX());
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_BLOCK_X + 4, shape.blockY());
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_BLOCK_X + 8, shape.blockZ());
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_SHARED_MEM, k.dynamicSharedBytes());
        c.set(ADDRESS, CudaDriver.LAUNCH_CONFIG_STREAM, stream);
        int count = 0;
        if (programmaticLaunch) {
            MemorySegment a = c.asSlice(CudaDriver.LAUNCH_CONFIG_BYTES + count++ * CudaDriver.LAUNCH_ATTRIBUTE_BYTES, CudaDriver.LAUNCH_ATTRIBUTE_BYTES);
            a.set(JAVA_INT, 0, CudaDriver.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
            a.set(JAVA_INT, CudaDriver.LAUNCH_ATTRIBUTE_VALUE, 1);
        }
        if (cluster > 1) {
            MemorySegment a = c.asSlice(CudaDriver.LAUNCH_CONFIG_BYTES + count++ * CudaDriver.LAUNCH_ATTRIBUTE_BYTES, CudaDriver.LAUNCH_ATTRIBUTE_BYTES);
            a.set(JAVA_INT, 0, CudaDriver.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
            a.set(JAVA_INT, CudaDriver.LAUNCH_ATTRIBUTE_VALUE, cluster);
            a.set(JAVA_INT, CudaDriver.LAUNCH_ATTRIBUTE_VALUE + 4, 1);
            a.set(JAVA_INT, CudaDriver.LAUNCH_ATTRIBUTE_VALUE + 8, 1);
        }
        c.set(ADDRESS, CudaDriver.LAUNCH_CONFIG_ATTRS, c.asSlice(CudaDriver.LAUNCH_CONFIG_BYTES));
        c.set(JAVA_INT, CudaDriver.LAUNCH_CONFIG_NUM_ATTRS, count);
        return CudaDriver.cuLaunchKernelEx(c, k.function(), packed, MemorySegment.NULL);
    }

    /** Stream operations queued so far (each {@link #onStream} call counts one, nested ones too). */
    private long streamOps;

    /** Runs {@code work} holding the stream lock with the context current. */
    void onStream(Runnable work) {
        contextGate.readLock().lock();
        streamLock.lock();
        try {
            streamOps++;
            makeCurrent();
            work.run();
        } finally {
            streamLock.unlock();
            contextGate.readLock().unlock();
        }
    }

    /**
     * How many stream operations (launches, copies, graph replays, collectives, GEMMs) have been
     * queued: two reads that differ by what the caller queued itself show nothing else ran between.
     * Read it from inside {@link #onStream}.
     */
    long streamOps() {
        return streamOps;
    }

    /** Queues {@code enqueue}'s work between two timing events when profiling (not while capturing). */
    void timed(String label, Runnable enqueue) {
        if (!profiling() || isCapturingThread()) {
            enqueue.run();
            return;
        }
        MemorySegment start = timingEvent();
        MemorySegment end = timingEvent();
        check(CudaDriver.cuEventRecord(start, stream), "cuEventRecord");
        enqueue.run();
        check(CudaDriver.cuEventRecord(end, stream), "cuEventRecord");
        pendingTimings.add(new PendingTiming(label, start, end));
    }

    private MemorySegment timingEvent() {
        MemorySegment e = timingEvents.poll();
        return e != null ? e : CudaDriver.queryHandle("cuEventCreate", out -> CudaDriver.cuEventCreate(out, CudaDriver.CU_EVENT_DEFAULT));
    }

    @Override
    public void synchronize() {
        requireNotCapturing("synchronize");
        onStream(() -> {
            check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize on " + id());
            resolveTimings();
        });
    }

    private void resolveTimings() {
        if (pendingTimings.isEmpty()) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ms = arena.allocate(JAVA_FLOAT);
            for (PendingTiming t : pendingTimings) {
                check(CudaDriver.cuEventElapsedTime(ms, t.start(), t.end()), "cuEventElapsedTime");
                record(t.name(), Math.round(ms.get(JAVA_FLOAT, 0) * 1e6));
                timingEvents.add(t.start());
                timingEvents.add(t.end());
            }
        }
        pendingTimings.clear();
    }

    /**
     * Device time of the work {@code enqueue} queues, in milliseconds, measured by events on the
     * stream (waits for it). For benchmarks.
     */
    public double elapsedMillis(Runnable enqueue) {
        requireNotCapturing("elapsedMillis");
        double[] result = new double[1];
        onStream(() -> {
            MemorySegment start = timingEvent();
            MemorySegment end = timingEvent();
            try (Arena arena = Arena.ofConfined()) {
                check(CudaDriver.cuEventRecord(start, stream), "cuEventRecord");
                enqueue.run();
                check(CudaDriver.cuEventRecord(end, stream), "cuEventRecord");
                check(CudaDriver.cuEventSynchronize(end), "cuEventSynchronize");
                MemorySegment ms = arena.allocate(JAVA_FLOAT);
                check(CudaDriver.cuEventElapsedTime(ms, start, end), "cuEventElapsedTime");
                result[0] = ms.get(JAVA_FLOAT, 0);
            } finally {
                timingEvents.add(start);
                timingEvents.add(end);
            }
        });
        return result[0];
    }

    // ---- CUDA graphs -----------------------------------------------------------------------------

    /**
     * Records the launches {@code launches} makes on this device into a CUDA graph, without
     * running them, and instantiates it; {@link CudaGraph#replay()} then runs them all with one
     * driver call. Only launches and device-to-device copies may be captured (host transfers,
     * synchronize and allocate throw). Every argument is frozen at capture: buffers by address,
     * scalars by value, so values that change per step (positions, lengths) must be read by the
     * kernels from device buffers that the host updates between replays. Run each kernel once
     * before capturing so that compilation happens outside the capture. Other threads wait for
     * this device while the capture runs.
     */
    @Override
    public CudaGraph capture(Runnable launches) {
        contextGate.writeLock().lock(); // the other instances of this GPU wait (see contextGate)
        streamLock.lock();
        try {
            makeCurrent();
            if (captureThread != null) {
                throw new IllegalStateException(id() + " is already capturing a graph");
            }
            check(CudaDriver.cuStreamBeginCapture(stream, CudaDriver.CU_STREAM_CAPTURE_MODE_RELAXED), "cuStreamBeginCapture on " + id());
            captureThread = Thread.currentThread();
            Throwable failure = null;
            try {
                launches.run();
            } catch (Throwable t) {
                failure = t;
            }
            captureThread = null;
            MemorySegment graph;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(java.lang.foreign.ValueLayout.ADDRESS);
                int rc = CudaDriver.cuStreamEndCapture(stream, out);
                graph = out.get(java.lang.foreign.ValueLayout.ADDRESS, 0);
                if (failure != null || rc != CudaDriver.CUDA_SUCCESS) {
                    if (!graph.equals(MemorySegment.NULL)) {
                        CudaDriver.cuGraphDestroy(graph);
                    }
                    CudaException end = rc == CudaDriver.CUDA_SUCCESS ? null : CudaDriver.error(rc, "cuStreamEndCapture on " + id()
                            + " (the capture was broken by an operation that cannot be captured)");
                    if (failure == null) {
                        throw end;
                    }
                    if (end != null) {
                        failure.addSuppressed(end);
                    }
                    if (failure instanceof RuntimeException re) {
                        throw re;
                    }
                    if (failure instanceof Error e) {
                        throw e;
                    }
                    throw new CudaException("capturing a CUDA graph on " + id() + " failed", failure);
                }
            }
            MemorySegment exec;
            try {
                exec = CudaDriver.queryHandle("cuGraphInstantiate on " + id(), out -> CudaDriver.cuGraphInstantiate(out, graph, 0));
            } catch (CudaException e) {
                CudaDriver.cuGraphDestroy(graph);
                throw e;
            }
            return new CudaGraph(this, graph, exec);
        } finally {
            captureThread = null;
            streamLock.unlock();
            contextGate.writeLock().unlock();
        }
    }

    boolean isCapturingThread() {
        return captureThread == Thread.currentThread();
    }

    private void requireNotCapturing(String what) {
        if (isCapturingThread()) {
            throw new IllegalStateException(what + " cannot be part of a CUDA graph capture on " + id()
                    + ": only launches and device-to-device copies can be captured");
        }
    }

    // ---- lifecycle -------------------------------------------------------------------------------

    /** Runs {@code action} (with the context current) when the device closes, before the context is released. */
    void onClose(Runnable action) {
        closeActions.add(action);
    }

    /** Waits for pending work, then frees what the device holds and releases the primary context. */
    @Override
    public void close() {
        // not synchronized on this: record() and profiling() take this monitor while the stream lock is held
        synchronized (closeLock) {
            if (closed) {
                return;
            }
            try {
                synchronize();
            } catch (RuntimeException e) {
                System.err.println("lightllm: " + id() + " had failed work at close: " + e.getMessage());
            }
            contextGate.readLock().lock();
            streamLock.lock();
            try {
                makeCurrent();
                for (Runnable r : closeActions) {
                    r.run();
                }
                loader.close();
                staging.close();
                for (MemorySegment e : timingEvents) {
                    CudaDriver.cuEventDestroy(e);
                }
                CudaDriver.cuStreamDestroy(stream);
                params.close();
                closed = true;
                CudaDriver.cuDevicePrimaryCtxRelease(cuDevice);
            } finally {
                streamLock.unlock();
                contextGate.readLock().unlock();
            }
        }
    }
}
