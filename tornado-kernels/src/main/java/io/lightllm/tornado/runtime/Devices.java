package io.lightllm.tornado.runtime;

import io.lightllm.tornado.jvm.JvmBackend;
import io.lightllm.tornado.opencl.OpenCLBackend;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Discovery and selection of devices across backends. A device is named by
 * {@code jvm}, {@code opencl:P:D} (platform P, device D) or {@code cuda:N}; the same string is
 * accepted by every command's {@code --device} flag and by the system property
 * {@code lightllm.device}. TornadoVM's form {@code B:D} ({@link DeviceNumbering}) is accepted by
 * {@code -Dtornado.device} and by a task graph's {@code -D<graph>.<task>.device}.
 */
public final class Devices {
    /** System property that picks the default device, in this project's form. */
    public static final String DEVICE_PROPERTY = "lightllm.device";
    /** TornadoVM's system property for the default device, {@code B:D}. */
    public static final String TORNADO_DEVICE_PROPERTY = "tornado.device";

    private static final Map<String, Device> OPEN = new ConcurrentHashMap<>();

    private Devices() {
    }

    /** Every backend this build knows, available here or not, in {@code device.order} (so index = B of a TornadoVM id). */
    public static List<Backend> backends() {
        Map<String, Backend> built = new LinkedHashMap<>();
        built.put(JvmBackend.INSTANCE.name(), JvmBackend.INSTANCE);
        built.put(OpenCLBackend.INSTANCE.name(), OpenCLBackend.INSTANCE);
        Backend cuda = optionalBackend("io.lightllm.tornado.cuda.CudaBackend");
        if (cuda != null) {
            built.put(cuda.name(), cuda);
        }
        return ordered(built, TornadoConfig.deviceOrder());
    }

    /** {@code built} in {@code order}; every built backend must be named there once, so no id depends on chance. */
    static List<Backend> ordered(Map<String, Backend> built, List<String> order) {
        List<Backend> out = new ArrayList<>();
        for (String name : order) {
            Backend b = built.get(name);
            if (b == null || out.contains(b)) {
                throw new IllegalStateException("tornado-config/tornado.properties: device.order " + order + " names "
                        + (b == null ? "an unknown backend '" + name + "'" : "'" + name + "' twice") + "; the backends are " + built.keySet());
            }
            out.add(b);
        }
        if (out.size() != built.size()) {
            throw new IllegalStateException("tornado-config/tornado.properties: device.order " + order + " must list every backend: " + built.keySet());
        }
        return out;
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

    /** TornadoVM's {@code B:D} numbering of this build's devices. */
    public static DeviceNumbering numbering() {
        return new DeviceNumbering(backends());
    }

    /** The backend part of a device id: {@code opencl} of {@code opencl:0:1}. */
    public static String backendName(String deviceId) {
        int colon = deviceId.indexOf(':');
        return colon < 0 ? deviceId : deviceId.substring(0, colon);
    }

    /**
     * The id of the default device: {@code -Dtornado.device=B:D}, else {@code -Dlightllm.device},
     * else {@code jvm}. Both properties set to different devices is an error, not a silent choice.
     */
    public static String defaultId() {
        String own = System.getProperty(DEVICE_PROPERTY);
        String tornado = System.getProperty(TORNADO_DEVICE_PROPERTY);
        if (tornado == null) {
            return own == null ? "jvm" : own.trim();
        }
        String id = fromTornadoProperty(TORNADO_DEVICE_PROPERTY, tornado);
        if (own != null && !own.trim().equals(id)) {
            throw new IllegalArgumentException("-D" + TORNADO_DEVICE_PROPERTY + "=" + tornado + " (" + id + ") and -D" + DEVICE_PROPERTY + "="
                    + own + " name different devices; set one of them");
        }
        return id;
    }

    /** The device id that a system property holding a TornadoVM id names; errors name the property and list the valid ids. */
    static String fromTornadoProperty(String property, String value) {
        try {
            return numbering().deviceId(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("-D" + property + "=" + value + ": " + e.getMessage(), e);
        }
    }

    /** The default device ({@link #defaultId()}). */
    public static Device getDefault() {
        return get(defaultId());
    }

    /**
     * The device with this id, opened once and shared. Throws with the backend's reason when it
     * is unavailable, and with the valid ids when the id names no device.
     */
    public static Device get(String id) {
        String key = id.trim();
        return OPEN.computeIfAbsent(key, Devices::open);
    }

    /**
     * A new instance of the device with this id, not the shared one {@link #get} returns: its own queue or stream
     * (on the JVM, its own threads) over the same hardware, so its work runs beside the shared instance's rather
     * than between its launches (the vision encoder's stage runs so beside the inference steps). Buffers stay
     * with the instance that allocated them. The caller closes it.
     */
    public static Device openInstance(String id) {
        return open(id.trim());
    }

    private static Device open(String id) {
        for (Backend b : backends()) {
            if (b.name().equals(backendName(id))) {
                b.unavailableReason().ifPresent(reason -> {
                    throw new IllegalArgumentException("device " + id + ": backend " + b.name() + " is unavailable: " + reason
                            + "; valid ids: " + numbering().validIds());
                });
                for (DeviceInfo info : b.devices()) {
                    if (info.id().equals(id)) {
                        return b.open(id);
                    }
                }
                throw new IllegalArgumentException("no device " + id + "; valid ids: " + numbering().validIds());
            }
        }
        throw new IllegalArgumentException("unknown device '" + id + "': use jvm, opencl:P:D or cuda:N (TornadoVM's B:D goes in -D"
                + TORNADO_DEVICE_PROPERTY + "); valid ids: " + numbering().validIds());
    }
}
