package io.lightllm.tornado.opencl;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * FFM bindings to the OpenCL 1.2 host API in libOpenCL (the ICD loader). Every wrapper checks
 * the returned code and throws {@link OpenCLException} naming the call and the CL_ constant.
 * Handles (cl_platform_id, cl_context, cl_mem, ...) are plain address segments.
 *
 * <p>The method handles are static finals so the JIT can inline {@code invokeExact}. When the
 * library cannot be loaded they stay null and {@link #UNAVAILABLE} says why; callers check it
 * before anything else.
 */
final class CL {
    // cl.h constants used by this backend
    static final int CL_PLATFORM_VERSION = 0x0901;
    static final int CL_PLATFORM_NAME = 0x0902;
    static final long CL_DEVICE_TYPE_ALL = 0xFFFFFFFFL;
    static final int CL_DEVICE_TYPE = 0x1000;
    static final long CL_DEVICE_TYPE_CPU = 1L << 1;
    static final long CL_DEVICE_TYPE_GPU = 1L << 2;
    static final long CL_DEVICE_TYPE_ACCELERATOR = 1L << 3;
    static final long CL_DEVICE_TYPE_CUSTOM = 1L << 4;
    static final int CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002;
    static final int CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F;
    static final int CL_DEVICE_NAME = 0x102B;
    static final int CL_DRIVER_VERSION = 0x102D;
    static final int CL_DEVICE_EXTENSIONS = 0x1030;
    static final int CL_DEVICE_VERSION = 0x102F;
    static final long CL_QUEUE_PROFILING_ENABLE = 1L << 1;
    static final long CL_MEM_READ_WRITE = 1L;
    static final int CL_PROGRAM_BINARY_SIZES = 0x1165;
    static final int CL_PROGRAM_BINARIES = 0x1166;
    static final int CL_PROGRAM_BUILD_LOG = 0x1183;
    static final int CL_PROFILING_COMMAND_START = 0x1282;
    static final int CL_PROFILING_COMMAND_END = 0x1283;
    static final int CL_DEVICE_NOT_FOUND = -1;
    static final int CL_BUILD_PROGRAM_FAILURE = -11;
    static final int CL_PLATFORM_NOT_FOUND_KHR = -1001;

    /** Why libOpenCL cannot be used (not found, a symbol missing), or null when it can. */
    static final String UNAVAILABLE;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final List<String> PROBLEMS = new ArrayList<>();
    private static final SymbolLookup LIB = openLibrary();

    private static final MethodHandle GET_PLATFORM_IDS = bind("clGetPlatformIDs", JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle GET_PLATFORM_INFO = bind("clGetPlatformInfo", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
    private static final MethodHandle GET_DEVICE_IDS = bind("clGetDeviceIDs", JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle GET_DEVICE_INFO = bind("clGetDeviceInfo", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
    private static final MethodHandle CREATE_CONTEXT = bind("clCreateContext", ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle CREATE_COMMAND_QUEUE = bind("clCreateCommandQueue", ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);
    private static final MethodHandle CREATE_BUFFER = bind("clCreateBuffer", ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS);
    private static final MethodHandle ENQUEUE_WRITE_BUFFER = bind("clEnqueueWriteBuffer", JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle ENQUEUE_READ_BUFFER = bind("clEnqueueReadBuffer", JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle ENQUEUE_COPY_BUFFER = bind("clEnqueueCopyBuffer", JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle ENQUEUE_FILL_BUFFER = bind("clEnqueueFillBuffer", JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle CREATE_PROGRAM_WITH_SOURCE = bind("clCreateProgramWithSource", ADDRESS,
            ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle CREATE_PROGRAM_WITH_BINARY = bind("clCreateProgramWithBinary", ADDRESS,
            ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle BUILD_PROGRAM = bind("clBuildProgram", JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle GET_PROGRAM_BUILD_INFO = bind("clGetProgramBuildInfo", JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
    private static final MethodHandle GET_PROGRAM_INFO = bind("clGetProgramInfo", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
    private static final MethodHandle CREATE_KERNEL = bind("clCreateKernel", ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle SET_KERNEL_ARG = bind("clSetKernelArg", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS);
    private static final MethodHandle ENQUEUE_ND_RANGE_KERNEL = bind("clEnqueueNDRangeKernel", JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle FINISH = bind("clFinish", JAVA_INT, ADDRESS);
    private static final MethodHandle WAIT_FOR_EVENTS = bind("clWaitForEvents", JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle GET_EVENT_PROFILING_INFO = bind("clGetEventProfilingInfo", JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
    private static final MethodHandle RELEASE_MEM_OBJECT = bind("clReleaseMemObject", JAVA_INT, ADDRESS);
    private static final MethodHandle RELEASE_KERNEL = bind("clReleaseKernel", JAVA_INT, ADDRESS);
    private static final MethodHandle RELEASE_PROGRAM = bind("clReleaseProgram", JAVA_INT, ADDRESS);
    private static final MethodHandle RELEASE_COMMAND_QUEUE = bind("clReleaseCommandQueue", JAVA_INT, ADDRESS);
    private static final MethodHandle RELEASE_CONTEXT = bind("clReleaseContext", JAVA_INT, ADDRESS);
    private static final MethodHandle RELEASE_EVENT = bind("clReleaseEvent", JAVA_INT, ADDRESS);

    static {
        UNAVAILABLE = PROBLEMS.isEmpty() ? null : String.join("; ", PROBLEMS);
    }

    private CL() {
    }

    private static SymbolLookup openLibrary() {
        for (String name : new String[] {"libOpenCL.so.1", "libOpenCL.so"}) {
            try {
                return SymbolLookup.libraryLookup(name, Arena.global());
            } catch (IllegalArgumentException notFound) {
                // try the next name
            }
        }
        PROBLEMS.add("cannot load libOpenCL.so.1 or libOpenCL.so (install an OpenCL ICD loader and a driver, e.g. ocl-icd-libopencl1 and pocl-opencl-icd)");
        return null;
    }

    private static MethodHandle bind(String symbol, MemoryLayout result, MemoryLayout... args) {
        if (LIB == null) {
            return null;
        }
        MemorySegment address = LIB.find(symbol).orElse(null);
        if (address == null) {
            PROBLEMS.add("libOpenCL has no " + symbol);
            return null;
        }
        return LINKER.downcallHandle(address, FunctionDescriptor.of(result, args));
    }

    static void check(String call, int code) {
        if (code != 0) {
            throw new OpenCLException(call, code);
        }
    }

    /** Wraps the Throwable of invokeExact: the handles never throw checked exceptions themselves. */
    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    // ---- discovery ------------------------------------------------------------------

    /** Every platform; empty when the ICD loader finds no driver. */
    static List<MemorySegment> platforms() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(JAVA_INT);
            int code = (int) GET_PLATFORM_IDS.invokeExact(0, MemorySegment.NULL, count);
            if (code == CL_PLATFORM_NOT_FOUND_KHR) {
                return List.of();
            }
            check("clGetPlatformIDs", code);
            int n = count.get(JAVA_INT, 0);
            if (n == 0) {
                return List.of();
            }
            MemorySegment ids = a.allocate(ADDRESS, n);
            check("clGetPlatformIDs", (int) GET_PLATFORM_IDS.invokeExact(n, ids, MemorySegment.NULL));
            return addresses(ids, n);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static String platformString(MemorySegment platform, int param) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(JAVA_LONG);
            check("clGetPlatformInfo", (int) GET_PLATFORM_INFO.invokeExact(platform, param, 0L, MemorySegment.NULL, size));
            MemorySegment value = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
            check("clGetPlatformInfo", (int) GET_PLATFORM_INFO.invokeExact(platform, param, value.byteSize(), value, MemorySegment.NULL));
            return value.getString(0, StandardCharsets.UTF_8).trim();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Every device of the platform; empty when it has none. */
    static List<MemorySegment> devices(MemorySegment platform) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(JAVA_INT);
            int code = (int) GET_DEVICE_IDS.invokeExact(platform, CL_DEVICE_TYPE_ALL, 0, MemorySegment.NULL, count);
            if (code == CL_DEVICE_NOT_FOUND) {
                return List.of();
            }
            check("clGetDeviceIDs", code);
            int n = count.get(JAVA_INT, 0);
            MemorySegment ids = a.allocate(ADDRESS, Math.max(1, n));
            check("clGetDeviceIDs", (int) GET_DEVICE_IDS.invokeExact(platform, CL_DEVICE_TYPE_ALL, n, ids, MemorySegment.NULL));
            return addresses(ids, n);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static String deviceString(MemorySegment device, int param) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(JAVA_LONG);
            check("clGetDeviceInfo", (int) GET_DEVICE_INFO.invokeExact(device, param, 0L, MemorySegment.NULL, size));
            MemorySegment value = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
            check("clGetDeviceInfo", (int) GET_DEVICE_INFO.invokeExact(device, param, value.byteSize(), value, MemorySegment.NULL));
            return value.getString(0, StandardCharsets.UTF_8).trim();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A cl_ulong (or cl_bitfield) device property. */
    static long deviceLong(MemorySegment device, int param) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment value = a.allocate(JAVA_LONG);
            check("clGetDeviceInfo", (int) GET_DEVICE_INFO.invokeExact(device, param, 8L, value, MemorySegment.NULL));
            return value.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A cl_uint device property. */
    static int deviceInt(MemorySegment device, int param) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment value = a.allocate(JAVA_INT);
            check("clGetDeviceInfo", (int) GET_DEVICE_INFO.invokeExact(device, param, 4L, value, MemorySegment.NULL));
            return value.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- context, queue, buffers ----------------------------------------------------

    static MemorySegment createContext(MemorySegment device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment devices = a.allocate(ADDRESS);
            devices.set(ADDRESS, 0, device);
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment ctx = (MemorySegment) CREATE_CONTEXT.invokeExact(MemorySegment.NULL, 1, devices,
                    MemorySegment.NULL, MemorySegment.NULL, err);
            check("clCreateContext", err.get(JAVA_INT, 0));
            return ctx;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static MemorySegment createCommandQueue(MemorySegment context, MemorySegment device, long properties) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment queue = (MemorySegment) CREATE_COMMAND_QUEUE.invokeExact(context, device, properties, err);
            check("clCreateCommandQueue", err.get(JAVA_INT, 0));
            return queue;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static MemorySegment createBuffer(MemorySegment context, long flags, long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment mem = (MemorySegment) CREATE_BUFFER.invokeExact(context, flags, bytes, MemorySegment.NULL, err);
            int code = err.get(JAVA_INT, 0);
            if (code != 0) {
                throw new OpenCLException("clCreateBuffer", code, bytes + " bytes");
            }
            return mem;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Host to device; {@code src} must be a native segment. */
    static void enqueueWriteBuffer(MemorySegment queue, MemorySegment mem, boolean blocking, long offset, MemorySegment src) {
        try {
            check("clEnqueueWriteBuffer", (int) ENQUEUE_WRITE_BUFFER.invokeExact(queue, mem, blocking ? 1 : 0, offset, src.byteSize(), src,
                    0, MemorySegment.NULL, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Device to host; {@code dst} must be a native segment. */
    static void enqueueReadBuffer(MemorySegment queue, MemorySegment mem, boolean blocking, long offset, MemorySegment dst) {
        try {
            check("clEnqueueReadBuffer", (int) ENQUEUE_READ_BUFFER.invokeExact(queue, mem, blocking ? 1 : 0, offset, dst.byteSize(), dst,
                    0, MemorySegment.NULL, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void enqueueCopyBuffer(MemorySegment queue, MemorySegment src, MemorySegment dst, long srcOffset, long dstOffset, long bytes) {
        try {
            check("clEnqueueCopyBuffer", (int) ENQUEUE_COPY_BUFFER.invokeExact(queue, src, dst, srcOffset, dstOffset, bytes,
                    0, MemorySegment.NULL, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Repeats {@code pattern} (1, 2, 4, ... 128 bytes) over {@code bytes} bytes at {@code offset}. */
    static void enqueueFillBuffer(MemorySegment queue, MemorySegment mem, MemorySegment pattern, long offset, long bytes) {
        try {
            check("clEnqueueFillBuffer", (int) ENQUEUE_FILL_BUFFER.invokeExact(queue, mem, pattern, pattern.byteSize(), offset, bytes,
                    0, MemorySegment.NULL, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- programs and kernels -------------------------------------------------------

    static MemorySegment createProgramWithSource(MemorySegment context, String source) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment text = a.allocateFrom(source, StandardCharsets.UTF_8);
            MemorySegment strings = a.allocate(ADDRESS);
            strings.set(ADDRESS, 0, text);
            MemorySegment err = a.allocate(JAVA_INT);
            // lengths NULL: the string is NUL-terminated
            MemorySegment program = (MemorySegment) CREATE_PROGRAM_WITH_SOURCE.invokeExact(context, 1, strings, MemorySegment.NULL, err);
            check("clCreateProgramWithSource", err.get(JAVA_INT, 0));
            return program;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A program from a binary that {@link #programBinary} returned for the same device. */
    static MemorySegment createProgramWithBinary(MemorySegment context, MemorySegment device, byte[] binary) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment devices = a.allocate(ADDRESS);
            devices.set(ADDRESS, 0, device);
            MemorySegment lengths = a.allocate(JAVA_LONG);
            lengths.set(JAVA_LONG, 0, binary.length);
            MemorySegment data = a.allocate(Math.max(1, binary.length));
            MemorySegment.copy(binary, 0, data, JAVA_BYTE, 0, binary.length);
            MemorySegment binaries = a.allocate(ADDRESS);
            binaries.set(ADDRESS, 0, data);
            MemorySegment status = a.allocate(JAVA_INT);
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment program = (MemorySegment) CREATE_PROGRAM_WITH_BINARY.invokeExact(context, 1, devices, lengths, binaries, status, err);
            check("clCreateProgramWithBinary", err.get(JAVA_INT, 0));
            check("clCreateProgramWithBinary", status.get(JAVA_INT, 0));
            return program;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Builds for one device; on CL_BUILD_PROGRAM_FAILURE read {@link #buildLog}. */
    static void buildProgram(MemorySegment program, MemorySegment device, String options) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment devices = a.allocate(ADDRESS);
            devices.set(ADDRESS, 0, device);
            MemorySegment opts = a.allocateFrom(options, StandardCharsets.UTF_8);
            check("clBuildProgram", (int) BUILD_PROGRAM.invokeExact(program, 1, devices, opts, MemorySegment.NULL, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static String buildLog(MemorySegment program, MemorySegment device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(JAVA_LONG);
            check("clGetProgramBuildInfo", (int) GET_PROGRAM_BUILD_INFO.invokeExact(program, device, CL_PROGRAM_BUILD_LOG, 0L,
                    MemorySegment.NULL, size));
            MemorySegment log = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
            check("clGetProgramBuildInfo", (int) GET_PROGRAM_BUILD_INFO.invokeExact(program, device, CL_PROGRAM_BUILD_LOG, log.byteSize(),
                    log, MemorySegment.NULL));
            return log.getString(0, StandardCharsets.UTF_8).trim();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The device binary of a program built for exactly one device. */
    static byte[] programBinary(MemorySegment program) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment sizes = a.allocate(JAVA_LONG);
            check("clGetProgramInfo", (int) GET_PROGRAM_INFO.invokeExact(program, CL_PROGRAM_BINARY_SIZES, 8L, sizes, MemorySegment.NULL));
            long size = sizes.get(JAVA_LONG, 0);
            MemorySegment data = a.allocate(Math.max(1, size));
            MemorySegment pointers = a.allocate(ADDRESS);
            pointers.set(ADDRESS, 0, data);
            check("clGetProgramInfo", (int) GET_PROGRAM_INFO.invokeExact(program, CL_PROGRAM_BINARIES, ADDRESS.byteSize(), pointers,
                    MemorySegment.NULL));
            return data.asSlice(0, size).toArray(JAVA_BYTE);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static MemorySegment createKernel(MemorySegment program, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment kernel = (MemorySegment) CREATE_KERNEL.invokeExact(program, a.allocateFrom(name, StandardCharsets.UTF_8), err);
            int code = err.get(JAVA_INT, 0);
            if (code != 0) {
                throw new OpenCLException("clCreateKernel", code, "kernel '" + name + "'");
            }
            return kernel;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code value} holds the argument's bytes (a cl_mem handle for buffers). */
    static void setKernelArg(MemorySegment kernel, int index, MemorySegment value) {
        try {
            int code = (int) SET_KERNEL_ARG.invokeExact(kernel, index, value.byteSize(), value);
            if (code != 0) {
                throw new OpenCLException("clSetKernelArg", code, "argument " + index);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Enqueues {@code kernel} over {@code global} work-items in groups of {@code local} (null:
     * the driver picks). With {@code event} non-null, the launch's cl_event is stored there.
     */
    static void enqueueNDRangeKernel(MemorySegment queue, MemorySegment kernel, long[] global, long[] local, MemorySegment event) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment globalSizes = a.allocateFrom(JAVA_LONG, global);
            MemorySegment localSizes = local == null ? MemorySegment.NULL : a.allocateFrom(JAVA_LONG, local);
            MemorySegment eventOut = event == null ? MemorySegment.NULL : event;
            check("clEnqueueNDRangeKernel", (int) ENQUEUE_ND_RANGE_KERNEL.invokeExact(queue, kernel, global.length, MemorySegment.NULL,
                    globalSizes, localSizes, 0, MemorySegment.NULL, eventOut));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void finish(MemorySegment queue) {
        try {
            check("clFinish", (int) FINISH.invokeExact(queue));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void waitForEvent(MemorySegment event) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment list = a.allocate(ADDRESS);
            list.set(ADDRESS, 0, event);
            check("clWaitForEvents", (int) WAIT_FOR_EVENTS.invokeExact(1, list));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A CL_PROFILING_COMMAND_* timestamp in device nanoseconds. */
    static long eventProfilingInfo(MemorySegment event, int param) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment value = a.allocate(JAVA_LONG);
            check("clGetEventProfilingInfo", (int) GET_EVENT_PROFILING_INFO.invokeExact(event, param, 8L, value, MemorySegment.NULL));
            return value.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- release --------------------------------------------------------------------

    static void releaseMemObject(MemorySegment mem) {
        release("clReleaseMemObject", RELEASE_MEM_OBJECT, mem);
    }

    static void releaseKernel(MemorySegment kernel) {
        release("clReleaseKernel", RELEASE_KERNEL, kernel);
    }

    static void releaseProgram(MemorySegment program) {
        release("clReleaseProgram", RELEASE_PROGRAM, program);
    }

    static void releaseCommandQueue(MemorySegment queue) {
        release("clReleaseCommandQueue", RELEASE_COMMAND_QUEUE, queue);
    }

    static void releaseContext(MemorySegment context) {
        release("clReleaseContext", RELEASE_CONTEXT, context);
    }

    static void releaseEvent(MemorySegment event) {
        release("clReleaseEvent", RELEASE_EVENT, event);
    }

    private static void release(String call, MethodHandle handle, MemorySegment object) {
        try {
            check(call, (int) handle.invokeExact(object));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static List<MemorySegment> addresses(MemorySegment array, int n) {
        List<MemorySegment> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(array.getAtIndex(ADDRESS, i));
        }
        return List.copyOf(out);
    }
}
