package io.lightllm.tornado.opencl;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;

/** A cl_mem of one OpenCL device. Closing releases it; closing twice is harmless. */
final class OpenCLBuffer extends DeviceBuffer {
    private MemorySegment mem;

    OpenCLBuffer(OpenCLDevice device, DType dtype, long elements, MemorySegment context) {
        super(device, dtype, elements);
        if (elements < 0) {
            throw new IllegalArgumentException("cannot allocate " + elements + " elements");
        }
        // OpenCL rejects zero-size buffers (CL_INVALID_BUFFER_SIZE); an empty tensor is still a valid argument
        this.mem = CL.createBuffer(context, CL.CL_MEM_READ_WRITE, Math.max(1, byteSize()));
    }

    /** The cl_mem handle; fails once the buffer is closed, since a released handle may name another buffer. */
    synchronized MemorySegment mem() {
        if (mem == null) {
            throw new IllegalStateException(this + " is closed");
        }
        return mem;
    }

    @Override
    public synchronized void close() {
        if (mem != null) {
            CL.releaseMemObject(mem);
            mem = null;
        }
    }
}
