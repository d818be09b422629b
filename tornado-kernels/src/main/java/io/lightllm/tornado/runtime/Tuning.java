package io.lightllm.tornado.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * Per-backend launch tuning from {@code tornado-config/tuning.properties} (on the classpath),
 * overridable by system properties {@code lightllm.tuning.<backend>.<name>}.
 */
public final class Tuning {
    private static final Properties DEFAULTS = load();

    private Tuning() {
    }

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = Tuning.class.getResourceAsStream("/tuning.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    /** The tuned value of {@code name} for the device's backend, or {@code fallback}. */
    public static int get(Device device, String name, int fallback) {
        String backend = device.id().contains(":") ? device.id().substring(0, device.id().indexOf(':')) : device.id();
        String key = backend + "." + name;
        String v = System.getProperty("lightllm.tuning." + key, DEFAULTS.getProperty(key));
        return v == null ? fallback : Integer.parseInt(v.trim());
    }
}
