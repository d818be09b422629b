package io.lightllm.tornado.opencl;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceInfo;
import java.util.List;
import java.util.Optional;

/** OpenCL devices through libOpenCL.so.1 (placeholder until the FFM bindings land). */
public final class OpenCLBackend implements Backend {
    public static final OpenCLBackend INSTANCE = new OpenCLBackend();

    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.of("not implemented yet");
    }

    @Override
    public List<DeviceInfo> devices() {
        return List.of();
    }

    @Override
    public Device open(String id) {
        throw new IllegalArgumentException("opencl is unavailable");
    }
}
