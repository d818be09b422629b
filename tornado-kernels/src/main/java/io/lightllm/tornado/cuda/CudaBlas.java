package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.GrowingScratch;
import io.lightllm.tornado.runtime.KernelOverride;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * NVIDIA's GEMM (cuBLAS, libcublas.so.13) for the projections of a transformer:
 * {@code out[m][n] = sum_k a[m][k] * w[n][k]} with row-major a (activations), w (weights, one
 * row per output feature) and out, which is {@code a · wᵀ}.
 *
 * <p>cuBLAS is column-major. A row-major [R, C] matrix is the column-major [C, R] matrix, so
 * the call computes {@code outᵀ[n, m] = w[n, k] · aᵀ[k, m]}: cuBLAS's A is w, stored as a
 * column-major k x n matrix and used transposed (lda = k); its B is a, a column-major k x m
 * matrix used as is (ldb = k); C is out as a column-major n x m matrix (ldc = n).
 *
 * <p>cuBLAS needs A and B of one type. With 16-bit weights and f32 activations the activations
 * are first rounded to the weights' type by {@link CastKernels} (the usual bf16 inference
 * precision: about 3 significant digits per activation); products are accumulated in f32
 * (CUBLAS_COMPUTE_32F) and the output may be f32.
 */
public final class CudaBlas {
    private static final List<java.nio.file.Path> DIRS = NativeLibrary.toolkitDirectories();
    /** libcublas needs libcublasLt; opening it first lets the loader find it even outside the loader path. */
    private static final NativeLibrary LT = NativeLibrary.open("lightllm.cuda.cublasLt",
            List.of("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"), DIRS);
    static final NativeLibrary LIBRARY = NativeLibrary.open("lightllm.cuda.cublas",
            List.of("libcublas.so.13", "libcublas.so.12", "libcublas.so"), DIRS);

    // cublas_api.h (cross-checked against the JavaCPP presets of CUDA 13.1) and library_types.h
    static final int CUBLAS_STATUS_SUCCESS = 0;
    static final int CUBLAS_OP_N = 0;
    static final int CUBLAS_OP_T = 1;
    static final int CUBLAS_COMPUTE_32F = 68;
    static final int CUBLAS_GEMM_DEFAULT = -1;
    static final int CUDA_R_32F = 0;
    static final int CUDA_R_16F = 2;
    static final int CUDA_R_16BF = 14;
    /** cuBLAS's recommended workspace on Hopper; a fixed one keeps GEMMs capturable in CUDA graphs. */
    static final long WORKSPACE_BYTES = 32L << 20;

    private static final MethodHandle cublasCreate_v2 = fn("cublasCreate_v2", ADDRESS);
    private static final MethodHandle cublasDestroy_v2 = fn("cublasDestroy_v2", ADDRESS);
    private static final MethodHandle cublasSetStream_v2 = fn("cublasSetStream_v2", ADDRESS, ADDRESS);
    private static final MethodHandle cublasSetWorkspace_v2 = fn("cublasSetWorkspace_v2", ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle cublasGemmEx = fn("cublasGemmEx", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
            ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle cublasGetStatusString = LIBRARY.function("cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    /** What one device's GEMMs need: a handle bound to its stream, the workspace, scratch for narrowed activations. */
    private static final class DeviceState {
        final CudaDevice device;
        final MemorySegment handle;
        final CudaBuffer workspace;
        final Arena arena = Arena.ofShared();
        /** alpha = 1 and beta = 0 (f32, as CUBLAS_COMPUTE_32F reads them), in host memory: cuBLAS's default pointer mode. */
        final MemorySegment alpha = arena.allocateFrom(JAVA_FLOAT, 1f);
        final MemorySegment beta = arena.allocateFrom(JAVA_FLOAT, 0f);
        final GrowingScratch narrowed;
        /** What the scratch holds: the narrowed copy of this buffer's first {@code narrowedElements}, or nothing. */
        DeviceBuffer narrowedFrom;
        long narrowedElements;
        /** The device's stream-operation count when the last GEMM was queued. */
        long opsAfterLastGemm = -1;

        DeviceState(CudaDevice device, MemorySegment handle, CudaBuffer workspace) {
            this.device = device;
            this.handle = handle;
            this.workspace = workspace;
            this.narrowed = new GrowingScratch(device::allocateUninitialized);
        }
    }

    private static final Map<CudaDevice, DeviceState> STATES = new ConcurrentHashMap<>();

    private CudaBlas() {
    }

    private static MethodHandle fn(String name, MemoryLayout... args) {
        return LIBRARY.function(name, FunctionDescriptor.of(JAVA_INT, args));
    }

    /** Why cuBLAS cannot be used here, if it cannot. */
    public static Optional<String> unavailableReason() {
        if (LIBRARY.failure().isPresent()) {
            return LIBRARY.failure();
        }
        List<String> missing = LIBRARY.missingFunctions(List.of("cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2",
                "cublasSetWorkspace_v2", "cublasGemmEx"));
        return missing.isEmpty() ? Optional.empty() : Optional.of(LIBRARY.loadedFrom() + " lacks " + missing);
    }

    static Map<String, FunctionDescriptor> signatures() {
        return LIBRARY.signatures();
    }

    /**
     * {@code out[m][n] = sum_k a[m][k] * w[n][k]} on {@code device}, queued on its stream.
     * w is F32, F16 or BF16; a is F32 or w's type; out is F32 or w's type. Capturable in a
     * CUDA graph once the device has run a GEMM of at least this m*k outside the capture.
     */
    public static void gemm(CudaDevice device, DeviceBuffer a, DeviceBuffer w, DeviceBuffer out, int m, int n, int k) {
        checkArguments(device, a, w, out, m, n, k);
        if (m == 0 || n == 0) {
            return;
        }
        // under the stream lock: the per-device handle and scratch are shared by every thread
        device.onStream(() -> {
            DeviceState state = state(device);
            DType type = w.dtype();
            DeviceBuffer left = a;
            if (a.dtype() != type) {
                // q, k and v (gate and up) multiply the same activations back to back: where nothing but this GEMM was
                // queued since the last one, which narrowed this very buffer, its copy in the scratch is still good
                boolean reuse = state.narrowedFrom == a && state.narrowedElements == (long) m * k && state.narrowed.current().dtype() == type
                        && device.streamOps() == state.opsAfterLastGemm + 1;
                left = state.narrowed.atLeast(type, (long) m * k);
                if (!reuse) {
                    device.launch(CastKernels.NARROW_FROM_F32, CastKernels.runs((long) m * k), left, a, m * k);
                    state.narrowedFrom = a;
                    state.narrowedElements = (long) m * k;
                }
            } else {
                state.narrowedFrom = null;
            }
            MemorySegment wPtr = MemorySegment.ofAddress(((CudaBuffer) w).devicePointer());
            MemorySegment aPtr = MemorySegment.ofAddress(((CudaBuffer) left).devicePointer());
            MemorySegment outPtr = MemorySegment.ofAddress(((CudaBuffer) out).devicePointer());
            int abType = dataType(type);
            int outType = dataType(out.dtype());
            device.timed("cublasGemmEx", () -> {
                int status;
                try {
                    status = (int) cublasGemmEx.invokeExact(state.handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, state.alpha,
                            wPtr, abType, k, aPtr, abType, k, state.beta, outPtr, outType, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
                } catch (Throwable t) {
                    throw new CudaException("calling cublasGemmEx failed", t);
                }
                check(status, "cublasGemmEx(m=" + m + ", n=" + n + ", k=" + k + ", a " + a.dtype() + ", w " + type + ", out "
                        + out.dtype() + ") on " + device.id());
            });
            if (out == state.narrowedFrom) {
                state.narrowedFrom = null; // the GEMM overwrote what the scratch copies
            }
            state.opsAfterLastGemm = device.streamOps();
        });
    }

    private static void checkArguments(CudaDevice device, DeviceBuffer a, DeviceBuffer w, DeviceBuffer out, int m, int n, int k) {
        if (m < 0 || n < 0 || k <= 0) {
            throw new IllegalArgumentException("gemm needs m, n >= 0 and k > 0, got m=" + m + ", n=" + n + ", k=" + k);
        }
        for (DeviceBuffer b : new DeviceBuffer[] {a, w, out}) {
            if (b.device() != device) {
                throw new IllegalArgumentException("gemm on " + device.id() + ": " + b + " belongs to another device");
            }
        }
        requireElements(a, (long) m * k, "a [m, k]");
        requireElements(w, (long) n * k, "w [n, k]");
        requireElements(out, (long) m * n, "out [m, n]");
        DType t = w.dtype();
        if (t != DType.F32 && t != DType.F16 && t != DType.BF16) {
            throw new IllegalArgumentException("gemm weights must be F32, F16 or BF16, not " + t);
        }
        if (a.dtype() != t && !(a.dtype() == DType.F32 && t != DType.F32)) {
            throw new IllegalArgumentException("gemm activations must be F32 or the weights' " + t + ", not " + a.dtype());
        }
        if (out.dtype() != DType.F32 && out.dtype() != t) {
            throw new IllegalArgumentException("gemm output must be F32 or the weights' " + t + ", not " + out.dtype());
        }
    }

    private static void requireElements(DeviceBuffer b, long needed, String what) {
        if (b.elements() < needed) {
            throw new IllegalArgumentException("gemm " + what + " needs " + needed + " elements, " + b + " has " + b.elements());
        }
    }

    static int dataType(DType t) {
        return switch (t) {
            case F32 -> CUDA_R_32F;
            case F16 -> CUDA_R_16F;
            case BF16 -> CUDA_R_16BF;
            default -> throw new IllegalArgumentException("cuBLAS has no " + t + " GEMM here");
        };
    }

    /**
     * An override for a portable matmul kernel computing the same {@code out = a · wᵀ}: the
     * numbers are the positions of out, a, w, m, n and k among the kernel's launch arguments
     * (after its KernelContext). Register it with {@code device.override(kernelRef, ...)}.
     */
    public static KernelOverride gemmOverride(int outArg, int aArg, int wArg, int mArg, int nArg, int kArg) {
        return (device, grid, args) -> {
            if (!(device instanceof CudaDevice cuda)) {
                throw new IllegalArgumentException("the cuBLAS override runs on CUDA devices, not " + device.id());
            }
            gemm(cuda, (DeviceBuffer) args[aArg], (DeviceBuffer) args[wArg], (DeviceBuffer) args[outArg], (Integer) args[mArg],
                    (Integer) args[nArg], (Integer) args[kArg]);
        };
    }

    private static DeviceState state(CudaDevice device) {
        return STATES.computeIfAbsent(device, CudaBlas::create);
    }

    private static DeviceState create(CudaDevice device) {
        unavailableReason().ifPresent(r -> {
            throw new IllegalStateException("cuBLAS is unavailable: " + r);
        });
        if (device.isCapturingThread()) {
            throw new IllegalStateException("run one GEMM on " + device.id() + " before capturing a CUDA graph: creating the cuBLAS handle"
                    + " cannot be captured");
        }
        CudaBuffer workspace = device.allocateUninitialized(DType.I8, WORKSPACE_BYTES);
        DeviceState[] created = new DeviceState[1];
        device.onStream(() -> {
            MemorySegment handle;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(ADDRESS);
                check(call(cublasCreate_v2, out), "cublasCreate on " + device.id());
                handle = out.get(ADDRESS, 0);
            }
            check(call(cublasSetStream_v2, handle, device.stream()), "cublasSetStream");
            check(call(cublasSetWorkspace_v2, handle, MemorySegment.ofAddress(workspace.devicePointer()), WORKSPACE_BYTES),
                    "cublasSetWorkspace");
            created[0] = new DeviceState(device, handle, workspace);
        });
        DeviceState s = created[0];
        device.onClose(() -> {
            call(cublasDestroy_v2, s.handle);
            s.arena.close();
            STATES.remove(device);
        });
        return s;
    }

    private static void check(int status, String what) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new CudaException(status, what + " failed: " + statusText(status));
        }
    }

    static String statusText(int status) {
        try {
            if (cublasGetStatusString != null) {
                String s = NativeLibrary.cString((MemorySegment) cublasGetStatusString.invokeExact(status));
                if (s != null) {
                    return s + " (cublasStatus_t " + status + ")";
                }
            }
        } catch (Throwable ignored) {
            // fall through to the number
        }
        return "cublasStatus_t " + status;
    }

    /** For the setup calls (handle, stream, workspace); the GEMM itself uses invokeExact. */
    private static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("calling cuBLAS failed", t);
        }
    }
}
