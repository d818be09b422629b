package io.lightllm.tornado.runtime;

import io.lightllm.tornado.jvm.JvmBackend;
import io.lightllm.tornado.opencl.OpenCLBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Discovery and selection of devices across backends. A device is named by
 * {@code jvm}, {@code opencl:P:D} (platform P, device D) or {@code cuda:N}; the same string is
 * accepted by every command's {@code --device} flag and by the system property
 * {@code lightllm.device}.
 */
public final class Devices {
    /** System property that picks the default device. */
    public static final String DEVICE_PROPERTY = "lightllm.device";

    private static final Map<String, Device> OPEN = new ConcurrentHashMap<>();

    private Devices() {
    }

    /** Every backend this build knows, available here or not. */
    public static List<Backend> backends() {
        List<Backend> list = new ArrayList<>();
        list.add(JvmBackend.INSTANCE);
        list.add(OpenCLBackend.INSTANCE);
        Backend cuda = optionalBackend("io.lightllm.tornado.cuda.CudaBackend");
        if (cuda != null) {
            list.add(cuda);
        }
        return list;
    }

    private static Backend optionalBackend(String className) {
        try {
            return (Backend) Class.forName(className).getField("INSTANCE").get(null);
        } catch (ReflectiveOperationException e) {
            return null;
        }
    }

    public static List<DeviceInfo> list() {
        List<DeviceInfo> all = new ArrayList<>();
        for (Backend b : backends()) {
            if (b.unavailableReason().isEmpty()) {
                all.addAll(b.devices());
            }
        }
        return all;
    }

    /** The device named by {@code lightllm.device}, else the JVM. */
    public static Device getDefault() {
        return get(System.getProperty(DEVICE_PROPERTY, "jvm"));
    }

    /**
     * The device with this id, opened once and shared. Throws with the backend's reason when it
     * is unavailable, and with the known ids when the id names no device.
     */
    public static Device get(String id) {
        String key = id.trim();
        return OPEN.computeIfAbsent(key, Devices::open);
    }

    private static Device open(String id) {
        String prefix = id.contains(":") ? id.substring(0, id.indexOf(':')) : id;
        for (Backend b : backends()) {
            if (b.name().equals(prefix)) {
                b.unavailableReason().ifPresent(reason -> {
                    throw new IllegalArgumentException("device " + id + ": backend " + b.name() + " is unavailable: " + reason);
                });
                for (DeviceInfo info : b.devices()) {
                    if (info.id().equals(id)) {
                        return b.open(id);
                    }
                }
                throw new IllegalArgumentException("no device " + id + "; " + b.name() + " has "
                        + b.devices().stream().map(DeviceInfo::id).toList());
            }
        }
        throw new IllegalArgumentException("unknown device '" + id + "': use jvm, opencl:P:D or cuda:N");
    }
}
