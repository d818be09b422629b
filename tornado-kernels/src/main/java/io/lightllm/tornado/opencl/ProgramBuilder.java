package io.lightllm.tornado.opencl;

import io.lightllm.tornado.compiler.KernelCompileException;
import io.lightllm.tornado.runtime.JvmSignalHandlers;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Builds cl_programs for one device: from the disk cache's binary when there is one, else from
 * source (and then stores the binary). A stale or corrupt binary silently falls back to source.
 */
final class ProgramBuilder {
    /** No fast-math flags: kernels must match the JVM reference within the tests' tolerances. */
    static final String BUILD_OPTIONS = "";

    private static final System.Logger LOG = System.getLogger(ProgramBuilder.class.getName());

    private final MemorySegment context;
    private final OpenCLDeviceEntry device;
    private final ProgramBinaryCache cache;
    private int sourceBuilds;
    private int binaryLoads;

    ProgramBuilder(MemorySegment context, OpenCLDeviceEntry device, Path cacheDirectory) {
        this.context = context;
        this.device = device;
        this.cache = new ProgramBinaryCache(cacheDirectory, device, BUILD_OPTIONS);
    }

    /** A built program; {@code kernelName} only labels errors. The caller releases it. */
    synchronized MemorySegment build(String source, String kernelName) {
        try {
            return buildOrLoad(source, kernelName);
        } finally {
            JvmSignalHandlers.restore("clBuildProgram"); // the compiler (LLVM) installs its signal handlers
        }
    }

    private MemorySegment buildOrLoad(String source, String kernelName) {
        byte[] binary = cache.load(source);
        if (binary != null) {
            MemorySegment program = fromBinary(binary);
            if (program != null) {
                binaryLoads++;
                return program;
            }
        }
        MemorySegment program = CL.createProgramWithSource(context, source);
        try {
            CL.buildProgram(program, device.device(), BUILD_OPTIONS);
        } catch (OpenCLException e) {
            String log = e.code() == CL.CL_BUILD_PROGRAM_FAILURE ? CL.buildLog(program, device.device()) : null;
            CL.releaseProgram(program);
            if (log == null) {
                throw e;
            }
            throw new KernelCompileException("OpenCL build of kernel " + kernelName + " failed on " + device.deviceName() + ":\n"
                    + log + "\n--- source ---\n" + numberLines(source));
        }
        sourceBuilds++;
        storeBinary(program, source);
        return program;
    }

    /** The program built from a cached binary, or null when the driver rejects it. */
    private MemorySegment fromBinary(byte[] binary) {
        MemorySegment program = null;
        try {
            program = CL.createProgramWithBinary(context, device.device(), binary);
            CL.buildProgram(program, device.device(), BUILD_OPTIONS);
            return program;
        } catch (OpenCLException staleOrCorrupt) {
            if (program != null) {
                CL.releaseProgram(program);
            }
            return null;
        }
    }

    private void storeBinary(MemorySegment program, String source) {
        byte[] binary;
        try {
            binary = CL.programBinary(program);
        } catch (OpenCLException e) {
            LOG.log(System.Logger.Level.WARNING, "driver gave no program binary to cache: " + e.getMessage());
            return;
        }
        if (binary.length > 0) {
            cache.store(source, binary);
        }
    }

    synchronized int sourceBuilds() {
        return sourceBuilds;
    }

    synchronized int binaryLoads() {
        return binaryLoads;
    }

    Path cacheFile(String source) {
        return cache.fileFor(source);
    }

    /** The source with 1-based line numbers, as build logs refer to them. */
    static String numberLines(String source) {
        String[] lines = source.stripTrailing().split("\n", -1);
        StringBuilder out = new StringBuilder();
        int width = String.valueOf(lines.length).length();
        for (int i = 0; i < lines.length; i++) {
            out.append(String.format("%" + width + "d| %s%n", i + 1, lines[i]));
        }
        return out.toString();
    }
}
