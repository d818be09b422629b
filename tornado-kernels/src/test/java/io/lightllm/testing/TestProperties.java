package io.lightllm.testing;

import java.util.HashMap;
import java.util.Map;

/** System properties set for the length of a test body, then put back as they were (set by the run, or absent). */
public final class TestProperties {
    private TestProperties() {
    }

    public static void with(Map<String, String> values, Runnable body) {
        Map<String, String> before = new HashMap<>();
        values.keySet().forEach(k -> before.put(k, System.getProperty(k)));
        values.forEach(System::setProperty);
        try {
            body.run();
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
