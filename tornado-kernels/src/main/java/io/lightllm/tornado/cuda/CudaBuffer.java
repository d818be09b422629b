package io.lightllm.tornado.cuda;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Device memory from cuMemAlloc (never managed memory). An empty buffer holds no allocation and
 * passes a null pointer, which kernels never dereference because their bounds say so.
 */
public final class CudaBuffer extends DeviceBuffer {
    private final CudaDevice device;
    private final long pointer;
    private final AtomicBoolean closed = new AtomicBoolean();

    CudaBuffer(CudaDevice device, DType dtype, long elements, long pointer) {
        super(device, dtype, elements);
        this.device = device;
        this.pointer = pointer;
    }

    /** The CUdeviceptr (0 for an empty buffer). */
    public long devicePointer() {
        if (closed.get()) {
            throw new IllegalStateException(this + " is closed");
        }
        return pointer;
    }

    boolean isClosed() {
        return closed.get();
    }

    /** Frees the memory once the device's queued work is done. Closing twice is harmless. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true) && pointer != 0) {
            device.free(pointer);
        }
    }
}
