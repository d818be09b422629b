package io.lightllm.models.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;

import java.util.Locale;

/**
 * Rotary position embedding settings, one record for both spellings in config.json: the older
 * {@code rope_theta} + {@code rope_scaling} keys and transformers 5's {@code rope_parameters}.
 *
 * @param type                          how positions are scaled
 * @param theta                         base of the inverse frequencies
 * @param factor                        scaling factor (1 for {@link Type#DEFAULT})
 * @param lowFreqFactor                 llama3: wavelengths above original/low are divided by factor
 * @param highFreqFactor                llama3: wavelengths below original/high stay unscaled
 * @param originalMaxPositionEmbeddings llama3/dynamic: the context length the model was trained with (0: not given)
 */
public record RopeConfig(Type type, double theta, double factor, double lowFreqFactor, double highFreqFactor,
                         int originalMaxPositionEmbeddings) {

    public enum Type {
        DEFAULT, LINEAR, DYNAMIC, LLAMA3;

        static Type parse(String name) {
            return switch (name.toLowerCase(Locale.ROOT)) {
                case "default" -> DEFAULT;
                case "linear" -> LINEAR;
                case "dynamic" -> DYNAMIC;
                case "llama3" -> LLAMA3;
                default -> throw new ModelLoadException("unsupported rope type '" + name
                        + "' (supported: default, linear, dynamic, llama3)");
            };
        }
    }

    /** HF's default base (LlamaConfig and most others). */
    public static final double DEFAULT_THETA = 10000.0;

    public static RopeConfig plain(double theta) {
        return new RopeConfig(Type.DEFAULT, theta, 1.0, 1.0, 1.0, 0);
    }

    /**
     * InternLM (v1) writes {@code rotary: {base, type: origin | dynamic, scaling_factor}}; its
     * dynamic NTK rotary is HF Llama's (base grown past max_position_embeddings, scaling_factor
     * defaulting to 1).
     */
    private static RopeConfig internLm(JsonNode rotary) {
        double theta = JsonFields.firstDouble(rotary, "base").orElse(DEFAULT_THETA);
        String type = JsonFields.firstString(rotary, "type").orElse("origin");
        return switch (type) {
            case "origin" -> plain(theta);
            case "dynamic" -> new RopeConfig(Type.DYNAMIC, theta, JsonFields.firstDouble(rotary, "scaling_factor").orElse(1.0), 1.0, 1.0, 0);
            default -> throw new ModelLoadException("unsupported InternLM rotary type '" + type + "' (supported: origin, dynamic)");
        };
    }

    /** Reads the rope settings of a config.json object; a config without any gives the default rope. */
    public static RopeConfig fromJson(JsonNode config) {
        JsonNode params = JsonFields.first(config, "rope_parameters", "rope_scaling").orElse(null);
        double theta = JsonFields.firstDouble(params, "rope_theta")
                .or(() -> JsonFields.firstDouble(config, "rope_theta"))
                .orElse(DEFAULT_THETA);
        if (params == null) {
            return JsonFields.first(config, "rotary").filter(JsonNode::isObject).map(RopeConfig::internLm).orElse(plain(theta));
        }
        if (!params.isObject()) {
            throw new ModelLoadException("rope_parameters/rope_scaling must be an object, found " + params);
        }
        Type type = Type.parse(JsonFields.firstString(params, "rope_type", "type").orElse("default"));
        if (type == Type.DEFAULT) {
            return plain(theta);
        }
        double factor = JsonFields.firstDouble(params, "factor").orElseThrow(
                () -> new ModelLoadException("rope type " + type.name().toLowerCase(Locale.ROOT) + " needs a factor"));
        int original = JsonFields.firstInt(params, "original_max_position_embeddings").orElse(0);
        if (type != Type.LLAMA3) {
            return new RopeConfig(type, theta, factor, 1.0, 1.0, original);
        }
        if (original <= 0) {
            throw new ModelLoadException("rope type llama3 needs original_max_position_embeddings");
        }
        // transformers requires both band edges for llama3 (no defaults to fall back on)
        double low = JsonFields.firstDouble(params, "low_freq_factor").orElseThrow(
                () -> new ModelLoadException("rope type llama3 needs low_freq_factor"));
        double high = JsonFields.firstDouble(params, "high_freq_factor").orElseThrow(
                () -> new ModelLoadException("rope type llama3 needs high_freq_factor"));
        return new RopeConfig(type, theta, factor, low, high, original);
    }
}
