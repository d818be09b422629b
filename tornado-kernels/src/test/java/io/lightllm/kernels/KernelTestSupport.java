package io.lightllm.kernels;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.stream.Stream;

/** What the kernel tests share: the devices they run on and copies in and out of device buffers. */
final class KernelTestSupport {
    /** Local sizes the row kernels must give the same answers for (any power of two up to GroupReduce.MAX_LOCAL). */
    static final int[] LOCAL_SIZES = {1, 4, 64};

    private KernelTestSupport() {
    }

    /** The JVM (checked against scalar references) and every accelerator (checked against the references and the JVM). */
    static Stream<String> deviceIds() {
        return Stream.concat(Stream.of("jvm"), TestDevices.accelerators().stream());
    }

    static Device device(String id) {
        return Devices.get(id);
    }

    static boolean isJvm(Device device) {
        return device.id().equals("jvm");
    }

    /**
     * A device copy of {@code host}. Always a copy (never {@link Device#upload}, which aliases
     * on the JVM), so in-place kernels leave the test's inputs intact.
     */
    static DeviceBuffer copyOf(Device device, NativeArray host) {
        DeviceBuffer b = device.allocate(host.dtype(), host.getSize());
        device.copyIn(host, b);
        return b;
    }
}
