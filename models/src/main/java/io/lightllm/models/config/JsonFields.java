package io.lightllm.models.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.lightllm.models.ModelLoadException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Reads the fields of Hugging Face JSON files, where one setting often has several names
 * (hidden_size / n_embd / d_model) and JSON null means "not set".
 */
public final class JsonFields {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private JsonFields() {
    }

    /** Parses a JSON file; a missing or malformed file is a {@link ModelLoadException} naming it. */
    public static JsonNode read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException("file not found: " + file);
        }
        try {
            return MAPPER.readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelLoadException("cannot parse " + file + ": " + e.getMessage(), e);
        }
    }

    public static ObjectMapper mapper() {
        return MAPPER;
    }

    /** The first of {@code names} that is present and not null. */
    public static Optional<JsonNode> first(JsonNode node, String... names) {
        if (node == null || !node.isObject()) {
            return Optional.empty();
        }
        for (String name : names) {
            JsonNode v = node.get(name);
            if (v != null && !v.isNull()) {
                return Optional.of(v);
            }
        }
        return Optional.empty();
    }

    public static Optional<Integer> firstInt(JsonNode node, String... names) {
        return first(node, names).map(v -> {
            if (!v.canConvertToInt() || !(v.isIntegralNumber() || v.asDouble() == Math.rint(v.asDouble()))) {
                throw new ModelLoadException("expected an integer for " + String.join("/", names) + ", found " + v);
            }
            return v.asInt();
        });
    }

    public static Optional<Double> firstDouble(JsonNode node, String... names) {
        return first(node, names).map(v -> {
            if (!v.isNumber()) {
                throw new ModelLoadException("expected a number for " + String.join("/", names) + ", found " + v);
            }
            return v.asDouble();
        });
    }

    public static Optional<Boolean> firstBoolean(JsonNode node, String... names) {
        return first(node, names).map(v -> {
            if (!v.isBoolean()) {
                throw new ModelLoadException("expected true/false for " + String.join("/", names) + ", found " + v);
            }
            return v.asBoolean();
        });
    }

    public static Optional<String> firstString(JsonNode node, String... names) {
        return first(node, names).map(JsonNode::asText);
    }

    /** A required integer; the message names the file and every accepted key. */
    public static int requireInt(JsonNode node, String source, String... names) {
        return firstInt(node, names).orElseThrow(() -> new ModelLoadException(
                source + " has no " + String.join(" / ", names)));
    }

    /** An int or a list of ints (eos_token_id is either); empty when absent. */
    public static List<Integer> intList(JsonNode node, String name) {
        List<Integer> out = new ArrayList<>();
        Optional<JsonNode> v = first(node, name);
        if (v.isEmpty()) {
            return out;
        }
        if (v.get().isArray()) {
            v.get().forEach(e -> out.add(e.asInt()));
        } else if (v.get().canConvertToInt()) {
            out.add(v.get().asInt());
        } else {
            throw new ModelLoadException("expected an integer or a list of integers for " + name + ", found " + v.get());
        }
        return out;
    }

    /** A token given as a string or as an AddedToken object {"content": ...} (tokenizer_config.json). */
    public static Optional<String> tokenText(JsonNode node, String name) {
        return first(node, name).map(v -> v.isObject() ? v.path("content").asText() : v.asText());
    }
}
