package io.lightllm.models.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture.AttentionSpec;
import io.lightllm.models.decoder.Architecture.ConfigKeys;
import io.lightllm.models.decoder.Architecture.Embeddings;
import io.lightllm.models.decoder.Architecture.MlpSpec;
import io.lightllm.models.decoder.Architecture.NormKind;
import io.lightllm.models.decoder.Architecture.Positions;
import io.lightllm.models.decoder.Architecture.Qkv;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Every architecture the engine runs, as declarations over the shared blocks, and the one place
 * that maps a checkpoint to its declaration (loaders, the CLI's messages and docs/models.md read
 * it). Adding an architecture is adding a declaration to {@link #ALL}; see docs/models.md.
 */
public final class Architectures {
    private Architectures() {
    }

    // ---- the Llama family: Llama's layers, differing in names, biases and scalings --------------

    public static final Architecture LLAMA = Architecture.builder("llama", "LLaMA 1/2/3")
            .hfClasses("LlamaForCausalLM").gguf("llama")
            .embeddings(Embeddings.tokens("model.embed_tokens"))
            .layers("model.layers.%d.", "input_layernorm", "post_attention_layernorm")
            .attention(new AttentionSpec(new Qkv.Separate("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                    "self_attn.o_proj", Positions.ROTARY))
            .mlp(new MlpSpec.Gated("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"))
            .head("model.norm", "lm_head")
            .build();

    /** Sliding-window attention comes from config.json's sliding_window. */
    public static final Architecture MISTRAL = LLAMA.toBuilder().modelType("mistral", "Mistral")
            .hfClasses("MistralForCausalLM").gguf(null).build();

    public static final Architecture QWEN2 = LLAMA.toBuilder().modelType("qwen2", "Qwen1.5 / Qwen2 / Qwen2.5")
            .hfClasses("Qwen2ForCausalLM").gguf("qwen2")
            .configKeys(ConfigKeys.implied("attention_bias", true)).build();

    /** Qwen3: per-head RMSNorms of q and k before the rotary embedding. */
    public static final Architecture QWEN3 = LLAMA.toBuilder().modelType("qwen3", "Qwen3")
            .hfClasses("Qwen3ForCausalLM").gguf("qwen3")
            .attention(new AttentionSpec(LLAMA.attention().qkv(), "self_attn.o_proj", Positions.ROTARY,
                    "self_attn.q_norm", "self_attn.k_norm")).build();

    /** The original Yi checkpoints (later ones say "llama"): norms named ln1 / ln2. */
    public static final Architecture YI = LLAMA.toBuilder().modelType("Yi", "Yi", "yi")
            .hfClasses("YiForCausalLM").gguf(null)
            .layers("model.layers.%d.", "ln1", "ln2").build();

    /** InternLM: Llama with q, k, v and o biases (config "bias": true). */
    public static final Architecture INTERNLM = LLAMA.toBuilder().modelType("internlm", "InternLM")
            .hfClasses("InternLMForCausalLM").gguf(null).build();

    /** MiniCPM: Llama with muP scalings, read from config.json (scale_emb, scale_depth, dim_model_base). */
    public static final Architecture MINICPM = LLAMA.toBuilder().modelType("minicpm", "MiniCPM")
            .hfClasses("MiniCPMForCausalLM").gguf(null).build();

    /** Baichuan-7B: q, k and v stacked in W_pack. */
    public static final Architecture BAICHUAN_7B = LLAMA.toBuilder().modelType("baichuan", "Baichuan-7B")
            .hfClasses("BaiChuanForCausalLM").gguf(null)
            .when(c -> !c.architectures().contains("BaichuanForCausalLM"))
            .attention(new AttentionSpec(new Qkv.Stacked("self_attn.W_pack"), "self_attn.o_proj", Positions.ROTARY)).build();

    /** Baichuan2-7B: Baichuan-7B with the head rows normalised (NormHead). */
    public static final Architecture BAICHUAN2_7B = BAICHUAN_7B.toBuilder().modelType("baichuan", "Baichuan2-7B")
            .hfClasses("BaichuanForCausalLM").normalizedHead()
            .when(c -> c.architectures().contains("BaichuanForCausalLM") && c.hiddenSize() != 5120).build();

    /** Baichuan-13B: W_pack and ALiBi instead of rotary (its 64,000-token vocabulary tells it from Baichuan2-13B). */
    public static final Architecture BAICHUAN_13B = BAICHUAN_7B.toBuilder().modelType("baichuan", "Baichuan-13B")
            .hfClasses("BaichuanForCausalLM")
            .when(c -> c.architectures().contains("BaichuanForCausalLM") && c.hiddenSize() == 5120 && c.vocabSize() == 64000)
            .attention(BAICHUAN_7B.attention().withPositions(Positions.ALIBI)).build();

    public static final Architecture BAICHUAN2_13B = BAICHUAN_13B.toBuilder().modelType("baichuan", "Baichuan2-13B")
            .when(c -> c.architectures().contains("BaichuanForCausalLM") && c.hiddenSize() == 5120 && c.vocabSize() != 64000)
            .normalizedHead().build();

    // ---- other layers: composed from the other blocks --------------------------------------------

    /** StableLM: LayerNorms, rotary on part of each head (partial_rotary_factor), q/k/v biases. */
    public static final Architecture STABLELM = LLAMA.toBuilder().modelType("stablelm", "StableLM")
            .hfClasses("StableLmForCausalLM").gguf("stablelm").norm(NormKind.LAYER)
            .when(c -> !JsonFields.firstBoolean(c.raw(), "use_parallel_residual").orElse(false)
                    && !JsonFields.firstBoolean(c.raw(), "qk_layernorm").orElse(false)).build();

    /** Mixtral: Llama's attention, a top-k mixture of gated experts as the MLP. */
    public static final Architecture MIXTRAL = LLAMA.toBuilder().modelType("mixtral", "Mixtral")
            .hfClasses("MixtralForCausalLM").gguf("llama")
            .mlp(new MlpSpec.Experts("block_sparse_moe.gate", "block_sparse_moe.experts.%d.", "w1", "w3", "w2")).build();

    /** BLOOM: LayerNorms (one after the embedding too), ALiBi, q/k/v interleaved per head, a GELU MLP, biases everywhere. */
    public static final Architecture BLOOM = Architecture.builder("bloom", "BLOOM")
            .hfClasses("BloomForCausalLM").gguf("bloom")
            .configKeys(ConfigKeys.implied("attention_bias", true, "mlp_bias", true, "hidden_act", "gelu_pytorch_tanh",
                    "max_position_embeddings", 2048))
            .norm(NormKind.LAYER)
            .embeddings(new Embeddings("transformer.word_embeddings", null, "transformer.word_embeddings_layernorm"))
            .layers("transformer.h.%d.", "input_layernorm", "post_attention_layernorm")
            .attention(new AttentionSpec(new Qkv.PerHead("self_attention.query_key_value"), "self_attention.dense", Positions.ALIBI))
            .mlp(new MlpSpec.Plain("mlp.dense_h_to_4h", "mlp.dense_4h_to_h"))
            .head("transformer.ln_f", "lm_head")
            .build();

    /** StarCoder / SantaCoder (GPTBigCode, multi-query): learned positions, LayerNorms, q/k/v stacked in c_attn, a GELU MLP. */
    public static final Architecture STARCODER = Architecture.builder("gpt_bigcode", "StarCoder (GPTBigCode)")
            .hfClasses("GPTBigCodeForCausalLM").gguf("starcoder")
            .when(c -> c.numKeyValueHeads() == 1)
            .configKeys(ConfigKeys.implied("attention_bias", true, "mlp_bias", true))
            .norm(NormKind.LAYER)
            .embeddings(new Embeddings("transformer.wte", "transformer.wpe", null))
            .layers("transformer.h.%d.", "ln_1", "ln_2")
            .attention(new AttentionSpec(new Qkv.Stacked("attn.c_attn"), "attn.c_proj", Positions.LEARNED))
            .mlp(new MlpSpec.Plain("mlp.c_fc", "mlp.c_proj"))
            .head("transformer.ln_f", "lm_head")
            .build();

    /**
     * Qwen-7B / 14B (v1, remote code): q/k/v stacked in c_attn (always with a bias), w2 is the gate and
     * w1 the up projection, and config.json's intermediate_size is twice the MLP width. Its dynamic
     * NTK and logn attention change nothing up to seq_length, the context served.
     */
    public static final Architecture QWEN = Architecture.builder("qwen", "Qwen (v1)")
            .hfClasses("QWenLMHeadModel").gguf("qwen")
            .configKeys(ConfigKeys.renamed("kv_channels", "head_dim", "rotary_emb_base", "rope_theta", "rotary_pct", "partial_rotary_factor",
                            "ffn_hidden_size", "intermediate_size", "padded_vocab_size", "vocab_size", "seq_length", "max_position_embeddings")
                    .imply("attention_bias", true)
                    .adjust(c -> c.put("intermediate_size", c.path("intermediate_size").asInt() / 2)))
            .embeddings(Embeddings.tokens("transformer.wte"))
            .layers("transformer.h.%d.", "ln_1", "ln_2")
            .attention(new AttentionSpec(new Qkv.Stacked("attn.c_attn"), "attn.c_proj", Positions.ROTARY))
            .mlp(new MlpSpec.Gated("mlp.w2", "mlp.w1", "mlp.c_proj"))
            .head("transformer.ln_f", "lm_head")
            .build();

    /**
     * Qwen-VL / Qwen-VL-Chat (remote code): Qwen v1 whose config.json has a {@code visual} section, the vision
     * module (ViT-bigG and a cross-attention Resampler to 256 queries) under transformer.visual. Read before
     * {@link #QWEN}, which takes the same model_type and class.
     */
    public static final Architecture QWEN_VL = QWEN.toBuilder().modelType("qwen", "Qwen-VL").gguf(null)
            .when(c -> c.raw().path("visual").isObject())
            .vision(new Architecture.VisionSpec(Architecture.VisionSpec.Tower.QWEN_VL, "transformer.visual", null)).build();

    /**
     * ChatGLM2 / ChatGLM3-6B (remote code): multi-query groups, q/k/v stacked with a bias, rotary on
     * the first half of each head in interleaved pairs, gate and up stacked in dense_h_to_4h.
     */
    public static final Architecture CHATGLM2 = Architecture.builder("chatglm", "ChatGLM2 / ChatGLM3")
            .hfClasses("ChatGLMModel")
            .when(c -> c.raw().has("ffn_hidden_size") // ChatGLM-6B (v1) is another architecture
                    && JsonFields.firstBoolean(c.raw(), "rmsnorm").orElse(true)
                    && JsonFields.firstDouble(c.raw(), "rope_ratio").orElse(1.0) == 1.0
                    && !JsonFields.firstBoolean(c.raw(), "apply_residual_connection_post_layernorm").orElse(false))
            .configKeys(ConfigKeys.renamed("num_layers", "num_hidden_layers", "padded_vocab_size", "vocab_size",
                            "ffn_hidden_size", "intermediate_size", "kv_channels", "head_dim", "layernorm_epsilon", "rms_norm_eps",
                            "seq_length", "max_position_embeddings", "add_qkv_bias", "attention_bias")
                    .imply("partial_rotary_factor", 0.5, "rotary_interleaved", true, "tie_word_embeddings", false)
                    .adjust(c -> c.path("multi_query_attention").asBoolean(false)
                            ? c.put("num_key_value_heads", c.path("multi_query_group_num").asInt()) : c))
            .embeddings(Embeddings.tokens("transformer.embedding.word_embeddings"))
            .layers("transformer.encoder.layers.%d.", "input_layernorm", "post_attention_layernorm")
            .attention(new AttentionSpec(new Qkv.Stacked("self_attention.query_key_value"), "self_attention.dense", Positions.ROTARY))
            .mlp(new MlpSpec.GatedStacked("mlp.dense_h_to_4h", "mlp.dense_4h_to_h"))
            .head("transformer.encoder.final_layernorm", "transformer.output_layer")
            .build();

    /**
     * Llava-1.5 (LlavaForConditionalGeneration, llava-hf's checkpoints): a Llama under language_model. whose
     * image tokens read a CLIP vision tower's features through a two-layer projector. config.json nests the
     * Llama's keys in text_config; they are read as the model's own.
     */
    public static final Architecture LLAVA = LLAMA.toBuilder().modelType("llava", "Llava-1.5")
            .hfClasses("LlavaForConditionalGeneration").gguf(null)
            .configKeys(ConfigKeys.NONE.adjust(Architectures::textConfigAsOwn))
            .embeddings(Embeddings.tokens("language_model.model.embed_tokens"))
            .layers("language_model.model.layers.%d.", "input_layernorm", "post_attention_layernorm")
            .head("language_model.model.norm", "language_model.lm_head")
            .vision(new Architecture.VisionSpec("vision_tower.vision_model", "multi_modal_projector")).build();

    /** A multimodal config's text_config keys copied up (where the top level lacks them), so the language model reads them as its own. */
    private static ObjectNode textConfigAsOwn(ObjectNode c) {
        JsonNode text = c.path("text_config");
        text.fieldNames().forEachRemaining(k -> {
            if (!c.has(k) || c.get(k).isNull()) {
                c.set(k, text.get(k));
            }
        });
        return c;
    }

    /** Every declaration, in lookup order (the first whose model_type and condition match a checkpoint reads it). */
    public static final List<Architecture> ALL = List.of(LLAMA, MISTRAL, QWEN2, QWEN3, YI, INTERNLM, MINICPM, BAICHUAN_7B, BAICHUAN2_7B,
            BAICHUAN_13B, BAICHUAN2_13B, STABLELM, MIXTRAL, BLOOM, STARCODER, QWEN_VL, QWEN, CHATGLM2, LLAVA);

    /** The declaration that reads {@code c}, or a {@link ModelLoadException} saying what is supported. */
    public static Architecture of(ModelConfig c) {
        return ALL.stream().filter(a -> a.reads(c.modelType(), c)).findFirst().orElseThrow(() -> {
            boolean known = ALL.stream().anyMatch(a -> a.reads(c.modelType(), null));
            return new ModelLoadException(known
                    ? "this variant of '" + c.modelType() + "' (" + String.join(", ", c.architectures()) + ", " + c.numKeyValueHeads()
                            + " kv heads, hidden " + c.hiddenSize() + ") is not supported; supported: "
                            + ALL.stream().filter(a -> a.reads(c.modelType(), null)).map(Architecture::family).collect(Collectors.joining(", "))
                    : unsupported(c.modelType(), "config"));
        });
    }

    /** The config of a checkpoint: its config.json with the declaration's renamed and implied keys applied. */
    public static ModelConfig readConfig(Path configJson) {
        JsonNode json = JsonFields.read(configJson);
        try {
            return readConfig(json, configJson.toString());
        } catch (ModelLoadException e) {
            throw e.getMessage().contains(configJson.toString()) ? e : new ModelLoadException(configJson + ": " + e.getMessage(), e);
        }
    }

    /** {@link #readConfig(Path)} of a parsed config.json; {@code source} names it in messages. */
    public static ModelConfig readConfig(JsonNode json, String source) {
        String type = JsonFields.firstString(json, "model_type").orElseThrow(() -> new ModelLoadException(source + " has no model_type"));
        Optional<Architecture> any = ALL.stream().filter(a -> a.reads(type, null)).findFirst();
        if (any.isEmpty()) {
            throw new ModelLoadException(unsupported(type, source));
        }
        // the variants of one model_type share their config keys
        ConfigKeys keys = any.get().configKeys();
        ObjectNode adapted = json.deepCopy();
        keys.renamed().forEach((from, to) -> {
            if (adapted.has(from) && !adapted.has(to)) {
                adapted.set(to, adapted.get(from));
            }
        });
        keys.implied().forEach((key, value) -> {
            if (!adapted.hasNonNull(key)) {
                adapted.set(key, JsonFields.mapper().valueToTree(value));
            }
        });
        return ModelConfig.fromJson(keys.adjust().apply(adapted), source);
    }

    /** The declaration of a GGUF file's general.architecture; llama.cpp writes Mixtral as "llama" with experts. */
    public static Optional<Architecture> ofGguf(String ggufArchitecture, boolean experts) {
        return ALL.stream().filter(a -> ggufArchitecture.equals(a.ggufName()) && experts == a.mlp() instanceof MlpSpec.Experts).findFirst();
    }

    /** GGUF architectures read, for messages. */
    public static String ggufNames() {
        return ALL.stream().map(Architecture::ggufName).filter(n -> n != null).distinct().sorted().collect(Collectors.joining(", "));
    }

    /** Every model_type read (with its other spellings), sorted. */
    public static TreeSet<String> modelTypes() {
        TreeSet<String> types = new TreeSet<>();
        for (Architecture a : ALL) {
            types.add(a.modelType());
            types.addAll(a.aliases());
        }
        return types;
    }

    /** Families by model_type, for messages and docs. */
    public static Map<String, String> families() {
        return ALL.stream().collect(Collectors.groupingBy(Architecture::modelType, java.util.TreeMap::new,
                Collectors.mapping(Architecture::family, Collectors.joining(", "))));
    }

    private static String unsupported(String type, String source) {
        return "unsupported architecture '" + type + "' (model_type in " + source + "); supported: " + String.join(", ", modelTypes());
    }
}
