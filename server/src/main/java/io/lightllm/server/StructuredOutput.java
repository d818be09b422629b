package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Structured output requests in every API's spelling, as the one regular expression the engine
 * constrains the text to ({@code SamplingParams.regex}): OpenAI's {@code response_format}
 * ({@code json_object}, {@code json_schema}), vLLM's {@code guided_json}, {@code guided_regex},
 * {@code guided_choice}, LightLLM's {@code regular_constraint}. JSON is compact (no whitespace
 * between tokens), as outlines writes it when whitespace is not asked for.
 */
final class StructuredOutput {
    private StructuredOutput() {
    }

    /** A JSON string: any character but a quote, backslash or control, or an escape. */
    static final String STRING_CHAR = "([^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt])";
    static final String STRING = "\"" + STRING_CHAR + "*\"";
    /** Integers of up to 16 digits (what a double holds exactly), so a generation cannot run on forever. */
    static final String INTEGER = "-?(0|[1-9][0-9]{0,15})";
    static final String NUMBER = INTEGER + "(\\.[0-9]{1,16})?([eE][+-]?[0-9]{1,3})?";
    private static final String SCALAR = "(" + STRING + "|" + NUMBER + "|true|false|null)";
    /** Any JSON value nested at most this deep (json_object, and schemas that say nothing of a value). */
    private static final int DEPTH = 3;

    /** The expression for the request's structured output, or null when it asks for none; a 400 for two at once. */
    static String regex(JsonBody b) {
        List<String> asked = new ArrayList<>();
        String regex = null;
        JsonBody format = b.object("response_format");
        String type = format.string("type", "text");
        switch (type) {
            case "text" -> { }
            case "json_object" -> {
                asked.add("response_format");
                regex = anyObject(DEPTH);
            }
            case "json_schema" -> {
                asked.add("response_format");
                JsonBody spec = format.object("json_schema");
                JsonNode schema = spec.raw("schema");
                spec.string("name", null); // name, strict and description change nothing here
                spec.bool("strict", false);
                spec.string("description", null);
                if (schema == null) {
                    throw ApiException.invalid("response_format.json_schema.schema", "json_schema needs a schema");
                }
                regex = schema(schema, "response_format.json_schema.schema");
            }
            default -> throw ApiException.unsupported("response_format.type", "response_format type '" + type
                    + "' is not implemented (text, json_object, json_schema)");
        }
        if (b.has("guided_json")) {
            asked.add("guided_json");
            JsonNode g = b.raw("guided_json");
            if (g.isTextual()) {
                try {
                    g = JsonBody.MAPPER.readTree(g.textValue());
                } catch (Exception e) {
                    throw ApiException.invalid("guided_json", "guided_json is not a JSON schema: " + e.getMessage());
                }
            }
            regex = schema(g, "guided_json");
        }
        for (String field : new String[] {"guided_regex", "regular_constraint"}) {
            if (b.has(field)) {
                asked.add(field);
                regex = b.string(field, null);
            }
        }
        if (b.has("guided_choice")) {
            asked.add("guided_choice");
            List<String> choices = b.strings("guided_choice", 1000);
            if (choices.isEmpty()) {
                throw ApiException.invalid("guided_choice", "guided_choice needs at least one choice");
            }
            regex = String.join("|", choices.stream().map(Pattern::quote).toList());
        }
        if (asked.size() > 1) {
            throw ApiException.invalid(asked.get(1), "ask for one structured output at a time, not " + String.join(" and ", asked));
        }
        if (regex != null) {
            try {
                Pattern.compile(regex);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw ApiException.invalid(b.name(asked.getFirst()), b.name(asked.getFirst()) + " is not a valid regular expression: "
                        + e.getDescription());
            }
        }
        return regex;
    }

    /** The expression of a JSON schema's values (the subset listed in docs/api.md); a 400 naming what is not supported. */
    static String schema(JsonNode s, String field) {
        if (s.isBoolean()) {
            return s.booleanValue() ? anyValue(DEPTH) : "(?!)";
        }
        if (!s.isObject()) {
            throw ApiException.invalid(field, field + ": a JSON schema must be an object");
        }
        for (String unsupported : new String[] {"$ref", "patternProperties", "allOf", "not", "if", "dependentSchemas"}) {
            if (s.has(unsupported)) {
                throw ApiException.unsupported(field, field + ": JSON schema keyword '" + unsupported + "' is not supported for structured output");
            }
        }
        if (s.has("const")) {
            return Pattern.quote(s.get("const").toString());
        }
        if (s.has("enum")) {
            List<String> options = new ArrayList<>();
            s.get("enum").forEach(v -> options.add(Pattern.quote(v.toString())));
            return "(" + String.join("|", options) + ")";
        }
        for (String alternatives : new String[] {"anyOf", "oneOf"}) {
            if (s.has(alternatives)) {
                List<String> options = new ArrayList<>();
                int i = 0;
                for (JsonNode option : s.get(alternatives)) {
                    options.add(schema(option, field + "." + alternatives + "[" + i++ + "]"));
                }
                return "(" + String.join("|", options) + ")";
            }
        }
        JsonNode type = s.get("type");
        if (type == null) {
            return anyValue(DEPTH);
        }
        if (type.isArray()) {
            List<String> options = new ArrayList<>();
            for (JsonNode t : type) {
                options.add(schema(((com.fasterxml.jackson.databind.node.ObjectNode) s.deepCopy()).put("type", t.asText()), field));
            }
            return "(" + String.join("|", options) + ")";
        }
        return switch (type.asText()) {
            case "string" -> string(s);
            case "integer" -> s.path("minimum").asDouble(-1) >= 0 ? "(0|[1-9][0-9]{0,15})" : INTEGER;
            case "number" -> NUMBER;
            case "boolean" -> "(true|false)";
            case "null" -> "null";
            case "array" -> array(s, field);
            case "object" -> object(s, field);
            default -> throw ApiException.invalid(field, field + ": unknown JSON schema type '" + type.asText() + "'");
        };
    }

    private static String string(JsonNode s) {
        if (s.has("pattern")) {
            String p = s.get("pattern").asText();
            // a pattern is anchored as a whole string value; its characters are taken as they are
            return "\"" + p.replaceFirst("^\\^", "").replaceFirst("\\$$", "") + "\"";
        }
        int min = s.path("minLength").asInt(0);
        return s.has("maxLength") ? "\"" + STRING_CHAR + "{" + min + "," + s.get("maxLength").asInt() + "}\""
                : "\"" + STRING_CHAR + "{" + min + ",}\"";
    }

    private static String array(JsonNode s, String field) {
        String item = s.has("items") ? schema(s.get("items"), field + ".items") : anyValue(DEPTH - 1);
        int min = s.path("minItems").asInt(0);
        int max = s.has("maxItems") ? s.get("maxItems").asInt() : -1;
        if (max == 0) {
            return "\\[\\]";
        }
        String more = "(," + item + ")" + (max < 0 ? "{" + Math.max(0, min - 1) + ",}" : "{" + Math.max(0, min - 1) + "," + (max - 1) + "}");
        String some = item + more;
        return "\\[" + (min == 0 ? "(" + some + ")?" : some) + "\\]";
    }

    /**
     * An object with every property of the schema, in its order: valid whether a property is
     * required or optional (an optional one may be present), and a single shape to generate.
     * Without properties: any object.
     */
    private static String object(JsonNode s, String field) {
        JsonNode props = s.get("properties");
        if (props == null || props.isEmpty()) {
            return anyObject(DEPTH - 1);
        }
        List<String> members = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = props.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> p = it.next();
            members.add(Pattern.quote(JsonBody.MAPPER.valueToTree(p.getKey()).toString()) + ":"
                    + schema(p.getValue(), field + ".properties." + p.getKey()));
        }
        return "\\{" + String.join(",", members) + "\\}";
    }

    private static String anyValue(int depth) {
        if (depth <= 0) {
            return SCALAR;
        }
        return "(" + SCALAR + "|" + anyObject(depth - 1) + "|" + anyArray(depth - 1) + ")";
    }

    private static String anyObject(int depth) {
        String member = STRING + ":" + anyValue(depth);
        return "\\{(" + member + "(," + member + ")*)?\\}";
    }

    private static String anyArray(int depth) {
        String v = anyValue(depth);
        return "\\[(" + v + "(," + v + ")*)?\\]";
    }
}
