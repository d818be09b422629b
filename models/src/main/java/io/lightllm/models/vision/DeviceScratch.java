package io.lightllm.models.vision;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;

/** The device buffers of one encoder call, freed together when it ends (the towers' try-with-resources). */
final class DeviceScratch implements AutoCloseable {
    private final Device device;
    private final List<DeviceBuffer> buffers = new ArrayList<>();

    DeviceScratch(Device device) {
        this.device = device;
    }

    /** {@code elements} f32 elements, freed with this scratch. */
    DeviceBuffer f32(long elements) {
        return allocate(DType.F32, elements);
    }

    DeviceBuffer allocate(DType dtype, long elements) {
        DeviceBuffer b = device.allocate(dtype, elements);
        buffers.add(b);
        return b;
    }

    /** The first {@code elements} floats of {@code buffer}, on the host. */
    float[] download(DeviceBuffer buffer, int elements) {
        FloatArray host = FloatArray.allocate(elements);
        device.copyOut(buffer, host);
        return host.toArray();
    }

    @Override
    public void close() {
        buffers.forEach(DeviceBuffer::close);
    }
}
