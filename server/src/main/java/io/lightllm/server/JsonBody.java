package io.lightllm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * A JSON object from a request, read field by field with type and range checks whose errors
 * name the field (as a dotted path for nested objects, e.g. {@code parameters.top_p}). A field
 * that is absent or JSON null takes its default. Every field read is remembered, so that after
 * parsing {@link #rejectUnread} can refuse a field the server does not implement (vLLM's
 * {@code guided_json}, a misspelled key) by name instead of ignoring it. Text after the JSON
 * value is refused too.
 */
public final class JsonBody {
    public static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final ObjectNode node;
    private final String prefix;
    private final java.util.Set<String> read = new java.util.HashSet<>();
    private final List<JsonBody> children = new ArrayList<>();

    private JsonBody(ObjectNode node, String prefix) {
        this.node = node;
        this.prefix = prefix;
    }

    public static JsonBody parse(byte[] body) {
        if (body.length == 0) {
            throw ApiException.invalid(null, "the request body is empty; send a JSON object");
        }
        JsonNode n;
        try {
            n = MAPPER.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw ApiException.invalid(null, "cannot read the request body: " + e.getMessage());
        }
        if (n == null || !n.isObject()) {
            throw ApiException.invalid(null, "the request body must be a JSON object, got " + (n == null ? "nothing" : n.getNodeType()));
        }
        return new JsonBody((ObjectNode) n, "");
    }

    /** The full name of a field, for messages. */
    public String name(String field) {
        return prefix + field;
    }

    public boolean has(String field) {
        read.add(field);
        JsonNode v = node.get(field);
        return v != null && !v.isNull();
    }

    public JsonNode raw(String field) {
        return has(field) ? node.get(field) : null;
    }

    /** A nested object, or an empty one when absent. */
    public JsonBody object(String field) {
        JsonNode v = raw(field);
        if (v == null) {
            return new JsonBody(MAPPER.createObjectNode(), name(field) + ".");
        }
        if (!v.isObject()) {
            throw wrongType(field, "an object", v);
        }
        JsonBody child = new JsonBody((ObjectNode) v, name(field) + ".");
        children.add(child);
        return child;
    }

    /**
     * A 400 naming the first field that nothing read (here or in a nested object read through
     * {@link #object}), unless {@code accepted} lists it: fields a client may send that change
     * nothing about the output.
     */
    public void rejectUnread(java.util.Set<String> accepted) {
        for (java.util.Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String field = it.next();
            if (!read.contains(field) && !accepted.contains(name(field)) && !node.get(field).isNull()) {
                throw ApiException.unsupported(name(field), "unknown or unsupported field '" + name(field)
                        + "': this server does not implement it (remove it, or see docs/api.md for what is supported)");
            }
        }
        for (JsonBody child : children) {
            child.rejectUnread(accepted);
        }
    }

    public String string(String field, String fallback) {
        JsonNode v = raw(field);
        if (v == null) {
            return fallback;
        }
        if (!v.isTextual()) {
            throw wrongType(field, "a string", v);
        }
        return v.textValue();
    }

    public boolean bool(String field, boolean fallback) {
        JsonNode v = raw(field);
        if (v == null) {
            return fallback;
        }
        if (!v.isBoolean()) {
            throw wrongType(field, "true or false", v);
        }
        return v.booleanValue();
    }

    public long integer(String field, long fallback, long min, long max) {
        JsonNode v = raw(field);
        if (v == null) {
            return fallback;
        }
        // 3.0 is accepted as 3 (JavaScript clients have no integer type); 3.5 is not
        if (!v.isNumber() || !(v.isIntegralNumber() || v.doubleValue() == Math.rint(v.doubleValue()))) {
            throw wrongType(field, "an integer", v);
        }
        if (!v.canConvertToLong() || v.longValue() < min || v.longValue() > max) {
            throw ApiException.invalid(name(field), name(field) + " must be between " + min + " and " + max + ", got " + v);
        }
        return v.longValue();
    }

    public float number(String field, float fallback, double min, double max) {
        JsonNode v = raw(field);
        if (v == null) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw wrongType(field, "a number", v);
        }
        double d = v.doubleValue();
        if (!(d >= min && d <= max)) {
            throw ApiException.invalid(name(field), name(field) + " must be between " + min + " and " + max + ", got " + v);
        }
        return (float) d;
    }

    /** A string or an array of strings (OpenAI's {@code stop}); each non-empty, at most {@code maxCount}. */
    public List<String> strings(String field, int maxCount) {
        JsonNode v = raw(field);
        List<String> out = new ArrayList<>();
        if (v == null) {
            return out;
        }
        if (v.isTextual()) {
            out.add(v.textValue());
        } else if (v.isArray()) {
            for (JsonNode e : v) {
                if (!e.isTextual()) {
                    throw wrongType(field, "a string or an array of strings", v);
                }
                out.add(e.textValue());
            }
        } else {
            throw wrongType(field, "a string or an array of strings", v);
        }
        if (out.size() > maxCount) {
            throw ApiException.invalid(name(field), name(field) + " takes at most " + maxCount + " strings, got " + out.size());
        }
        for (String s : out) {
            if (s.isEmpty()) {
                throw ApiException.invalid(name(field), name(field) + " must not contain empty strings");
            }
        }
        return out;
    }

    private ApiException wrongType(String field, String expected, JsonNode got) {
        return ApiException.invalid(name(field), name(field) + " must be " + expected + ", got " + describe(got));
    }

    private static String describe(JsonNode v) {
        String text = v.toString();
        return v.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + " " + (text.length() > 40 ? text.substring(0, 40) + "..." : text);
    }
}
