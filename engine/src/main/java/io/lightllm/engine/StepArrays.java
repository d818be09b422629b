package io.lightllm.engine;

import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * Device buffers for a step's host arrays whose length changes from step to step (the penalties' entries, the constraint
 * masks), each kept under its name and grown (doubled) when an array outgrows it. Uploading them as new buffers each
 * step cost a cuMemAlloc and a cuMemFree apiece on a GPU, and a free waits for the device: a sampled step with penalties
 * made six of each. The kernels take the arrays' lengths as arguments, so a buffer may be longer than its array.
 */
final class StepArrays implements AutoCloseable {
    private final Device device;
    private final Map<String, DeviceBuffer> buffers = new HashMap<>();

    StepArrays(Device device) {
        this.device = device;
    }

    /** {@code values} in the buffer named {@code name} (from its start), which grows to hold them. */
    DeviceBuffer put(String name, NativeArray values) {
        DeviceBuffer b = buffers.get(name);
        if (b == null || b.dtype() != values.dtype() || b.elements() < values.getSize()) {
            long elements = Math.max(values.getSize(), b == null ? 0 : 2 * b.elements());
            if (b != null) {
                b.close();
            }
            b = device.allocate(values.dtype(), Math.max(1, elements));
            buffers.put(name, b);
        }
        if (values.getSize() > 0) {
            device.write(values.segment(), b, 0);
        }
        return b;
    }

    @Override
    public void close() {
        buffers.values().forEach(DeviceBuffer::close);
        buffers.clear();
    }
}
