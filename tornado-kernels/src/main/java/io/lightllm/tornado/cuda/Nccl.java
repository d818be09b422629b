package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * NVIDIA's collective communication library (libnccl.so.2) through FFM: the calls a
 * single-process, one-thread-per-GPU tensor-parallel model needs. Signatures and constants are
 * transcribed from nccl.h (NCCL 2.x, stable since 2.7): ncclResult_t and the datatype and
 * reduction enums are 4-byte ints, ncclComm_t and cudaStream_t opaque pointers, buffers device
 * addresses. NCCL is not part of the CUDA toolkit; {@code -Dlightllm.nccl.library=/path/to/libnccl.so.2}
 * names it when the loader cannot find it (PyTorch's wheels bring one under
 * {@code site-packages/nvidia/nccl/lib}, which is searched too).
 *
 * <p>NVLink multicast (NVLS) stays off: {@link #disableMulticast} sets {@code NCCL_NVLS_ENABLE=0}
 * in the process environment before the first communicator is made, because on shared multi-GPU
 * hosts a program using it can put the GPUs out of service.
 */
final class Nccl {
    static final String PROPERTY = "lightllm.nccl.library";
    static final NativeLibrary LIBRARY = NativeLibrary.open(PROPERTY, List.of("libnccl.so.2", "libnccl.so"), directories());

    // nccl.h
    static final int ncclSuccess = 0;
    static final int ncclFloat32 = 7;
    static final int ncclSum = 0;

    private static final MethodHandle ncclGetVersion = fn("ncclGetVersion", ADDRESS);
    private static final MethodHandle ncclCommInitAll = fn("ncclCommInitAll", ADDRESS, JAVA_INT, ADDRESS);
    private static final MethodHandle ncclCommDestroy = fn("ncclCommDestroy", ADDRESS);
    private static final MethodHandle ncclCommAbort = fn("ncclCommAbort", ADDRESS);
    private static final MethodHandle ncclAllReduce = fn("ncclAllReduce", ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle ncclSend = fn("ncclSend", ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle ncclRecv = fn("ncclRecv", ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle ncclGroupStart = fn("ncclGroupStart");
    private static final MethodHandle ncclGroupEnd = fn("ncclGroupEnd");
    private static final MethodHandle ncclGetErrorString = LIBRARY.function("ncclGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle ncclGetLastError = LIBRARY.function("ncclGetLastError", FunctionDescriptor.of(ADDRESS, ADDRESS));

    /** libc's setenv(name, value, overwrite), for {@link #disableMulticast}. */
    private static final FunctionDescriptor SETENV = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT);
    private static final MethodHandle setenv = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("setenv").orElseThrow(), SETENV);

    private static final List<String> REQUIRED = List.of("ncclGetVersion", "ncclCommInitAll", "ncclCommDestroy", "ncclCommAbort",
            "ncclAllReduce", "ncclSend", "ncclRecv", "ncclGroupStart", "ncclGroupEnd", "ncclGetErrorString");

    private Nccl() {
    }

    private static MethodHandle fn(String name, MemoryLayout... args) {
        return LIBRARY.function(name, FunctionDescriptor.of(JAVA_INT, args));
    }

    /** Why NCCL cannot be used here, if it cannot. */
    static Optional<String> unavailableReason() {
        if (LIBRARY.failure().isPresent()) {
            return LIBRARY.failure();
        }
        List<String> missing = LIBRARY.missingFunctions(REQUIRED);
        return missing.isEmpty() ? Optional.empty() : Optional.of(LIBRARY.loadedFrom() + " lacks " + missing);
    }

    /** Every bound function by C name, libc's setenv included. */
    static Map<String, FunctionDescriptor> signatures() {
        Map<String, FunctionDescriptor> all = new java.util.HashMap<>(LIBRARY.signatures());
        all.put("setenv", SETENV);
        return all;
    }

    /** Where NCCL is often installed besides the loader path: the toolkit's directories and PyTorch's wheels. */
    private static List<Path> directories() {
        List<Path> dirs = new ArrayList<>(NativeLibrary.toolkitDirectories());
        for (Path root : List.of(Path.of("/usr/local/lib"), Path.of("/usr/lib"))) {
            try (Stream<Path> pythons = Files.list(root)) {
                pythons.filter(p -> p.getFileName().toString().startsWith("python3")).sorted().forEach(p -> {
                    dirs.add(p.resolve("dist-packages/nvidia/nccl/lib"));
                    dirs.add(p.resolve("site-packages/nvidia/nccl/lib"));
                });
            } catch (IOException e) {
                // no such root: nothing to add
            }
        }
        return dirs;
    }

    /** NCCL's version as MAJOR.MINOR.PATCH (ncclGetVersion gives major*10000 + minor*100 + patch). */
    static String version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) ncclGetVersion.invokeExact(out), "ncclGetVersion", null);
            int v = out.get(JAVA_INT, 0);
            return (v / 10000) + "." + (v / 100 % 100) + "." + (v % 100);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclGetVersion", t);
        }
    }

    /**
     * Sets {@code NCCL_NVLS_ENABLE=0} in this process's C environment, which NCCL reads when it
     * makes its first communicator (Java's own view of the environment is a copy taken at start
     * and cannot be changed, so this goes through libc's setenv).
     */
    static void disableMulticast() {
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) setenv.invokeExact(arena.allocateFrom("NCCL_NVLS_ENABLE"), arena.allocateFrom("0"), 1);
            if (rc != 0) {
                throw new CudaException("setenv(NCCL_NVLS_ENABLE=0) failed; NCCL is not started without it", null);
            }
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw CudaDriver.failed("setenv", t);
        }
    }

    /** One communicator per device of {@code ordinals}, rank i on {@code ordinals[i]}, made from one thread. */
    static MemorySegment[] commInitAll(int[] ordinals) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment comms = arena.allocate(ADDRESS, ordinals.length);
            check((int) ncclCommInitAll.invokeExact(comms, ordinals.length, arena.allocateFrom(JAVA_INT, ordinals)),
                    "ncclCommInitAll(" + ordinals.length + " devices)", null);
            MemorySegment[] out = new MemorySegment[ordinals.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = comms.getAtIndex(ADDRESS, i);
            }
            return out;
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclCommInitAll", t);
        }
    }

    static void commDestroy(MemorySegment comm) {
        try {
            check((int) ncclCommDestroy.invokeExact(comm), "ncclCommDestroy", null);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclCommDestroy", t);
        }
    }

    /** Stops the communicator's pending operations (peers that will never come) and frees it. */
    static void commAbort(MemorySegment comm) {
        try {
            check((int) ncclCommAbort.invokeExact(comm), "ncclCommAbort", null);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclCommAbort", t);
        }
    }

    static void allReduceSumF32(long buffer, long count, MemorySegment comm, MemorySegment stream) {
        MemorySegment b = MemorySegment.ofAddress(buffer);
        try {
            check((int) ncclAllReduce.invokeExact(b, b, count, ncclFloat32, ncclSum, comm, stream), "ncclAllReduce(" + count + " f32)", comm);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclAllReduce", t);
        }
    }

    static void sendF32(long buffer, long count, int peer, MemorySegment comm, MemorySegment stream) {
        try {
            check((int) ncclSend.invokeExact(MemorySegment.ofAddress(buffer), count, ncclFloat32, peer, comm, stream),
                    "ncclSend(" + count + " f32 to rank " + peer + ")", comm);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclSend", t);
        }
    }

    static void recvF32(long buffer, long count, int peer, MemorySegment comm, MemorySegment stream) {
        try {
            check((int) ncclRecv.invokeExact(MemorySegment.ofAddress(buffer), count, ncclFloat32, peer, comm, stream),
                    "ncclRecv(" + count + " f32 from rank " + peer + ")", comm);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclRecv", t);
        }
    }

    static void groupStart() {
        try {
            check((int) ncclGroupStart.invokeExact(), "ncclGroupStart", null);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclGroupStart", t);
        }
    }

    static void groupEnd() {
        try {
            check((int) ncclGroupEnd.invokeExact(), "ncclGroupEnd", null);
        } catch (Throwable t) {
            throw CudaDriver.failed("ncclGroupEnd", t);
        }
    }

    private static void check(int result, String call, MemorySegment comm) {
        if (result == ncclSuccess) {
            return;
        }
        String text = errorString(result);
        String last = null;
        if (comm != null && ncclGetLastError != null) {
            try {
                last = NativeLibrary.cString((MemorySegment) ncclGetLastError.invokeExact(comm));
            } catch (Throwable t) {
                last = null;
            }
        }
        throw new CudaException(call + " failed: " + text + " (ncclResult " + result + ")"
                + (last == null || last.isBlank() ? "" : ": " + last), null);
    }

    private static String errorString(int result) {
        try {
            return NativeLibrary.cString((MemorySegment) ncclGetErrorString.invokeExact(result));
        } catch (Throwable t) {
            return "unknown NCCL error";
        }
    }
}
