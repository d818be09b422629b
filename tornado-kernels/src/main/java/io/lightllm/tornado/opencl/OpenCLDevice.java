package io.lightllm.tornado.opencl;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.compiler.KernelScan;
import io.lightllm.tornado.compiler.KernelSource;
import io.lightllm.tornado.compiler.Target;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.JvmSignalHandlers;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.TornadoDebug;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One OpenCL device: a context with one in-order command queue (profiling enabled). Java
 * kernels are compiled to OpenCL C by {@link KernelCompiler} on first launch and cached per
 * kernel and argument dtypes; built programs are also cached on disk (see
 * {@link ProgramBinaryCache}). Launches and device-to-device copies are asynchronous; host
 * writes and reads block.
 */
public final class OpenCLDevice extends Device {
    private final OpenCLDeviceEntry entry;
    private final MemorySegment context;
    private final MemorySegment queue;
    private final ProgramBuilder programs;
    /** Built kernels by (source, entry point); owns the cl_kernel handles. */
    private final Map<List<String>, OpenCLKernel> builtKernels = new HashMap<>();
    /** Java kernels by (kernel, argument dtypes), as the compiler specialises per dtype. */
    private final Map<CompiledKey, OpenCLKernel> compiledKernels = new HashMap<>();
    /** Kernels whose emulated warps exchange values through a local array of a fixed size. */
    private final java.util.Set<CompiledKey> warpKernels = new java.util.HashSet<>();
    /** Compiled kernels with @Parallel loops: launched with the grid reversed, the innermost loop on dimension 0 (Grid.reversed). */
    private final java.util.Set<CompiledKey> parallelKernels = new java.util.HashSet<>();
    /** Launch events not yet timed, while profiling is on. */
    private final List<PendingTiming> pending = new ArrayList<>();
    private boolean closed;

    private record CompiledKey(KernelRef kernel, List<DType> argDtypes) {
    }

    private record PendingTiming(String name, MemorySegment event) {
    }

    OpenCLDevice(OpenCLDeviceEntry entry, Path binaryCacheDirectory) {
        this.entry = entry;
        this.context = CL.createContext(entry.device());
        JvmSignalHandlers.restore("clCreateContext");
        this.queue = CL.createCommandQueue(context, entry.device(), CL.CL_QUEUE_PROFILING_ENABLE);
        this.programs = new ProgramBuilder(context, entry, binaryCacheDirectory);
    }

    @Override
    public String id() {
        return entry.id();
    }

    @Override
    public String name() {
        return entry.deviceName();
    }

    @Override
    public long memoryBytes() {
        return entry.info().memoryBytes();
    }

    @Override
    public int computeUnits() {
        return entry.info().computeUnits();
    }

    @Override
    public boolean supports(io.lightllm.tornado.compiler.Feature feature) {
        return target().features().contains(feature);
    }

    @Override
    public DeviceBuffer allocate(DType dtype, long elements) {
        return new OpenCLBuffer(this, dtype, elements, context);
    }

    @Override
    public void write(MemorySegment src, DeviceBuffer dst, long dstByteOffset) {
        OpenCLBuffer b = own(dst, "write destination");
        checkRange("write", b, dstByteOffset, src.byteSize());
        if (src.byteSize() == 0) {
            return;
        }
        if (src.isNative()) {
            CL.enqueueWriteBuffer(queue, b.mem(), true, dstByteOffset, src);
            return;
        }
        // the driver needs a native address: stage heap memory
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment tmp = staging.allocate(src.byteSize());
            tmp.copyFrom(src);
            CL.enqueueWriteBuffer(queue, b.mem(), true, dstByteOffset, tmp);
        }
    }

    @Override
    public void read(DeviceBuffer src, long srcByteOffset, MemorySegment dst) {
        OpenCLBuffer b = own(src, "read source");
        checkRange("read", b, srcByteOffset, dst.byteSize());
        if (dst.byteSize() == 0) {
            synchronize();
            return;
        }
        // a blocking read on the in-order queue also waits for every earlier launch
        if (dst.isNative()) {
            CL.enqueueReadBuffer(queue, b.mem(), true, srcByteOffset, dst);
            return;
        }
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment tmp = staging.allocate(dst.byteSize());
            CL.enqueueReadBuffer(queue, b.mem(), true, srcByteOffset, tmp);
            dst.copyFrom(tmp);
        }
    }

    @Override
    public void copy(DeviceBuffer src, long srcByteOffset, DeviceBuffer dst, long dstByteOffset, long bytes) {
        OpenCLBuffer from = own(src, "copy source");
        OpenCLBuffer to = own(dst, "copy destination");
        checkRange("copy from", from, srcByteOffset, bytes);
        checkRange("copy to", to, dstByteOffset, bytes);
        if (bytes > 0) {
            CL.enqueueCopyBuffer(queue, from.mem(), to.mem(), srcByteOffset, dstByteOffset, bytes);
        }
    }

    /** Sets every byte of the buffer to zero (asynchronous, like a launch). */
    public void zero(DeviceBuffer buffer) {
        OpenCLBuffer b = own(buffer, "zero target");
        if (b.byteSize() > 0) {
            try (Arena a = Arena.ofConfined()) {
                CL.enqueueFillBuffer(queue, b.mem(), a.allocate(JAVA_BYTE), 0, b.byteSize());
            }
        }
    }

    /** clFinish, then records the device time of every launch made while profiling was on. */
    @Override
    public synchronized void synchronize() {
        ensureOpen();
        CL.finish(queue);
        // a kernel's first launch may have compiled it (PoCL builds its work-group functions lazily)
        JvmSignalHandlers.restore("a kernel launch");
        for (PendingTiming t : pending) {
            long start = CL.eventProfilingInfo(t.event, CL.CL_PROFILING_COMMAND_START);
            long end = CL.eventProfilingInfo(t.event, CL.CL_PROFILING_COMMAND_END);
            CL.releaseEvent(t.event);
            record(t.name, end - start);
        }
        pending.clear();
    }

    @Override
    protected synchronized void execute(KernelRef kernel, Grid grid, Object[] args) {
        if (kernel.usesContext() && !grid.hasLocal()) {
            // as on the JVM: the kernel's local arrays and reductions are sized for the group the caller picks
            throw new IllegalArgumentException(kernel + ": explicit kernels need local (work-group) sizes: Grid.local(...)");
        }
        DType[] argDtypes = new DType[args.length];
        for (int i = 0; i < args.length; i++) {
            argDtypes[i] = args[i] instanceof DeviceBuffer b ? b.dtype() : null;
        }
        CompiledKey key = new CompiledKey(kernel, Arrays.asList(argDtypes.clone()));
        OpenCLKernel compiled = compiledKernels.get(key);
        if (compiled == null) {
            KernelSource source = KernelCompiler.compile(kernel, target(), argDtypes);
            compiled = build(source.source(), source.entryName(), kernel.name());
            compiledKernels.put(key, compiled);
            if (Target.emulatesWarps(source)) {
                warpKernels.add(key);
            }
            if (!kernel.usesContext() && KernelScan.hasParallelLoops(kernel.method())) {
                parallelKernels.add(key);
            }
        }
        long items = grid.localSize(0) * grid.localSize(1) * grid.localSize(2);
        if (warpKernels.contains(key) && (items % KernelContext.WARP_SIZE != 0 || items > Target.WARP_EMULATION_MAX_ITEMS)) {
            throw new IllegalArgumentException(kernel + " uses warp operations, which OpenCL emulates for work-groups of a multiple of "
                    + KernelContext.WARP_SIZE + " up to " + Target.WARP_EMULATION_MAX_ITEMS + " items, not " + items);
        }
        launch(compiled, kernel.name(), parallelKernels.contains(key) ? grid.reversed() : grid, args);
    }

    private Target target;

    /** What this device runs of the kernel language (double precision only with cl_khr_fp64). */
    private Target target() {
        if (target == null) {
            target = Target.opencl(id() + " (" + name() + ")", CL.deviceString(entry.device(), CL.CL_DEVICE_EXTENSIONS).contains("cl_khr_fp64"));
        }
        return target;
    }

    /**
     * Builds (or finds in the caches) the kernel {@code entryName} of hand-written OpenCL C.
     * Throws {@link io.lightllm.tornado.compiler.KernelCompileException} with the build log and
     * the numbered source when the driver rejects it.
     */
    public synchronized OpenCLKernel buildKernel(String source, String entryName) {
        return build(source, entryName, entryName);
    }

    /**
     * Enqueues a kernel from {@link #buildKernel}. Arguments in parameter order: this device's
     * buffers for {@code __global T*}, Integer for int, Long for long, Float for float, Double
     * for double, Boolean for int (1 or 0).
     */
    public synchronized void enqueue(OpenCLKernel kernel, Grid grid, Object... args) {
        if (kernel.device() != this) {
            throw new IllegalArgumentException(kernel + " was built for another device, not " + id());
        }
        launch(kernel, kernel.name(), grid, args);
    }

    /** Programs this device built from source (the disk cache had no usable binary). */
    public int sourceBuilds() {
        return programs.sourceBuilds();
    }

    /** Programs this device loaded from the disk cache's binaries. */
    public int binaryLoads() {
        return programs.binaryLoads();
    }

    /** Where the binary of {@code source} is cached for this device. */
    Path binaryCacheFile(String source) {
        return programs.cacheFile(source);
    }

    private OpenCLKernel build(String source, String entryName, String label) {
        ensureOpen();
        List<String> key = List.of(source, entryName);
        OpenCLKernel kernel = builtKernels.get(key);
        if (kernel == null) {
            TornadoDebug.kernelSource(id(), label, "OpenCL C", source);
            MemorySegment program = programs.build(source, label);
            try {
                kernel = new OpenCLKernel(this, label, CL.createKernel(program, entryName));
            } finally {
                CL.releaseProgram(program); // the kernel keeps the program alive
            }
            builtKernels.put(key, kernel);
        }
        return kernel;
    }

    private void launch(OpenCLKernel kernel, String profileName, Grid grid, Object[] args) {
        ensureOpen();
        try (Arena a = Arena.ofConfined()) {
            for (int i = 0; i < args.length; i++) {
                CL.setKernelArg(kernel.handle, i, argumentBytes(a, kernel, i, args[i]));
            }
            long[] global = new long[grid.dimensions()];
            long[] local = grid.hasLocal() ? new long[grid.dimensions()] : null;
            for (int d = 0; d < global.length; d++) {
                global[d] = grid.globalSize(d);
                if (local != null) {
                    local[d] = grid.localSize(d);
                }
            }
            if (TornadoDebug.threadInfo()) {
                TornadoDebug.launch(id(), profileName, grid.sizes("(the driver's choice)"));
            }
            MemorySegment event = profiling() ? a.allocate(ADDRESS) : null;
            try {
                CL.enqueueNDRangeKernel(queue, kernel.handle, global, local, event);
            } catch (OpenCLException e) {
                throw new OpenCLException(e.call(), e.code(), "kernel " + profileName + " on " + grid);
            }
            if (event != null) {
                pending.add(new PendingTiming(profileName, event.get(ADDRESS, 0)));
            }
        }
    }

    private MemorySegment argumentBytes(Arena a, OpenCLKernel kernel, int index, Object arg) {
        return switch (arg) {
            case DeviceBuffer b -> a.allocateFrom(ADDRESS, own(b, kernel.name() + " argument " + index).mem());
            case Integer v -> a.allocateFrom(JAVA_INT, v);
            case Long v -> a.allocateFrom(JAVA_LONG, v);
            case Float v -> a.allocateFrom(JAVA_FLOAT, v);
            case Double v -> a.allocateFrom(JAVA_DOUBLE, v);
            case Boolean v -> a.allocateFrom(JAVA_INT, v ? 1 : 0);
            case null -> throw new IllegalArgumentException(kernel.name() + " argument " + index + " is null");
            default -> throw new IllegalArgumentException(kernel.name() + " argument " + index + ": unsupported type "
                    + arg.getClass().getSimpleName() + " (use a DeviceBuffer, Integer, Long, Float, Double or Boolean)");
        };
    }

    private OpenCLBuffer own(DeviceBuffer buffer, String role) {
        if (buffer.device() != this || !(buffer instanceof OpenCLBuffer b)) {
            throw new IllegalArgumentException(role + ": " + buffer + " belongs to " + buffer.device().id() + ", not this device " + id());
        }
        return b;
    }

    private static void checkRange(String what, DeviceBuffer buffer, long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset > buffer.byteSize() - bytes) {
            throw new IllegalArgumentException(what + " of " + bytes + " bytes at offset " + offset + " is outside " + buffer
                    + " (" + buffer.byteSize() + " bytes)");
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(id() + " is closed");
        }
    }

    /** Waits for pending work, then releases kernels, queue and context. Buffers are closed by their owners. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        CL.finish(queue);
        for (PendingTiming t : pending) {
            CL.releaseEvent(t.event);
        }
        pending.clear();
        for (OpenCLKernel k : builtKernels.values()) {
            CL.releaseKernel(k.handle);
        }
        builtKernels.clear();
        compiledKernels.clear();
        CL.releaseCommandQueue(queue);
        CL.releaseContext(context);
        closed = true;
    }
}
