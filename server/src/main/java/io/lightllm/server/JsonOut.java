package io.lightllm.server;

import java.util.LinkedHashMap;
import java.util.Map;

/** Response objects as ordered maps, built inline; unlike Map.of they keep JSON nulls and field order. */
final class JsonOut {
    private JsonOut() {
    }

    static Map<String, Object> obj(Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) {
            throw new IllegalArgumentException("obj takes key, value pairs");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }

    /** OpenAI's error body. */
    static Map<String, Object> error(String message, String type, String param, String code) {
        return obj("error", obj("message", message, "type", type, "param", param, "code", code));
    }

    static Map<String, Object> usage(int promptTokens, int completionTokens) {
        return obj("prompt_tokens", promptTokens, "completion_tokens", completionTokens, "total_tokens", promptTokens + completionTokens);
    }

    /** OpenAI's usage with prompt_tokens_details.cached_tokens: prompt tokens read from the prefix cache. */
    static Map<String, Object> usage(int promptTokens, int completionTokens, int cachedTokens) {
        Map<String, Object> u = new java.util.LinkedHashMap<>(usage(promptTokens, completionTokens));
        u.put("prompt_tokens_details", obj("cached_tokens", cachedTokens));
        return u;
    }
}
