package io.lightllm.testing;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.opencl.OpenCLBackend;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * The devices a cross-backend test runs on: the JVM (the reference) and the first OpenCL
 * device. Under {@code CI=true} a missing OpenCL platform fails the test instead of skipping
 * it, because CI must prove the OpenCL path.
 */
public final class TestDevices {
    private TestDevices() {
    }

    public static boolean inCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    public static Device jvm() {
        return Devices.get("jvm");
    }

    /** The first OpenCL device; skips the test outside CI when there is none, fails in CI. */
    public static Device opencl() {
        Backend cl = OpenCLBackend.INSTANCE;
        String why = cl.unavailableReason().orElse(cl.devices().isEmpty() ? "no OpenCL device" : null);
        if (why != null) {
            if (inCi()) {
                throw new AssertionError("CI=true but OpenCL is unavailable: " + why);
            }
            Assumptions.abort("OpenCL unavailable: " + why);
        }
        return Devices.get(cl.devices().getFirst().id());
    }

    /** "jvm" (the reference) and then {@link #accelerators()}: the devices a cross-backend test runs on. */
    public static List<String> jvmAndAccelerators() {
        List<String> ids = new ArrayList<>(List.of("jvm"));
        ids.addAll(accelerators());
        return ids;
    }

    /** {@link #jvmAndAccelerators()} as devices (a list the caller may add to). */
    public static List<Device> jvmAndAcceleratorDevices() {
        List<Device> devices = new ArrayList<>();
        jvmAndAccelerators().forEach(id -> devices.add(Devices.get(id)));
        return devices;
    }

    /**
     * Ids of the devices to compare against the JVM: those named by the system property
     * {@code lightllm.test.devices} (comma-separated, e.g. {@code cuda:0} on a GPU machine),
     * else the first OpenCL device (which CI must have).
     */
    public static List<String> accelerators() {
        String named = System.getProperty("lightllm.test.devices", "").trim();
        if (!named.isEmpty()) {
            return List.of(named.split("\\s*,\\s*"));
        }
        List<String> ids = new ArrayList<>();
        Backend cl = OpenCLBackend.INSTANCE;
        if (cl.unavailableReason().isEmpty()) {
            cl.devices().stream().map(DeviceInfo::id).findFirst().ifPresent(ids::add);
        }
        if (ids.isEmpty() && inCi()) {
            throw new AssertionError("CI=true but no OpenCL device was found: " + cl.unavailableReason().orElse("no devices"));
        }
        return ids;
    }
}
