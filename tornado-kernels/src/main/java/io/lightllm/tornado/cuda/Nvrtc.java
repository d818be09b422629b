package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.lightllm.tornado.runtime.JvmSignalHandlers;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * NVRTC, the runtime CUDA C++ compiler (libnvrtc.so.13, else .12), through FFM: generated
 * kernel source to PTX for the device's architecture. Compilation needs no GPU. Signatures are
 * transcribed from nvrtc.h (not shipped with the toolkit on build machines; cross-checked against
 * the JavaCPP presets generated from the CUDA 13.1 header).
 */
final class Nvrtc {
    /** System property naming the exact libnvrtc file to load. */
    static final String PROPERTY = "lightllm.cuda.nvrtc";

    static final NativeLibrary LIBRARY = NativeLibrary.open(PROPERTY, List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"),
            NativeLibrary.toolkitDirectories());

    // nvrtcResult values (nvrtc.h)
    static final int NVRTC_SUCCESS = 0;
    static final int NVRTC_ERROR_INVALID_OPTION = 5;
    static final int NVRTC_ERROR_COMPILATION = 6;
    static final int NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7;

    private static final MethodHandle nvrtcVersion = fn("nvrtcVersion", ADDRESS, ADDRESS);
    private static final MethodHandle nvrtcGetNumSupportedArchs = fn("nvrtcGetNumSupportedArchs", ADDRESS);
    private static final MethodHandle nvrtcGetSupportedArchs = fn("nvrtcGetSupportedArchs", ADDRESS);
    private static final MethodHandle nvrtcCreateProgram = fn("nvrtcCreateProgram", ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle nvrtcCompileProgram = fn("nvrtcCompileProgram", ADDRESS, JAVA_INT, ADDRESS);
    private static final MethodHandle nvrtcGetProgramLogSize = fn("nvrtcGetProgramLogSize", ADDRESS, ADDRESS);
    private static final MethodHandle nvrtcGetProgramLog = fn("nvrtcGetProgramLog", ADDRESS, ADDRESS);
    private static final MethodHandle nvrtcGetPTXSize = fn("nvrtcGetPTXSize", ADDRESS, ADDRESS);
    private static final MethodHandle nvrtcGetPTX = fn("nvrtcGetPTX", ADDRESS, ADDRESS);
    private static final MethodHandle nvrtcDestroyProgram = fn("nvrtcDestroyProgram", ADDRESS);
    private static final MethodHandle nvrtcGetErrorString = LIBRARY.function("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private Nvrtc() {
    }

    private static MethodHandle fn(String name, MemoryLayout... args) {
        return LIBRARY.function(name, FunctionDescriptor.of(JAVA_INT, args));
    }

    /** Why NVRTC cannot be used, or null. */
    static String loadFailure() {
        if (LIBRARY.failure().isPresent()) {
            return LIBRARY.failure().get();
        }
        List<String> missing = LIBRARY.missingFunctions(List.copyOf(LIBRARY.signatures().keySet()));
        return missing.isEmpty() ? null : LIBRARY.loadedFrom() + " lacks " + missing + " (NVRTC older than 11.2?)";
    }

    static Map<String, FunctionDescriptor> signatures() {
        return LIBRARY.signatures();
    }

    /** {@code major.minor} of the loaded NVRTC. */
    static String version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            check((int) call(nvrtcVersion, major, minor), "nvrtcVersion");
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        }
    }

    /** The virtual architectures this NVRTC compiles for, as {@code 10*major + minor} (75, 80, ..., 90, ...). */
    static int[] supportedArchitectures() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_INT);
            check((int) call(nvrtcGetNumSupportedArchs, count), "nvrtcGetNumSupportedArchs");
            int n = count.get(JAVA_INT, 0);
            MemorySegment archs = arena.allocate(JAVA_INT, Math.max(1, n));
            check((int) call(nvrtcGetSupportedArchs, archs), "nvrtcGetSupportedArchs");
            return archs.asSlice(0, (long) n * 4).toArray(JAVA_INT);
        }
    }

    /**
     * The {@code --gpu-architecture} value for a device of compute capability
     * {@code major.minor}: its own virtual architecture when NVRTC knows it, else the newest
     * older one (PTX is forward compatible: the driver compiles it for the newer device).
     */
    static String architectureFor(int major, int minor, int[] supported) {
        int wanted = major * 10 + minor;
        int best = -1;
        for (int a : supported) {
            if (a <= wanted && a > best) {
                best = a;
            }
        }
        if (best < 0) {
            throw new CudaException(-1, "NVRTC " + version() + " supports no architecture at or below compute capability " + major + "."
                    + minor + " (it supports " + java.util.Arrays.toString(supported) + ")");
        }
        return "compute_" + best;
    }

    /** Compiles CUDA C++ to PTX text (without the terminating NUL). Throws with NVRTC's log and the numbered source. */
    static String compileToPtx(String source, String programName, List<String> options) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment programOut = arena.allocate(ADDRESS);
            check((int) call(nvrtcCreateProgram, programOut, arena.allocateFrom(source), arena.allocateFrom(programName), 0,
                    MemorySegment.NULL, MemorySegment.NULL), "nvrtcCreateProgram(" + programName + ")");
            MemorySegment program = programOut.get(ADDRESS, 0);
            try {
                MemorySegment optionArray = arena.allocate(ADDRESS, Math.max(1, options.size()));
                for (int i = 0; i < options.size(); i++) {
                    optionArray.setAtIndex(ADDRESS, i, arena.allocateFrom(options.get(i)));
                }
                int rc = (int) call(nvrtcCompileProgram, program, options.size(), optionArray);
                JvmSignalHandlers.restore("nvrtcCompileProgram"); // NVRTC embeds LLVM
                if (rc != NVRTC_SUCCESS) {
                    throw new CudaException(rc, "NVRTC " + version() + " could not compile " + programName + " with " + options + ": "
                            + errorText(rc) + compileHint(rc) + "\n" + log(arena, program) + "\n--- source ---\n" + numbered(source));
                }
                MemorySegment size = arena.allocate(JAVA_LONG);
                check((int) call(nvrtcGetPTXSize, program, size), "nvrtcGetPTXSize");
                MemorySegment ptx = arena.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
                check((int) call(nvrtcGetPTX, program, ptx), "nvrtcGetPTX");
                return ptx.getString(0, StandardCharsets.UTF_8);
            } finally {
                programOut.set(ADDRESS, 0, program);
                call(nvrtcDestroyProgram, programOut);
            }
        }
    }

    private static String compileHint(int rc) {
        return rc == NVRTC_ERROR_BUILTIN_OPERATION_FAILURE
                ? " (NVRTC could not load libnvrtc-builtins.so from its own directory: keep the two together, or add their"
                        + " directory to LD_LIBRARY_PATH)"
                : rc == NVRTC_ERROR_INVALID_OPTION ? " (an option above is unknown to this NVRTC version)" : "";
    }

    private static String log(Arena arena, MemorySegment program) {
        MemorySegment size = arena.allocate(JAVA_LONG);
        if ((int) call(nvrtcGetProgramLogSize, program, size) != NVRTC_SUCCESS) {
            return "(no log)";
        }
        MemorySegment log = arena.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        if ((int) call(nvrtcGetProgramLog, program, log) != NVRTC_SUCCESS) {
            return "(no log)";
        }
        return log.getString(0, StandardCharsets.UTF_8);
    }

    static String numbered(String source) {
        String[] lines = source.split("\n");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
            sb.append(String.format("%4d  %s%n", i + 1, lines[i]));
        }
        return sb.toString();
    }

    private static void check(int rc, String what) {
        if (rc != NVRTC_SUCCESS) {
            throw new CudaException(rc, what + " failed: " + errorText(rc));
        }
    }

    static String errorText(int rc) {
        try {
            String s = NativeLibrary.cString((MemorySegment) nvrtcGetErrorString.invokeExact(rc));
            return (s == null ? "nvrtcResult" : s) + " (" + rc + ")";
        } catch (Throwable t) {
            return "nvrtcResult " + rc;
        }
    }

    /** NVRTC calls are few and slow (compilation), so a boxing invocation is fine here. */
    private static Object call(MethodHandle h, Object... args) {
        if (h == null) {
            throw new CudaException(-1, "NVRTC is unavailable: " + loadFailure());
        }
        try {
            return h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("calling NVRTC failed", t);
        }
    }
}
