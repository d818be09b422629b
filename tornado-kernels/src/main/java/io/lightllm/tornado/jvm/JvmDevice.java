package io.lightllm.tornado.jvm;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.KernelScan;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.TornadoDebug;
import io.lightllm.tornado.runtime.Tuning;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The JVM device: buffers are host memory and kernels run as Java on a pool of one thread per
 * core. It is the reference every other backend is tested against, and the CPU backend.
 *
 * <p>How a kernel runs here: a {@code @Parallel} kernel runs once per host thread, its
 * outermost parallel loops strided over the threads. An explicit kernel runs once per
 * work-item; work-groups are spread over the threads, and when the kernel has barriers each
 * work-item of a group gets its own virtual thread so they can wait for each other.
 */
public final class JvmDevice extends Device {
    private final ThreadTeam team;
    private final int threads;
    private final Map<KernelRef, Compiled> kernels = new ConcurrentHashMap<>();

    private record Compiled(JvmEntry entry, boolean parallel, boolean barrier) {
    }

    /** System property with the number of kernel threads (the CLI's {@code --threads}). */
    public static final String THREADS_PROPERTY = "lightllm.threads";

    /** A device with {@link #defaultThreads()} threads. */
    public JvmDevice() {
        this(defaultThreads());
    }

    public JvmDevice(int threads) {
        this(threads, RECORDS);
    }

    /**
     * A device of {@code threads} threads that, where {@code recordsSteps}, records launch sequences for replay
     * ({@link #capture}), so that code paths a GPU takes with CUDA graphs (recorded decode steps) run here too.
     */
    public JvmDevice(int threads, boolean recordsSteps) {
        this.threads = threads;
        this.team = new ThreadTeam(threads);
        this.recordsSteps = recordsSteps;
    }

    private final boolean recordsSteps;

    /**
     * {@code -Dlightllm.jvm.graphs=true}: the JVM device records decode steps as a GPU does ({@link #capture}). Off by
     * default: a replay here saves only the host's work of issuing a step's launches, which is small beside a CPU step's
     * kernels; tests turn it on to run the recorded path.
     */
    private static final boolean RECORDS = Boolean.getBoolean("lightllm.jvm.graphs");

    /**
     * The launches and device-to-device copies {@code launches} makes, frozen for replay ({@link Device#recordLaunches}),
     * where this device records steps; else null (the caller launches each time).
     */
    @Override
    public Replay capture(Runnable launches) {
        return recordsSteps ? recordLaunches(launches) : null;
    }

    @Override
    public String id() {
        return "jvm";
    }

    @Override
    public String name() {
        return describeCpu();
    }

    @Override
    public long memoryBytes() {
        return physicalMemory();
    }

    @Override
    public int computeUnits() {
        return threads;
    }

    @Override
    public DeviceBuffer allocate(DType dtype, long elements) {
        refuseWhileRecording("allocate");
        return new JvmBuffer(this, dtype, elements);
    }

    /**
     * Small arrays stay where they are: the buffer aliases them. A large one (a checkpoint's tensor mapped
     * from its file, or weights quantised at load into plain memory) is copied into {@link HugePages}: a decode
     * step streams every weight once, and 4 KiB pages cost it page walks: ~6 % of a bf16 step from the
     * file's pages; weights quantised at load were left in 4 KiB pages until 2026-12-05 (llama-1b, one run
     * each: int8 13.3 -> 14.1 tok/s, int4 16.3 -> 18.5 once they were copied, docs/benchmarks.md).
     * {@code -Dlightllm.jvm.hugepages=false} aliases everything.
     */
    @Override
    public DeviceBuffer upload(NativeArray data) {
        refuseWhileRecording("an upload");
        MemorySegment src = data.segment();
        if (HugePages.available() && src.byteSize() >= HugePages.MIN_BYTES) {
            JvmBuffer copy = new JvmBuffer(this, data.dtype(), data.getSize());
            MemorySegment.copy(src, 0, copy.segment(), 0, src.byteSize());
            return copy;
        }
        return new JvmBuffer(this, data);
    }

    /** The host array behind a buffer of this device (zero copy). */
    public NativeArray array(DeviceBuffer buffer) {
        return ((JvmBuffer) buffer).array;
    }

    @Override
    public void write(MemorySegment src, DeviceBuffer dst, long dstByteOffset) {
        refuseWhileRecording("a host-to-device write");
        MemorySegment.copy(src, 0, ((JvmBuffer) dst).segment(), dstByteOffset, src.byteSize());
    }

    @Override
    public void read(DeviceBuffer src, long srcByteOffset, MemorySegment dst) {
        refuseWhileRecording("a device-to-host read");
        MemorySegment.copy(((JvmBuffer) src).segment(), srcByteOffset, dst, 0, dst.byteSize());
    }

    @Override
    public void copy(DeviceBuffer src, long srcByteOffset, DeviceBuffer dst, long dstByteOffset, long bytes) {
        MemorySegment from = ((JvmBuffer) src).segment(), to = ((JvmBuffer) dst).segment();
        runOrRecord(() -> MemorySegment.copy(from, srcByteOffset, to, dstByteOffset, bytes));
    }

    @Override
    public void synchronize() {
        refuseWhileRecording("synchronize");
        // launches are synchronous on the JVM
    }

    /**
     * A {@code @Parallel} launch of at most this many work-items runs on the calling thread: handing a few hundred
     * one-element items to the thread team cost more than running them (a batch-1 step's KV copies, 512 items, 12 ->
     * 2 µs a launch; `bench static --profile` on llama-1b, 2026-12-05). {@code -Dlightllm.jvm.serial_items}.
     */
    static final long SERIAL_ITEMS = Long.getLong("lightllm.jvm.serial_items", 1024);

    /** Runs {@code task} on this device's threads, one call per index (for overrides). */
    public void parallelFor(int n, java.util.function.IntConsumer task) {
        team.run(n, task);
    }

    /** Records the time of work done outside {@link #execute} (an override) while profiling. */
    public void recordTime(String name, long nanos) {
        record(name, nanos);
    }

    public int threads() {
        return threads;
    }

    @Override
    protected void execute(KernelRef kernel, Grid grid, Object[] args) {
        Compiled c = kernels.computeIfAbsent(kernel, k -> {
            boolean parallel = !k.usesContext() && KernelScan.hasParallelLoops(k.method());
            boolean barrier = k.usesContext() && KernelScan.usesBarrier(k.method());
            return new Compiled(JvmEntryGenerator.generate(k, parallel), parallel, barrier);
        });
        Object[] hostArgs = new Object[args.length];
        for (int i = 0; i < args.length; i++) {
            hostArgs[i] = args[i] instanceof JvmBuffer b ? b.array : args[i];
        }
        if (TornadoDebug.threadInfo()) {
            TornadoDebug.launch(id(), kernel.name(), shape(c, kernel, grid));
        }
        long t0 = profiling() ? System.nanoTime() : 0;
        if (kernel.usesContext()) {
            runExplicit(c, grid, hostArgs);
        } else if (c.parallel && grid.totalWorkItems() > SERIAL_ITEMS) {
            parallelFor(threads, t -> c.entry.run(null, t, threads, hostArgs));
        } else {
            c.entry.run(null, 0, 1, hostArgs);
        }
        if (profiling()) {
            record(kernel.name(), System.nanoTime() - t0);
        }
    }

    /** How {@link #execute} spreads a launch over this device's threads, for {@code -Dtornado.threadInfo}. */
    private String shape(Compiled c, KernelRef kernel, Grid grid) {
        if (kernel.usesContext()) {
            long groups = grid.totalWorkItems() / (grid.localSize(0) * grid.localSize(1) * grid.localSize(2));
            boolean itemThreads = c.barrier && grid.localSize(0) * grid.localSize(1) * grid.localSize(2) > 1;
            return grid.sizes("none") + ": " + groups + " work-groups over " + threads + " threads"
                    + (itemThreads ? ", a virtual thread per work-item (the kernel has barriers)" : ", work-items in turn");
        }
        if (c.parallel && grid.totalWorkItems() <= SERIAL_ITEMS) {
            return grid.sizes("none") + ": the @Parallel loops on the calling thread (at most " + SERIAL_ITEMS + " work-items)";
        }
        return c.parallel ? grid.sizes("none") + ": the @Parallel loops strided over " + threads + " threads"
                : "one work-item (no @Parallel loop), on the calling thread";
    }

    private void runExplicit(Compiled c, Grid grid, Object[] args) {
        if (!grid.hasLocal()) {
            throw new IllegalArgumentException("explicit kernels need local (work-group) sizes: Grid.local(...)");
        }
        int lx = (int) grid.localSize(0), ly = (int) grid.localSize(1), lz = (int) grid.localSize(2);
        int gx = (int) (grid.globalSize(0) / lx), gy = (int) (grid.globalSize(1) / ly), gz = (int) (grid.globalSize(2) / lz);
        int groups = gx * gy * gz;
        int groupSize = lx * ly * lz;
        int cluster = grid.cluster();
        // sub-groups of a warp (tuning jvm.sub_groups=32, for tests: kernel paths that only a GPU's sub-groups take then run here
        // too), for groups of whole warps whose items run as threads (the emulated shuffles meet at the warp's barrier)
        boolean subGroups = c.barrier && groupSize % KernelContext.WARP_SIZE == 0
                && Tuning.get(this, "sub_groups", 1) == KernelContext.WARP_SIZE;
        parallelFor(groups / cluster, k -> {
            // a cluster's groups run at once (their items on virtual threads) so that they can meet at its barrier
            CyclicBarrier clusterBarrier = cluster > 1 ? new CyclicBarrier(cluster * groupSize) : null;
            List<Thread> items = new ArrayList<>(cluster * groupSize);
            Throwable[] failure = new Throwable[1];
            for (int g = k * cluster; g < (k + 1) * cluster; g++) {
                int bx = g % gx, by = (g / gx) % gy, bz = g / (gx * gy);
                JvmKernelContext.WorkGroup wg = new JvmKernelContext.WorkGroup(groupSize, c.barrier, clusterBarrier, subGroups);
                // a group of one needs no threads: its barriers are no-ops
                if (!c.barrier || groupSize == 1 && cluster == 1) {
                    JvmKernelContext ctx = newContext(grid, wg, bx, by, bz);
                    for (int item = 0; item < groupSize; item++) {
                        setLocal(ctx, item, lx, ly);
                        c.entry.run(ctx, 0, 1, args);
                    }
                    continue;
                }
                for (int item = 0; item < groupSize; item++) {
                    JvmKernelContext ctx = newContext(grid, wg, bx, by, bz);
                    setLocal(ctx, item, lx, ly);
                    items.add(Thread.ofVirtual().start(() -> {
                        try {
                            c.entry.run(ctx, 0, 1, args);
                        } catch (Throwable t) {
                            synchronized (failure) {
                                if (failure[0] == null) {
                                    failure[0] = t;
                                }
                            }
                            wg.breakBarriers(); // wakes the others with BrokenBarrierException
                        }
                    }));
                }
            }
            for (Thread t : items) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            }
            if (failure[0] != null) {
                throw failure[0] instanceof RuntimeException re ? re : new IllegalStateException(failure[0]);
            }
        });
    }

    private static JvmKernelContext newContext(Grid grid, JvmKernelContext.WorkGroup wg, int bx, int by, int bz) {
        JvmKernelContext ctx = new JvmKernelContext();
        ctx.group = wg;
        ctx.groupIdx = bx;
        ctx.groupIdy = by;
        ctx.groupIdz = bz;
        ctx.localGroupSizeX = (int) grid.localSize(0);
        ctx.localGroupSizeY = (int) grid.localSize(1);
        ctx.localGroupSizeZ = (int) grid.localSize(2);
        ctx.globalGroupSizeX = (int) grid.globalSize(0);
        ctx.globalGroupSizeY = (int) grid.globalSize(1);
        ctx.globalGroupSizeZ = (int) grid.globalSize(2);
        return ctx;
    }

    private static void setLocal(JvmKernelContext ctx, int item, int lx, int ly) {
        ctx.localIdx = item % lx;
        ctx.localIdy = (item / lx) % ly;
        ctx.localIdz = item / (lx * ly);
        ctx.globalIdx = ctx.groupIdx * ctx.localGroupSizeX + ctx.localIdx;
        ctx.globalIdy = ctx.groupIdy * ctx.localGroupSizeY + ctx.localIdy;
        ctx.globalIdz = ctx.groupIdz * ctx.localGroupSizeZ + ctx.localIdz;
        ctx.allocations = 0;
    }

    @Override
    public void close() {
        team.close();
    }

    /**
     * Kernel threads of a JVM device: {@code -Dlightllm.threads}, else the cores the JVM may use
     * (which respects {@code taskset} and container limits).
     */
    public static int defaultThreads() {
        String value = System.getProperty(THREADS_PROPERTY);
        if (value == null) {
            return Runtime.getRuntime().availableProcessors();
        }
        try {
            int n = Integer.parseInt(value.trim());
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // falls through to the message
        }
        throw new IllegalArgumentException(THREADS_PROPERTY + " must be a whole number of at least 1, not '" + value + "'");
    }

    static long physicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }

    static String describeCpu() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return "JVM on " + line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (Exception ignored) {
            // not Linux: fall through
        }
        return "JVM on " + System.getProperty("os.arch");
    }
}
