package io.lightllm.tornado.jvm;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceInfo;
import java.util.List;
import java.util.Optional;

/** The JVM as a device: kernels run as Java on every core. Always available. */
public final class JvmBackend implements Backend {
    public static final JvmBackend INSTANCE = new JvmBackend();

    private JvmBackend() {
    }

    @Override
    public String name() {
        return "jvm";
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.empty();
    }

    @Override
    public List<DeviceInfo> devices() {
        return List.of(new DeviceInfo("jvm", JvmDevice.describeCpu(), JvmDevice.physicalMemory(),
                JvmDevice.defaultThreads(), "Java " + Runtime.version().feature() + ", reference backend"));
    }

    @Override
    public Device open(String id) {
        return new JvmDevice();
    }
}
