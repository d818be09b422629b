package io.lightllm.models.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.NullNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Sampling defaults and special tokens from generation_config.json. Missing keys take
 * transformers' GenerationConfig defaults, so a model without the file behaves as it does there.
 *
 * @param bosTokenId        {@link ModelConfig#NO_TOKEN} when not set
 * @param eosTokenIds       tokens that end generation (an int or a list in the file)
 * @param padTokenId        {@link ModelConfig#NO_TOKEN} when not set
 * @param maxNewTokens      0 when the file does not limit it
 * @param raw               the file's JSON (a null node when there was no file)
 */
public record GenerationConfig(int bosTokenId, List<Integer> eosTokenIds, int padTokenId, boolean doSample,
                               double temperature, double topP, int topK, double repetitionPenalty,
                               int maxNewTokens, JsonNode raw) {

    public GenerationConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /** Reads {@code dir/generation_config.json}, or derives the special tokens from {@code model} when there is none. */
    public static GenerationConfig load(Path dir, ModelConfig model) {
        Path file = dir.resolve("generation_config.json");
        return Files.isRegularFile(file) ? fromJson(JsonFields.read(file), model) : fromModel(model);
    }

    /** Special tokens of {@code model}, transformers' default sampling settings. */
    public static GenerationConfig fromModel(ModelConfig model) {
        return new GenerationConfig(model.bosTokenId(), model.eosTokenIds(), ModelConfig.NO_TOKEN, false,
                1.0, 1.0, 50, 1.0, 0, NullNode.getInstance());
    }

    /** Parses generation_config.json; special tokens it lacks come from {@code model}. */
    public static GenerationConfig fromJson(JsonNode g, ModelConfig model) {
        List<Integer> eos = JsonFields.intList(g, "eos_token_id");
        return new GenerationConfig(
                JsonFields.firstInt(g, "bos_token_id").orElse(model.bosTokenId()),
                eos.isEmpty() ? model.eosTokenIds() : eos,
                JsonFields.firstInt(g, "pad_token_id").orElse(ModelConfig.NO_TOKEN),
                JsonFields.firstBoolean(g, "do_sample").orElse(false),
                JsonFields.firstDouble(g, "temperature").orElse(1.0),
                JsonFields.firstDouble(g, "top_p").orElse(1.0),
                JsonFields.firstInt(g, "top_k").orElse(50),
                JsonFields.firstDouble(g, "repetition_penalty").orElse(1.0),
                JsonFields.firstInt(g, "max_new_tokens").orElse(0),
                g);
    }
}
