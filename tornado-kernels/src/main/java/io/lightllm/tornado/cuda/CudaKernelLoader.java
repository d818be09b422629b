package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.compiler.KernelScan;
import io.lightllm.tornado.compiler.KernelSource;
import io.lightllm.tornado.compiler.Target;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.TornadoDebug;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Turns a Java kernel into a loaded CUfunction for one device: the kernel compiler's CUDA C,
 * NVRTC to PTX (or the PTX cache on disk), cuModuleLoadDataEx (the driver compiles PTX for the
 * GPU and keeps its own cache of that), cuModuleGetFunction.
 */
final class CudaKernelLoader {
    /** Extra NVRTC options, space separated (e.g. {@code --use_fast_math} or {@code --fmad=false}). */
    static final String OPTIONS_PROPERTY = "lightllm.cuda.nvrtc.options";
    private static final long JIT_LOG_BYTES = 16 * 1024;

    /** One compiled kernel, ready to launch. */
    record LoadedKernel(String entryName, MemorySegment function, LaunchShape.Kind kind, int maxThreadsPerBlock, int registers,
            int dynamicSharedBytes) {
    }

    private final String deviceId;
    private final int ccMajor;
    private final int ccMinor;
    private final PtxCache cache;
    private final List<MemorySegment> modules = new ArrayList<>();
    private List<String> options;
    private String nvrtcVersion;
    private String architecture;

    private final int maxDynamicShared;
    /** What the device runs of the kernel language (its compute capability's features). */
    final Target target;

    /** Whether kernels are compiled with LJ_PDL: their prelude waits for the kernel before them (programmatic dependent launch). */
    private final boolean programmaticLaunch;

    CudaKernelLoader(String deviceId, int ccMajor, int ccMinor, int maxDynamicShared, PtxCache cache, boolean programmaticLaunch) {
        this.programmaticLaunch = programmaticLaunch;
        this.deviceId = deviceId;
        this.maxDynamicShared = maxDynamicShared;
        this.target = Target.cuda(deviceId, ccMajor, ccMinor);
        this.ccMajor = ccMajor;
        this.ccMinor = ccMinor;
        this.cache = cache;
    }

    /** NVRTC options for this device (the target architecture first). */
    synchronized List<String> options() {
        if (options == null) {
            architecture = Nvrtc.architectureFor(ccMajor, ccMinor, Nvrtc.supportedArchitectures());
            if (architecture.equals("compute_90")) {
                // Hopper's arch-specific form: its wgmma (Feature.WARPGROUP_MMA) is not in compute_90; the PTX runs on sm_90 only,
                // which is the device it is built for
                architecture = "compute_90a";
            }
            nvrtcVersion = Nvrtc.version();
            List<String> o = new ArrayList<>(List.of("--gpu-architecture=" + architecture, "-default-device"));
            if (programmaticLaunch) {
                o.add("-DLJ_PDL");
            }
            String extra = System.getProperty(OPTIONS_PROPERTY, "").trim();
            if (!extra.isEmpty()) {
                o.addAll(List.of(extra.split("\\s+")));
            }
            options = List.copyOf(o);
        }
        return options;
    }

    /** Compiles (or finds in the cache) and loads {@code kernel} specialised for {@code dtypes}. The context must be current. */
    synchronized LoadedKernel load(KernelRef kernel, DType[] dtypes) {
        KernelSource src = KernelCompiler.compile(kernel, target, dtypes);
        TornadoDebug.kernelSource(deviceId, kernel.name(), "CUDA C", src.source());
        LaunchShape.Kind kind = kernel.usesContext() ? LaunchShape.Kind.EXPLICIT
                : KernelScan.hasParallelLoops(kernel.method()) ? LaunchShape.Kind.PARALLEL : LaunchShape.Kind.SERIAL;
        List<String> opts = options();
        String key = PtxCache.key(src.source(), architecture, nvrtcVersion, opts);
        MemorySegment module = null;
        Optional<String> cached = cache.read(key);
        if (cached.isPresent()) {
            try {
                module = loadModule(cached.get(), kernel + " (cached PTX " + cache.file(key) + ")");
            } catch (CudaException e) {
                System.err.println("lightllm: dropping cached PTX the driver refused: " + e.getMessage());
                cache.remove(key);
            }
        }
        if (module == null) {
            String ptx = Nvrtc.compileToPtx(src.source(), src.entryName() + ".cu", opts);
            module = loadModule(ptx, kernel.toString());
            cache.write(key, ptx);
        }
        MemorySegment m = module;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocateFrom(src.entryName());
            MemorySegment function = CudaDriver.queryHandle("cuModuleGetFunction(" + src.entryName() + ")",
                    out -> CudaDriver.cuModuleGetFunction(out, m, name));
            // also makes a lazily loaded module load now, outside any graph capture
            int maxThreads = CudaDriver.queryInt("cuFuncGetAttribute(MAX_THREADS_PER_BLOCK) of " + src.entryName(),
                    out -> CudaDriver.cuFuncGetAttribute(out, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, function));
            int registers = CudaDriver.queryInt("cuFuncGetAttribute(NUM_REGS) of " + src.entryName(),
                    out -> CudaDriver.cuFuncGetAttribute(out, CudaDriver.CU_FUNC_ATTRIBUTE_NUM_REGS, function));
            int shared = src.dynamicLocalBytes();
            if (shared > 0) {
                if (shared > maxDynamicShared) {
                    throw new CudaException(CudaDriver.CUDA_ERROR_INVALID_VALUE, "kernel " + kernel + " needs " + shared
                            + " bytes of shared memory per block; " + deviceId + " allows " + maxDynamicShared);
                }
                CudaDriver.check(CudaDriver.cuFuncSetAttribute(function, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared),
                        "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, " + shared + ") of " + src.entryName());
            }
            if (src.features().contains(Feature.CLUSTER_BARRIER)) {
                CudaDriver.check(CudaDriver.cuFuncSetAttribute(function, CudaDriver.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
                        "cuFuncSetAttribute(NON_PORTABLE_CLUSTER_SIZE_ALLOWED) of " + src.entryName());
            }
            return new LoadedKernel(src.entryName(), function, kind, maxThreads, registers, shared);
        }
    }

    /** cuModuleLoadDataEx with the JIT's error log, so a PTX the driver rejects says why. */
    private MemorySegment loadModule(String ptx, String what) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment image = arena.allocateFrom(ptx, StandardCharsets.UTF_8); // NUL-terminated, as the driver needs for PTX
            MemorySegment log = arena.allocate(JIT_LOG_BYTES);
            MemorySegment opts = arena.allocate(JAVA_INT, 2);
            MemorySegment values = arena.allocate(ADDRESS, 2);
            opts.setAtIndex(JAVA_INT, 0, CudaDriver.CU_JIT_ERROR_LOG_BUFFER);
            values.setAtIndex(ADDRESS, 0, log);
            opts.setAtIndex(JAVA_INT, 1, CudaDriver.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
            values.setAtIndex(ADDRESS, 1, MemorySegment.ofAddress(JIT_LOG_BYTES)); // an integer option travels as the pointer's value
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = CudaDriver.cuModuleLoadDataEx(out, image, 2, opts, values);
            if (rc != CudaDriver.CUDA_SUCCESS) {
                String jitLog = log.getString(0, StandardCharsets.UTF_8).trim();
                throw new CudaException(rc, CudaDriver.error(rc, "loading the PTX of " + what + " on " + deviceId).getMessage()
                        + (jitLog.isEmpty() ? "" : "\nJIT log:\n" + jitLog));
            }
            MemorySegment module = out.get(ADDRESS, 0);
            modules.add(module);
            return module;
        }
    }

    synchronized String architecture() {
        options();
        return architecture;
    }

    synchronized void close() {
        for (MemorySegment m : modules) {
            CudaDriver.cuModuleUnload(m);
        }
        modules.clear();
    }
}
