package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.DType;

/**
 * Memory that lives on one device and persists across launches. Kernels receive it where
 * they declare an array parameter; the host moves data in and out with the device's copy
 * methods. Closing frees it.
 */
public abstract class DeviceBuffer implements AutoCloseable {
    private final Device device;
    private final DType dtype;
    private final long elements;

    protected DeviceBuffer(Device device, DType dtype, long elements) {
        this.device = device;
        this.dtype = dtype;
        this.elements = elements;
    }

    public Device device() {
        return device;
    }

    public DType dtype() {
        return dtype;
    }

    public long elements() {
        return elements;
    }

    public long byteSize() {
        return elements * dtype.bytes();
    }

    @Override
    public abstract void close();

    @Override
    public String toString() {
        return "DeviceBuffer[" + dtype + " x " + elements + " on " + device.id() + "]";
    }
}
