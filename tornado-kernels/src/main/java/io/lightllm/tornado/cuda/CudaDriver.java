package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The CUDA driver API (libcuda.so.1) through FFM. Each handle is linked by its exported symbol,
 * which for many functions is a versioned name that cuda.h maps the API name to
 * ({@code #define cuMemAlloc cuMemAlloc_v2}); the wrappers carry the API names. Signatures and
 * constants are transcribed from CUDA 13.0's cuda.h and checked against it by CudaHeaderTest.
 *
 * <p>Types: CUresult and every enum are 4-byte ints; CUdevice is int; CUdeviceptr and size_t
 * are 8-byte integers (Java long); CUcontext, CUstream, CUevent, CUmodule, CUfunction, CUgraph
 * and CUgraphExec are opaque pointers (MemorySegment).
 */
final class CudaDriver {
    private static final List<String> MISSING = new ArrayList<>();

    static final NativeLibrary LIBRARY = NativeLibrary.open("lightllm.cuda.driver", List.of("libcuda.so.1", "libcuda.so"),
            NativeLibrary.driverDirectories(), "no NVIDIA driver");

    // ---- constants (cuda.h, CUDA 13.0) ---------------------------------------------------------
    static final int CUDA_SUCCESS = 0;
    static final int CUDA_ERROR_INVALID_VALUE = 1;
    static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
    static final int CUDA_ERROR_STUB_LIBRARY = 34;
    static final int CUDA_ERROR_NO_DEVICE = 100;
    static final int CUDA_ERROR_NO_BINARY_FOR_GPU = 209;
    static final int CUDA_ERROR_INVALID_PTX = 218;
    static final int CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222;
    static final int CUDA_ERROR_ILLEGAL_ADDRESS = 700;
    static final int CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701;
    static final int CUDA_ERROR_LAUNCH_TIMEOUT = 702;
    static final int CUDA_ERROR_HARDWARE_STACK_ERROR = 714;
    static final int CUDA_ERROR_ILLEGAL_INSTRUCTION = 715;
    static final int CUDA_ERROR_MISALIGNED_ADDRESS = 716;
    static final int CUDA_ERROR_INVALID_ADDRESS_SPACE = 717;
    static final int CUDA_ERROR_INVALID_PC = 718;
    static final int CUDA_ERROR_LAUNCH_FAILED = 719;
    static final int CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900;
    static final int CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901;

    static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
    static final int CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5;
    static final int CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6;
    static final int CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7;
    static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

    static final int CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
    static final int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
    static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    /** Lets a kernel launch in clusters of more than 8 blocks (16 on an H100), where its resources allow. */
    static final int CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14;
    static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    static final int CU_STREAM_NON_BLOCKING = 0x1;
    static final int CU_MEMORYTYPE_DEVICE = 2;
    static final int CU_EVENT_DEFAULT = 0x0;
    static final int CU_EVENT_DISABLE_TIMING = 0x2;
    static final int CU_STREAM_CAPTURE_MODE_RELAXED = 2;
    static final int CU_JIT_ERROR_LOG_BUFFER = 5;
    static final int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

    // ---- functions -------------------------------------------------------------------------------
    private static final ValueLayout.OfInt RESULT = JAVA_INT;
    private static final ValueLayout.OfInt INT = JAVA_INT;
    private static final ValueLayout.OfLong SIZE = JAVA_LONG;
    private static final ValueLayout.OfLong DEVICE_PTR = JAVA_LONG;

    private static final MethodHandle cuInit = fn("cuInit", INT);
    private static final MethodHandle cuDriverGetVersion = fn("cuDriverGetVersion", ADDRESS);
    private static final MethodHandle cuGetErrorName = fn("cuGetErrorName", INT, ADDRESS);
    private static final MethodHandle cuGetErrorString = fn("cuGetErrorString", INT, ADDRESS);
    private static final MethodHandle cuDeviceGetCount = fn("cuDeviceGetCount", ADDRESS);
    private static final MethodHandle cuDeviceGet = fn("cuDeviceGet", ADDRESS, INT);
    private static final MethodHandle cuDeviceGetName = fn("cuDeviceGetName", ADDRESS, INT, INT);
    private static final MethodHandle cuDeviceTotalMem_v2 = fn("cuDeviceTotalMem_v2", ADDRESS, INT);
    private static final MethodHandle cuDeviceGetAttribute = fn("cuDeviceGetAttribute", ADDRESS, INT, INT);
    private static final MethodHandle cuDevicePrimaryCtxRetain = fn("cuDevicePrimaryCtxRetain", ADDRESS, INT);
    private static final MethodHandle cuDevicePrimaryCtxRelease_v2 = fn("cuDevicePrimaryCtxRelease_v2", INT);
    private static final MethodHandle cuCtxSetCurrent = fn("cuCtxSetCurrent", ADDRESS);
    private static final MethodHandle cuMemGetInfo_v2 = fn("cuMemGetInfo_v2", ADDRESS, ADDRESS);
    private static final MethodHandle cuMemAlloc_v2 = fn("cuMemAlloc_v2", ADDRESS, SIZE);
    private static final MethodHandle cuMemFree_v2 = fn("cuMemFree_v2", DEVICE_PTR);
    private static final MethodHandle cuMemHostAlloc = fn("cuMemHostAlloc", ADDRESS, SIZE, INT);
    private static final MethodHandle cuMemFreeHost = fn("cuMemFreeHost", ADDRESS);
    private static final MethodHandle cuMemcpyHtoDAsync_v2 = fn("cuMemcpyHtoDAsync_v2", DEVICE_PTR, ADDRESS, SIZE, ADDRESS);
    private static final MethodHandle cuMemcpyDtoHAsync_v2 = fn("cuMemcpyDtoHAsync_v2", ADDRESS, DEVICE_PTR, SIZE, ADDRESS);
    private static final MethodHandle cuMemcpyDtoDAsync_v2 = fn("cuMemcpyDtoDAsync_v2", DEVICE_PTR, DEVICE_PTR, SIZE, ADDRESS);
    private static final MethodHandle cuMemcpy2DAsync_v2 = fn("cuMemcpy2DAsync_v2", ADDRESS, ADDRESS);
    private static final MethodHandle cuMemsetD8Async = fn("cuMemsetD8Async", DEVICE_PTR, JAVA_BYTE, SIZE, ADDRESS);
    private static final MethodHandle cuStreamCreate = fn("cuStreamCreate", ADDRESS, INT);
    private static final MethodHandle cuStreamDestroy_v2 = fn("cuStreamDestroy_v2", ADDRESS);
    private static final MethodHandle cuStreamSynchronize = fn("cuStreamSynchronize", ADDRESS);
    private static final MethodHandle cuEventCreate = fn("cuEventCreate", ADDRESS, INT);
    private static final MethodHandle cuEventDestroy_v2 = fn("cuEventDestroy_v2", ADDRESS);
    private static final MethodHandle cuEventRecord = fn("cuEventRecord", ADDRESS, ADDRESS);
    private static final MethodHandle cuEventSynchronize = fn("cuEventSynchronize", ADDRESS);
    /** cuda.h maps cuEventElapsedTime to _v2 since CUDA 12.8; older drivers only have the first form (same signature). */
    private static final MethodHandle cuEventElapsedTime = firstOf(new String[] {"cuEventElapsedTime_v2", "cuEventElapsedTime"},
            ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuModuleLoadDataEx = fn("cuModuleLoadDataEx", ADDRESS, ADDRESS, INT, ADDRESS, ADDRESS);
    private static final MethodHandle cuModuleGetFunction = fn("cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuModuleUnload = fn("cuModuleUnload", ADDRESS);
    private static final MethodHandle cuFuncGetAttribute = fn("cuFuncGetAttribute", ADDRESS, INT, ADDRESS);
    private static final MethodHandle cuFuncSetAttribute = fn("cuFuncSetAttribute", ADDRESS, INT, INT);
    private static final MethodHandle cuLaunchKernel = fn("cuLaunchKernel", ADDRESS, INT, INT, INT, INT, INT, INT, INT, ADDRESS, ADDRESS,
            ADDRESS);
    private static final MethodHandle cuLaunchKernelEx = fn("cuLaunchKernelEx", ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuStreamBeginCapture_v2 = fn("cuStreamBeginCapture_v2", ADDRESS, INT);
    private static final MethodHandle cuStreamEndCapture = fn("cuStreamEndCapture", ADDRESS, ADDRESS);
    private static final MethodHandle cuGraphInstantiateWithFlags = fn("cuGraphInstantiateWithFlags", ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle cuGraphLaunch = fn("cuGraphLaunch", ADDRESS, ADDRESS);
    private static final MethodHandle cuGraphExecDestroy = fn("cuGraphExecDestroy", ADDRESS);
    private static final MethodHandle cuGraphDestroy = fn("cuGraphDestroy", ADDRESS);

    private CudaDriver() {
    }

    private static MethodHandle fn(String name, MemoryLayout... args) {
        MethodHandle h = LIBRARY.function(name, FunctionDescriptor.of(RESULT, args));
        if (h == null && LIBRARY.failure().isEmpty()) {
            MISSING.add(name);
        }
        return h;
    }

    private static MethodHandle firstOf(String[] names, MemoryLayout... args) {
        for (String name : names) {
            MethodHandle h = LIBRARY.function(name, FunctionDescriptor.of(RESULT, args));
            if (h != null) {
                return h;
            }
        }
        if (LIBRARY.failure().isEmpty()) {
            MISSING.add(String.join(" or ", names));
        }
        return null;
    }

    /** Why the driver cannot be used (library missing, or too old for a function we need), or null. */
    static String loadFailure() {
        if (LIBRARY.failure().isPresent()) {
            return LIBRARY.failure().get();
        }
        if (!MISSING.isEmpty()) {
            return LIBRARY.loadedFrom() + " lacks " + MISSING + ": the NVIDIA driver is too old for this backend";
        }
        return null;
    }

    static Map<String, FunctionDescriptor> signatures() {
        return LIBRARY.signatures();
    }

    // ---- error handling ----------------------------------------------------------------------------

    /** Throws a CudaException naming the call when {@code result} is not CUDA_SUCCESS. */
    static void check(int result, String call) {
        if (result != CUDA_SUCCESS) {
            throw error(result, call);
        }
    }

    static CudaException error(int result, String call) {
        return new CudaException(result, call + " failed: " + errorText(result) + hint(result));
    }

    /** {@code CUDA_ERROR_X (description)}, or the bare number when the driver does not know it. */
    static String errorText(int result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(ADDRESS);
            MemorySegment text = arena.allocate(ADDRESS);
            if (cuGetErrorName == null || (int) cuGetErrorName.invokeExact(result, name) != CUDA_SUCCESS) {
                return "CUresult " + result;
            }
            String n = NativeLibrary.cString(name.get(ADDRESS, 0));
            String d = (int) cuGetErrorString.invokeExact(result, text) == CUDA_SUCCESS ? NativeLibrary.cString(text.get(ADDRESS, 0)) : null;
            return n + " (" + result + (d != null ? ": " + d : "") + ")";
        } catch (Throwable t) {
            return "CUresult " + result;
        }
    }

    private static String hint(int result) {
        return switch (result) {
            case CUDA_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_LAUNCH_FAILED, CUDA_ERROR_MISALIGNED_ADDRESS, CUDA_ERROR_ILLEGAL_INSTRUCTION,
                 CUDA_ERROR_HARDWARE_STACK_ERROR, CUDA_ERROR_INVALID_ADDRESS_SPACE, CUDA_ERROR_INVALID_PC, CUDA_ERROR_LAUNCH_TIMEOUT ->
                    ". A kernel faulted; launches are asynchronous, so it may be any launch since the last synchronize, and the"
                            + " context is now unusable. Run with -D" + CudaDevice.SYNC_PROPERTY + "=true to name the failing kernel";
            case CUDA_ERROR_UNSUPPORTED_PTX_VERSION -> ". The PTX comes from a newer NVRTC than the driver supports: update the driver or"
                    + " use the NVRTC of the driver's CUDA version (-D" + Nvrtc.PROPERTY + "=/path/to/libnvrtc.so)";
            case CUDA_ERROR_STUB_LIBRARY -> ". The loaded libcuda is the toolkit's link stub, not the driver: remove the stubs directory"
                    + " from LD_LIBRARY_PATH";
            default -> "";
        };
    }

    /** What a Throwable from an FFM downcall becomes: runtime exceptions and errors as they are, the rest wrapped. */
    static CudaException failed(String call, Throwable t) {
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new CudaException("calling " + call + " through FFM failed", t);
    }

    // ---- wrappers (API names; each returns the CUresult) -----------------------------------------------

    static int cuInit(int flags) {
        try {
            return (int) cuInit.invokeExact(flags);
        } catch (Throwable t) {
            throw failed("cuInit", t);
        }
    }

    static int cuDriverGetVersion(MemorySegment version) {
        try {
            return (int) cuDriverGetVersion.invokeExact(version);
        } catch (Throwable t) {
            throw failed("cuDriverGetVersion", t);
        }
    }

    static int cuDeviceGetCount(MemorySegment count) {
        try {
            return (int) cuDeviceGetCount.invokeExact(count);
        } catch (Throwable t) {
            throw failed("cuDeviceGetCount", t);
        }
    }

    static int cuDeviceGet(MemorySegment device, int ordinal) {
        try {
            return (int) cuDeviceGet.invokeExact(device, ordinal);
        } catch (Throwable t) {
            throw failed("cuDeviceGet", t);
        }
    }

    static int cuDeviceGetName(MemorySegment name, int length, int device) {
        try {
            return (int) cuDeviceGetName.invokeExact(name, length, device);
        } catch (Throwable t) {
            throw failed("cuDeviceGetName", t);
        }
    }

    static int cuDeviceTotalMem(MemorySegment bytes, int device) {
        try {
            return (int) cuDeviceTotalMem_v2.invokeExact(bytes, device);
        } catch (Throwable t) {
            throw failed("cuDeviceTotalMem_v2", t);
        }
    }

    static int cuDeviceGetAttribute(MemorySegment value, int attribute, int device) {
        try {
            return (int) cuDeviceGetAttribute.invokeExact(value, attribute, device);
        } catch (Throwable t) {
            throw failed("cuDeviceGetAttribute", t);
        }
    }

    static int cuDevicePrimaryCtxRetain(MemorySegment context, int device) {
        try {
            return (int) cuDevicePrimaryCtxRetain.invokeExact(context, device);
        } catch (Throwable t) {
            throw failed("cuDevicePrimaryCtxRetain", t);
        }
    }

    static int cuDevicePrimaryCtxRelease(int device) {
        try {
            return (int) cuDevicePrimaryCtxRelease_v2.invokeExact(device);
        } catch (Throwable t) {
            throw failed("cuDevicePrimaryCtxRelease_v2", t);
        }
    }

    static int cuCtxSetCurrent(MemorySegment context) {
        try {
            return (int) cuCtxSetCurrent.invokeExact(context);
        } catch (Throwable t) {
            throw failed("cuCtxSetCurrent", t);
        }
    }

    static int cuMemGetInfo(MemorySegment free, MemorySegment total) {
        try {
            return (int) cuMemGetInfo_v2.invokeExact(free, total);
        } catch (Throwable t) {
            throw failed("cuMemGetInfo_v2", t);
        }
    }

    static int cuMemAlloc(MemorySegment devicePtr, long bytes) {
        try {
            return (int) cuMemAlloc_v2.invokeExact(devicePtr, bytes);
        } catch (Throwable t) {
            throw failed("cuMemAlloc_v2", t);
        }
    }

    static int cuMemFree(long devicePtr) {
        try {
            return (int) cuMemFree_v2.invokeExact(devicePtr);
        } catch (Throwable t) {
            throw failed("cuMemFree_v2", t);
        }
    }

    static int cuMemHostAlloc(MemorySegment hostPtr, long bytes, int flags) {
        try {
            return (int) cuMemHostAlloc.invokeExact(hostPtr, bytes, flags);
        } catch (Throwable t) {
            throw failed("cuMemHostAlloc", t);
        }
    }

    static int cuMemFreeHost(MemorySegment hostPtr) {
        try {
            return (int) cuMemFreeHost.invokeExact(hostPtr);
        } catch (Throwable t) {
            throw failed("cuMemFreeHost", t);
        }
    }

    static int cuMemcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            return (int) cuMemcpyHtoDAsync_v2.invokeExact(dst, src, bytes, stream);
        } catch (Throwable t) {
            throw failed("cuMemcpyHtoDAsync_v2", t);
        }
    }

    static int cuMemcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            return (int) cuMemcpyDtoHAsync_v2.invokeExact(dst, src, bytes, stream);
        } catch (Throwable t) {
            throw failed("cuMemcpyDtoHAsync_v2", t);
        }
    }

    static int cuMemcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            return (int) cuMemcpyDtoDAsync_v2.invokeExact(dst, src, bytes, stream);
        } catch (Throwable t) {
            throw failed("cuMemcpyDtoDAsync_v2", t);
        }
    }

    /**
     * CUDA_MEMCPY2D (cuda.h): 16 eight-byte fields, the two CUmemorytype enums padded to 8 bytes.
     * Byte offsets of the fields a device-to-device copy sets; CudaHeaderTest checks them with offsetof.
     */
    static final long MEMCPY2D_BYTES = 128;
    static final long MEMCPY2D_SRC_MEMORY_TYPE = 16, MEMCPY2D_SRC_DEVICE = 32, MEMCPY2D_SRC_PITCH = 48;
    static final long MEMCPY2D_DST_MEMORY_TYPE = 72, MEMCPY2D_DST_DEVICE = 88, MEMCPY2D_DST_PITCH = 104;
    static final long MEMCPY2D_WIDTH_IN_BYTES = 112, MEMCPY2D_HEIGHT = 120;

    /**
     * Copies {@code height} rows of {@code widthBytes} from device memory at {@code src} (rows
     * {@code srcPitch} bytes apart) to {@code dst} (rows {@code dstPitch} apart), queued on {@code stream}.
     */
    static int cuMemcpy2DAsync(long dst, long dstPitch, long src, long srcPitch, long widthBytes, long height, MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate(MEMCPY2D_BYTES, 8); // zeroed: x/y offsets 0, no host or array operands
            p.set(JAVA_INT, MEMCPY2D_SRC_MEMORY_TYPE, CU_MEMORYTYPE_DEVICE);
            p.set(JAVA_LONG, MEMCPY2D_SRC_DEVICE, src);
            p.set(JAVA_LONG, MEMCPY2D_SRC_PITCH, srcPitch);
            p.set(JAVA_INT, MEMCPY2D_DST_MEMORY_TYPE, CU_MEMORYTYPE_DEVICE);
            p.set(JAVA_LONG, MEMCPY2D_DST_DEVICE, dst);
            p.set(JAVA_LONG, MEMCPY2D_DST_PITCH, dstPitch);
            p.set(JAVA_LONG, MEMCPY2D_WIDTH_IN_BYTES, widthBytes);
            p.set(JAVA_LONG, MEMCPY2D_HEIGHT, height);
            return (int) cuMemcpy2DAsync_v2.invokeExact(p, stream);
        } catch (Throwable t) {
            throw failed("cuMemcpy2DAsync_v2", t);
        }
    }

    static int cuMemsetD8Async(long dst, byte value, long count, MemorySegment stream) {
        try {
            return (int) cuMemsetD8Async.invokeExact(dst, value, count, stream);
        } catch (Throwable t) {
            throw failed("cuMemsetD8Async", t);
        }
    }

    static int cuStreamCreate(MemorySegment stream, int flags) {
        try {
            return (int) cuStreamCreate.invokeExact(stream, flags);
        } catch (Throwable t) {
            throw failed("cuStreamCreate", t);
        }
    }

    static int cuStreamDestroy(MemorySegment stream) {
        try {
            return (int) cuStreamDestroy_v2.invokeExact(stream);
        } catch (Throwable t) {
            throw failed("cuStreamDestroy_v2", t);
        }
    }

    static int cuStreamSynchronize(MemorySegment stream) {
        try {
            return (int) cuStreamSynchronize.invokeExact(stream);
        } catch (Throwable t) {
            throw failed("cuStreamSynchronize", t);
        }
    }

    static int cuEventCreate(MemorySegment event, int flags) {
        try {
            return (int) cuEventCreate.invokeExact(event, flags);
        } catch (Throwable t) {
            throw failed("cuEventCreate", t);
        }
    }

    static int cuEventDestroy(MemorySegment event) {
        try {
            return (int) cuEventDestroy_v2.invokeExact(event);
        } catch (Throwable t) {
            throw failed("cuEventDestroy_v2", t);
        }
    }

    static int cuEventRecord(MemorySegment event, MemorySegment stream) {
        try {
            return (int) cuEventRecord.invokeExact(event, stream);
        } catch (Throwable t) {
            throw failed("cuEventRecord", t);
        }
    }

    static int cuEventSynchronize(MemorySegment event) {
        try {
            return (int) cuEventSynchronize.invokeExact(event);
        } catch (Throwable t) {
            throw failed("cuEventSynchronize", t);
        }
    }

    static int cuEventElapsedTime(MemorySegment milliseconds, MemorySegment start, MemorySegment end) {
        try {
            return (int) cuEventElapsedTime.invokeExact(milliseconds, start, end);
        } catch (Throwable t) {
            throw failed("cuEventElapsedTime", t);
        }
    }

    static int cuModuleLoadDataEx(MemorySegment module, MemorySegment image, int numOptions, MemorySegment options,
            MemorySegment optionValues) {
        try {
            return (int) cuModuleLoadDataEx.invokeExact(module, image, numOptions, options, optionValues);
        } catch (Throwable t) {
            throw failed("cuModuleLoadDataEx", t);
        }
    }

    static int cuModuleGetFunction(MemorySegment function, MemorySegment module, MemorySegment name) {
        try {
            return (int) cuModuleGetFunction.invokeExact(function, module, name);
        } catch (Throwable t) {
            throw failed("cuModuleGetFunction", t);
        }
    }

    static int cuModuleUnload(MemorySegment module) {
        try {
            return (int) cuModuleUnload.invokeExact(module);
        } catch (Throwable t) {
            throw failed("cuModuleUnload", t);
        }
    }

    static int cuFuncGetAttribute(MemorySegment value, int attribute, MemorySegment function) {
        try {
            return (int) cuFuncGetAttribute.invokeExact(value, attribute, function);
        } catch (Throwable t) {
            throw failed("cuFuncGetAttribute", t);
        }
    }

    static int cuFuncSetAttribute(MemorySegment function, int attribute, int value) {
        try {
            return (int) cuFuncSetAttribute.invokeExact(function, attribute, value);
        } catch (Throwable t) {
            throw failed("cuFuncSetAttribute", t);
        }
    }

    static int cuLaunchKernel(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
            int sharedMemBytes, MemorySegment stream, MemorySegment kernelParams, MemorySegment extra) {
        try {
            return (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedMemBytes, stream,
                    kernelParams, extra);
        } catch (Throwable t) {
            throw failed("cuLaunchKernel", t);
        }
    }

    /** cuLaunchKernelEx: a launch described by a CUlaunchConfig ({@link #LAUNCH_CONFIG_BYTES}), with its attributes. */
    static int cuLaunchKernelEx(MemorySegment config, MemorySegment function, MemorySegment kernelParams, MemorySegment extra) {
        try {
            return (int) cuLaunchKernelEx.invokeExact(config, function, kernelParams, extra);
        } catch (Throwable t) {
            throw failed("cuLaunchKernelEx", t);
        }
    }

    // CUlaunchConfig: gridDimX/Y/Z, blockDimX/Y/Z, sharedMemBytes (unsigned ints from 0), hStream, attrs (pointers),
    // numAttrs; CUlaunchAttribute: its id (an enum) and, 8 bytes in, a 64-byte union of values
    static final long LAUNCH_CONFIG_BYTES = 56;
    static final long LAUNCH_CONFIG_GRID_X = 0, LAUNCH_CONFIG_BLOCK_X = 12, LAUNCH_CONFIG_SHARED_MEM = 24;
    static final long LAUNCH_CONFIG_STREAM = 32, LAUNCH_CONFIG_ATTRS = 40, LAUNCH_CONFIG_NUM_ATTRS = 48;
    static final long LAUNCH_ATTRIBUTE_BYTES = 72, LAUNCH_ATTRIBUTE_VALUE = 8;
    /** A launch attribute: the kernel may begin while the one before it on the stream finishes (programmatic dependent launch). */
    static final int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
    /** A launch attribute: the blocks form clusters of the dimensions in its value (three unsigned ints). */
    static final int CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;

    static int cuStreamBeginCapture(MemorySegment stream, int mode) {
        try {
            return (int) cuStreamBeginCapture_v2.invokeExact(stream, mode);
        } catch (Throwable t) {
            throw failed("cuStreamBeginCapture_v2", t);
        }
    }

    static int cuStreamEndCapture(MemorySegment stream, MemorySegment graph) {
        try {
            return (int) cuStreamEndCapture.invokeExact(stream, graph);
        } catch (Throwable t) {
            throw failed("cuStreamEndCapture", t);
        }
    }

    static int cuGraphInstantiate(MemorySegment graphExec, MemorySegment graph, long flags) {
        try {
            return (int) cuGraphInstantiateWithFlags.invokeExact(graphExec, graph, flags);
        } catch (Throwable t) {
            throw failed("cuGraphInstantiateWithFlags", t);
        }
    }

    static int cuGraphLaunch(MemorySegment graphExec, MemorySegment stream) {
        try {
            return (int) cuGraphLaunch.invokeExact(graphExec, stream);
        } catch (Throwable t) {
            throw failed("cuGraphLaunch", t);
        }
    }

    static int cuGraphExecDestroy(MemorySegment graphExec) {
        try {
            return (int) cuGraphExecDestroy.invokeExact(graphExec);
        } catch (Throwable t) {
            throw failed("cuGraphExecDestroy", t);
        }
    }

    static int cuGraphDestroy(MemorySegment graph) {
        try {
            return (int) cuGraphDestroy.invokeExact(graph);
        } catch (Throwable t) {
            throw failed("cuGraphDestroy", t);
        }
    }

    // ---- small helpers over the wrappers ---------------------------------------------------------------

    /** Reads one int out-parameter: {@code call} receives the int's address. */
    static int queryInt(String what, java.util.function.ToIntFunction<MemorySegment> call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(call.applyAsInt(out), what);
            return out.get(JAVA_INT, 0);
        }
    }

    /** Reads one pointer out-parameter (a handle). */
    static MemorySegment queryHandle(String what, java.util.function.ToIntFunction<MemorySegment> call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(call.applyAsInt(out), what);
            return out.get(ADDRESS, 0);
        }
    }

    /** Reads one 8-byte out-parameter (size_t, CUdeviceptr). */
    static long queryLong(String what, java.util.function.ToIntFunction<MemorySegment> call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check(call.applyAsInt(out), what);
            return out.get(JAVA_LONG, 0);
        }
    }
}
