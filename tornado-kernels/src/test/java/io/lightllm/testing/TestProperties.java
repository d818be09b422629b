package io.lightllm.testing;

import java.util.HashMap;
import java.util.Map;

/** System properties set for the length of a test body, then put back as they were (set by the run, or absent). */
public final class TestProperties {
    private TestProperties() {
    }

    public static void with(Map<String, String> values, Runnable body) {
        supply(values, () -> {
            body.run();
            return null;
        });
    }

    /** {@link #with} for a body that returns a value. */
    public static <T> T supply(Map<String, String> values, java.util.function.Supplier<T> body) {
        Map<String, String> before = new HashMap<>();
        values.keySet().forEach(k -> before.put(k, System.getProperty(k)));
        values.forEach(System::setProperty);
        try {
            return body.get();
        } finally {
            before.forEach((k, v) -> {
                if (v == null) {
                    System.clearProperty(k);
                } else {
                    System.setProperty(k, v);
                }
            });
        }
    }
}
