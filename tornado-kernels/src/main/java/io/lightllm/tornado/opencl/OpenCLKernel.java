package io.lightllm.tornado.opencl;

import java.lang.foreign.MemorySegment;

/**
 * A built cl_kernel of one {@link OpenCLDevice}, launched with {@link OpenCLDevice#enqueue}. The
 * device owns it and releases it when the device closes.
 */
public final class OpenCLKernel {
    private final OpenCLDevice device;
    private final String name;
    final MemorySegment handle;

    OpenCLKernel(OpenCLDevice device, String name, MemorySegment handle) {
        this.device = device;
        this.name = name;
        this.handle = handle;
    }

    public OpenCLDevice device() {
        return device;
    }

    /** The name recorded in profiles: the Java kernel's name, or the entry point of hand-written source. */
    public String name() {
        return name;
    }

    @Override
    public String toString() {
        return "OpenCLKernel[" + name + " on " + device.id() + "]";
    }
}
