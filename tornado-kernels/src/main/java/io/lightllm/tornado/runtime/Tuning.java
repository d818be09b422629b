package io.lightllm.tornado.runtime;

/**
 * Per-backend launch tuning from {@code tornado-config/tornado.properties} ({@link TornadoConfig}),
 * overridable by system properties {@code lightllm.tuning.<backend>.<name>}.
 */
public final class Tuning {
    private Tuning() {
    }

    /** The tuned value of {@code name} for the device's backend, or {@code fallback}. */
    public static int get(Device device, String name, int fallback) {
        String key = Devices.backendName(device.id()) + "." + name;
        String v = System.getProperty("lightllm.tuning." + key, TornadoConfig.get(key));
        return v == null ? fallback : Integer.parseInt(v.trim());
    }
}
