package io.lightllm.tornado.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;

/**
 * The defaults in {@code tornado-config/tornado.properties} (on the classpath, inside this
 * module's jar): the order that numbers backends in TornadoVM-style device ids, and the
 * per-backend kernel tuning. One file, so a user finds every default in one place.
 */
final class TornadoConfig {
    /** Where the file is on the classpath. */
    static final String RESOURCE = "/tornado.properties";

    private static final Properties VALUES = load();

    private TornadoConfig() {
    }

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = TornadoConfig.class.getResourceAsStream(RESOURCE)) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    /** The value of {@code key}, or null. */
    static String get(String key) {
        return VALUES.getProperty(key);
    }

    /** {@code device.order}: backend names, index = a TornadoVM id's B. */
    static List<String> deviceOrder() {
        String order = get("device.order");
        if (order == null) {
            throw new IllegalStateException("tornado-config/tornado.properties (" + RESOURCE + " on the classpath) has no device.order");
        }
        return Arrays.stream(order.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    }
}
