package io.lightllm.models.decoder;

import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture.MlpSpec;
import io.lightllm.models.decoder.Architecture.NormKind;
import io.lightllm.models.decoder.Architecture.Qkv;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Every tensor a declaration reads for a config, with its Hugging Face shape: what random
 * weights of that architecture ({@code --load-format dummy}) must provide. Biases are listed where
 * the config says the projections have them.
 */
public final class TensorShapes {
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Architecture a;
    private final ModelConfig c;

    private TensorShapes(Architecture a, ModelConfig c) {
        this.a = a;
        this.c = c;
    }

    public static Map<String, long[]> of(Architecture a, ModelConfig c) {
        return new TensorShapes(a, c).all();
    }

    private Map<String, long[]> all() {
        long h = c.hiddenSize(), q = (long) c.numAttentionHeads() * c.headDim(), kv = (long) c.numKeyValueHeads() * c.headDim();
        long inter = c.intermediateSize(), vocab = c.vocabSize();
        put(a.embeddings().tokens() + ".weight", vocab, h);
        if (a.embeddings().positions() != null) {
            put(a.embeddings().positions() + ".weight", c.maxPositionEmbeddings(), h);
        }
        if (a.embeddings().norm() != null) {
            norm(a.embeddings().norm());
        }
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = a.layerPrefix(l);
            norm(p + a.inputNorm());
            norm(p + a.postAttentionNorm());
            boolean bias = c.attentionBias();
            switch (a.attention().qkv()) {
                case Qkv.Separate s -> {
                    linear(p + s.q(), q, h, bias);
                    linear(p + s.k(), kv, h, bias);
                    linear(p + s.v(), kv, h, bias);
                }
                case Qkv.Stacked s -> linear(p + s.name(), q + 2 * kv, h, bias);
                case Qkv.PerHead s -> linear(p + s.name(), 3 * q, h, bias);
            }
            linear(p + a.attention().o(), h, q, c.mlpBias()); // the families with MLP biases (BLOOM, StarCoder) have one here too
            if (a.attention().qNorm() != null) {
                put(p + a.attention().qNorm() + ".weight", c.headDim());
                put(p + a.attention().kNorm() + ".weight", c.headDim());
            }
            boolean mlpBias = c.mlpBias();
            switch (a.mlp()) {
                case MlpSpec.Gated g -> {
                    linear(p + g.gate(), inter, h, mlpBias);
                    linear(p + g.up(), inter, h, mlpBias);
                    linear(p + g.down(), h, inter, mlpBias);
                }
                case MlpSpec.GatedStacked g -> {
                    linear(p + g.gateUp(), 2 * inter, h, mlpBias);
                    linear(p + g.down(), h, inter, mlpBias);
                }
                case MlpSpec.Plain m -> {
                    linear(p + m.fc(), inter, h, mlpBias);
                    linear(p + m.proj(), h, inter, mlpBias);
                }
                case MlpSpec.Experts e -> {
                    int n = c.moe().orElseThrow().numLocalExperts();
                    linear(p + e.router(), n, h, false);
                    for (int x = 0; x < n; x++) {
                        String expert = p + e.experts().formatted(x);
                        linear(expert + e.gate(), inter, h, false);
                        linear(expert + e.up(), inter, h, false);
                        linear(expert + e.down(), h, inter, false);
                    }
                }
            }
        }
        norm(a.finalNorm());
        if (!c.tieWordEmbeddings()) {
            put(a.lmHead() + ".weight", vocab, h);
        }
        if (a.vision() != null && a.vision().kind() == Architecture.VisionSpec.Tower.QWEN_VL) {
            qwenVisual(a.vision().tower() + ".", c.raw().path("visual"));
        } else if (a.vision() != null) {
            vision(a.vision(), c.raw().path("vision_config"));
        }
        return shapes;
    }

    /** A CLIP vision tower (every layer, as checkpoints hold them) and the two-layer projector into the model's width. */
    private void vision(Architecture.VisionSpec v, com.fasterxml.jackson.databind.JsonNode vc) {
        long h = vc.path("hidden_size").asInt(1024), inter = vc.path("intermediate_size").asInt(4096);
        long patch = vc.path("patch_size").asInt(14), side = vc.path("image_size").asInt(336) / patch;
        String t = v.tower() + ".";
        put(t + "embeddings.patch_embedding.weight", h, 3, patch, patch);
        put(t + "embeddings.class_embedding", h);
        put(t + "embeddings.position_embedding.weight", side * side + 1, h);
        for (String n : new String[] {"pre_layrnorm", "post_layernorm"}) {
            put(t + n + ".weight", h);
            put(t + n + ".bias", h);
        }
        for (int l = 0; l < vc.path("num_hidden_layers").asInt(24); l++) {
            String p = t + "encoder.layers." + l + ".";
            for (String n : new String[] {"layer_norm1", "layer_norm2"}) {
                put(p + n + ".weight", h);
                put(p + n + ".bias", h);
            }
            for (String n : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                linear(p + "self_attn." + n, h, h, true);
            }
            linear(p + "mlp.fc1", inter, h, true);
            linear(p + "mlp.fc2", h, inter, true);
        }
        linear(v.projector() + ".linear_1", c.hiddenSize(), h, true);
        linear(v.projector() + ".linear_2", c.hiddenSize(), c.hiddenSize(), true);
    }

    /** Qwen-VL's ViT (every layer) and Resampler, as visual.py names them. */
    private void qwenVisual(String t, com.fasterxml.jackson.databind.JsonNode v) {
        long w = v.path("width").asInt(1664), mlp = (long) (w * v.path("mlp_ratio").asDouble(4.9231)), patch = v.path("patch_size").asInt(14);
        long out = v.path("output_dim").asInt(4096), queries = v.path("n_queries").asInt(256);
        put(t + "conv1.weight", w, 3, patch, patch);
        put(t + "positional_embedding", 256, w);
        for (String n : new String[] {"ln_pre", "attn_pool.ln_q", "attn_pool.ln_kv"}) {
            put(t + n + ".weight", n.startsWith("ln_pre") ? w : out);
            put(t + n + ".bias", n.startsWith("ln_pre") ? w : out);
        }
        for (int l = 0; l < v.path("layers").asInt(48); l++) {
            String p = t + "transformer.resblocks." + l + ".";
            for (String n : new String[] {"ln_1", "ln_2"}) {
                put(p + n + ".weight", w);
                put(p + n + ".bias", w);
            }
            linear(p + "attn.in_proj", 3 * w, w, true);
            linear(p + "attn.out_proj", w, w, true);
            linear(p + "mlp.c_fc", mlp, w, true);
            linear(p + "mlp.c_proj", w, mlp, true);
        }
        String a = t + "attn_pool.";
        put(a + "pos_embed", queries, out);
        put(a + "query", queries, out);
        if (w != out) {
            put(a + "kv_proj.weight", out, w);
        }
        put(a + "attn.in_proj_weight", 3 * out, out);
        put(a + "attn.in_proj_bias", 3 * out);
        linear(a + "attn.out_proj", out, out, true);
        put(t + "ln_post.weight", out);
        put(t + "ln_post.bias", out);
        put(t + "proj", out, out);
    }

    private void norm(String name) {
        put(name + ".weight", c.hiddenSize());
        if (a.norm() == NormKind.LAYER) {
            put(name + ".bias", c.hiddenSize());
        }
    }

    private void linear(String name, long out, long in, boolean bias) {
        put(name + ".weight", out, in);
        if (bias) {
            put(name + ".bias", out);
        }
    }

    private void put(String name, long... shape) {
        shapes.put(name, shape);
    }
}
