package io.lightllm.models.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.tornado.api.DType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The architecture settings of a model, read from a Hugging Face config.json (or built from GGUF
 * metadata by {@code io.lightllm.models.gguf.GgufModelConfig}), after an architecture's declaration has
 * renamed its keys and added what the family implies ({@code Architectures.readConfig}). Keys this record does not name stay
 * in {@link #raw} for the model classes of particular architectures.
 *
 * @param modelType             config.json's model_type ("llama", "qwen2", ...)
 * @param architectures         the model classes named by config.json
 * @param headDim               per-head width (head_dim, else hidden / heads)
 * @param maxPositionEmbeddings the trained context length; 0 when the config names none (ALiBi models)
 * @param normEps               epsilon of the RMSNorm or LayerNorm layers
 * @param hiddenAct             the MLP activation; empty when the architecture fixes it (bloom)
 * @param bosTokenId            {@link #NO_TOKEN} when not set
 * @param eosTokenIds           eos_token_id, an int or a list in config.json
 * @param dtype                 the dtype the checkpoint declares (torch_dtype / dtype); F32 when absent
 * @param attentionBias         q/k/v projections carry biases (explicit flags, or implied by the family)
 * @param mlpBias               MLP projections carry biases
 * @param partialRotaryFactor   fraction of each head that is rotated (1 = all)
 * @param rotaryInterleaved     rotary pairs are adjacent elements (2i, 2i+1), as in GGUF llama files,
 *                              instead of HF's halves (i, i + rotaryDim/2); see docs/models.md. Not a
 *                              transformers key: GGUF llama files and declarations (ChatGLM2) set it
 * @param slidingWindow         sliding-window attention width; 0 = full attention
 * @param raw                   the whole config.json (or the GGUF metadata as JSON)
 */
public record ModelConfig(
        String modelType,
        List<String> architectures,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int vocabSize,
        int maxPositionEmbeddings,
        double normEps,
        boolean tieWordEmbeddings,
        Optional<String> hiddenAct,
        int bosTokenId,
        List<Integer> eosTokenIds,
        DType dtype,
        boolean attentionBias,
        boolean mlpBias,
        double partialRotaryFactor,
        RopeConfig rope,
        boolean rotaryInterleaved,
        int slidingWindow,
        Optional<Moe> moe,
        Optional<MiniCpmScaling> miniCpm,
        JsonNode raw) {

    public static final int NO_TOKEN = -1;

    /** Mixture-of-experts settings: {@code numLocalExperts} experts, {@code numExpertsPerTok} used per token. */
    public record Moe(int numLocalExperts, int numExpertsPerTok) {
    }

    /**
     * MiniCPM's muP scalings: embeddings times {@code scaleEmb}, residual branches times
     * scaleDepth / sqrt(layers), logits divided by hidden / {@code dimModelBase}.
     */
    public record MiniCpmScaling(double scaleEmb, double scaleDepth, int dimModelBase) {
    }

    public ModelConfig {
        architectures = List.copyOf(architectures);
        eosTokenIds = List.copyOf(eosTokenIds);
        if (hiddenSize <= 0 || intermediateSize <= 0 || numHiddenLayers <= 0 || numAttentionHeads <= 0
                || numKeyValueHeads <= 0 || headDim <= 0 || vocabSize <= 0) {
            throw new ModelLoadException("model sizes must be positive: hidden " + hiddenSize + ", intermediate "
                    + intermediateSize + ", layers " + numHiddenLayers + ", heads " + numAttentionHeads + ", kv heads "
                    + numKeyValueHeads + ", head dim " + headDim + ", vocab " + vocabSize);
        }
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new ModelLoadException(numAttentionHeads + " attention heads cannot be shared by "
                    + numKeyValueHeads + " key/value heads");
        }
    }

    /** Query heads per key/value head. */
    public int kvGroupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** Rotated elements per head (an even number). */
    public int rotaryDim() {
        return ((int) (headDim * partialRotaryFactor)) & ~1;
    }

    /** Reads {@code dir/config.json}. */
    public static ModelConfig load(Path configJson) {
        JsonNode json = JsonFields.read(configJson);
        try {
            return fromJson(json, configJson.toString());
        } catch (ModelLoadException e) {
            if (e.getMessage().contains(configJson.toString())) {
                throw e;
            }
            throw new ModelLoadException(configJson + ": " + e.getMessage(), e);
        }
    }

    /** Parses a config.json object; {@code source} names it in error messages. */
    public static ModelConfig fromJson(JsonNode c, String source) {
        String modelType = JsonFields.firstString(c, "model_type")
                .orElseThrow(() -> new ModelLoadException(source + " has no model_type"));
        List<String> architectures = new ArrayList<>();
        JsonFields.first(c, "architectures").ifPresent(a -> a.forEach(e -> architectures.add(e.asText())));

        int hidden = JsonFields.requireInt(c, source, "hidden_size", "n_embd", "d_model");
        int layers = JsonFields.requireInt(c, source, "num_hidden_layers", "n_layer", "num_layers");
        int heads = JsonFields.requireInt(c, source, "num_attention_heads", "n_head");
        int kvHeads = JsonFields.firstInt(c, "num_key_value_heads")
                .orElse(JsonFields.firstBoolean(c, "multi_query").orElse(false) ? 1 : heads);
        int headDim = JsonFields.firstInt(c, "head_dim").orElseGet(() -> {
            if (hidden % heads != 0) {
                throw new ModelLoadException(source + ": hidden_size " + hidden + " is not a multiple of "
                        + heads + " heads and no head_dim is given");
            }
            return hidden / heads;
        });
        // bloom and gpt_bigcode name no MLP width (or null): their MLPs are 4x wide
        int intermediate = JsonFields.firstInt(c, "intermediate_size", "n_inner", "ffn_dim").orElse(4 * hidden);
        int vocab = JsonFields.requireInt(c, source, "vocab_size");
        int maxPos = JsonFields.firstInt(c, "max_position_embeddings", "n_positions", "seq_length").orElse(0);
        double eps = JsonFields.firstDouble(c, "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_eps")
                .orElseThrow(() -> new ModelLoadException(source
                        + " has no normalisation epsilon (rms_norm_eps, layer_norm_eps or layer_norm_epsilon)"));
        // transformers writes tie_word_embeddings only where it differs from PretrainedConfig's default, true
        boolean tied = JsonFields.firstBoolean(c, "tie_word_embeddings").orElse(true);
        Optional<String> act = JsonFields.firstString(c, "hidden_act", "activation_function", "hidden_activation");
        int bos = JsonFields.firstInt(c, "bos_token_id").orElse(NO_TOKEN);
        List<Integer> eos = JsonFields.intList(c, "eos_token_id");
        DType dtype = JsonFields.firstString(c, "torch_dtype", "dtype").map(name -> parseDtype(name, source)).orElse(DType.F32);
        boolean attnBias = JsonFields.firstBoolean(c, "attention_bias", "use_qkv_bias", "qkv_bias", "bias")
                .orElse(false);
        boolean mlpBias = JsonFields.firstBoolean(c, "mlp_bias").orElse(false);
        double partialRotary = JsonFields.firstDouble(c, "partial_rotary_factor")
                .or(() -> JsonFields.first(c, "rope_parameters").flatMap(p -> JsonFields.firstDouble(p, "partial_rotary_factor")))
                .orElse(1.0);
        RopeConfig rope = RopeConfig.fromJson(c);
        boolean slidingOn = JsonFields.firstBoolean(c, "use_sliding_window").orElse(true);
        int sliding = slidingOn ? JsonFields.firstInt(c, "sliding_window").orElse(0) : 0;
        Optional<Moe> moe = JsonFields.firstInt(c, "num_local_experts", "num_experts")
                .filter(n -> n > 0)
                .map(n -> new Moe(n, JsonFields.requireInt(c, source, "num_experts_per_tok")));
        // missing members take MiniCPMConfig's defaults (all 1)
        Optional<MiniCpmScaling> miniCpm = JsonFields.first(c, "scale_emb", "scale_depth", "dim_model_base").map(any ->
                new MiniCpmScaling(JsonFields.firstDouble(c, "scale_emb").orElse(1.0),
                        JsonFields.firstDouble(c, "scale_depth").orElse(1.0),
                        JsonFields.firstInt(c, "dim_model_base").orElse(1)));
        return new ModelConfig(modelType, architectures, hidden, intermediate, layers, heads, kvHeads, headDim, vocab,
                maxPos, eps, tied, act, bos, eos, dtype, attnBias, mlpBias, partialRotary, rope,
                JsonFields.firstBoolean(c, "rotary_interleaved").orElse(false), sliding, moe,
                miniCpm, c);
    }

    private static DType parseDtype(String name, String source) {
        try {
            return DType.fromName(name);
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException(source + ": unsupported torch_dtype '" + name + "'", e);
        }
    }
}
