package io.lightllm.models.gguf;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.config.RopeConfig;
import io.lightllm.models.decoder.Architecture;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.tornado.api.DType;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Builds a {@link ModelConfig} from the {@code <architecture>.*} metadata of a GGUF file (llama, qwen, qwen2, qwen3,
 * stablelm, bloom, starcoder; a llama file with experts is Mixtral).
 *
 * <p>Rotary layout: llama.cpp's convert_hf_to_gguf.py permutes the rows of each head of q_proj and
 * k_proj from HF's half-split rotary layout (element i pairs with i + d/2) to the interleaved one
 * (2i pairs with 2i + 1). We keep the file's rows and set {@link ModelConfig#rotaryInterleaved()}
 * instead of un-permuting: un-permuting would copy Q and K out of the mapping (no longer zero-copy,
 * and re-blocking for Q8_0), while a forward pass that rotates interleaved pairs computes the same
 * attention, because q and k are permuted alike and q.k is invariant under a common permutation.
 */
public final class GgufModelConfig {

    private GgufModelConfig() {
    }

    /** The declaration of a file's general.architecture (a llama-format MoE is Mixtral's); Llama's when the file names none. */
    public static Architecture architecture(GgufFile f) {
        if (!f.has("general.architecture")) {
            return Architectures.LLAMA;
        }
        String arch = f.getString("general.architecture");
        boolean moe = f.getInt(arch + ".expert_count", 0) > 0;
        return Architectures.ofGguf(arch, moe).orElseThrow(() -> new ModelLoadException("unsupported GGUF architecture '" + arch + "'"
                + (moe ? " with experts" : "") + " in " + f.path() + " (supported: " + Architectures.ggufNames() + ")"));
    }

    /** Attention heads of the file's model (0 when it names none). */
    static int heads(GgufFile f) {
        return f.has("general.architecture") ? f.getInt(f.getString("general.architecture") + ".attention.head_count", 0) : 0;
    }

    public static ModelConfig from(GgufFile f) {
        Architecture a = architecture(f);
        String arch = f.getString("general.architecture");
        String p = arch + ".";
        int hidden = f.getInt(p + "embedding_length");
        int heads = f.getInt(p + "attention.head_count");
        int kvHeads = f.getInt(p + "attention.head_count_kv", heads);
        int headDim = f.getInt(p + "attention.key_length", hidden / heads);
        int rotaryDim = f.getInt(p + "rope.dimension_count", headDim);
        int vocab = f.getInt(p + "vocab_size", f.getStringArray("tokenizer.ggml.tokens").length);
        List<Integer> eos = new ArrayList<>();
        if (f.has("tokenizer.ggml.eos_token_id")) {
            eos.add(f.getInt("tokenizer.ggml.eos_token_id"));
        }
        // llama.cpp writes no output.weight when the embeddings are tied
        boolean tied = !hasTensor(f, "output.weight");
        Optional<ModelConfig.Moe> moe = f.getInt(p + "expert_count", 0) > 0
                ? Optional.of(new ModelConfig.Moe(f.getInt(p + "expert_count"), f.getInt(p + "expert_used_count")))
                : Optional.empty();
        double eps = f.has(p + "attention.layer_norm_rms_epsilon") ? f.getFloat(p + "attention.layer_norm_rms_epsilon")
                : f.getFloat(p + "attention.layer_norm_epsilon");
        boolean attentionBias = hasTensor(f, "blk.0.attn_q.bias") || hasTensor(f, "blk.0.attn_qkv.bias");
        boolean mlpBias = hasTensor(f, "blk.0.ffn_up.bias");
        // llama.cpp's GELU is the tanh approximation, which BLOOM and StarCoder use
        String act = a.mlp() instanceof Architecture.MlpSpec.Plain ? "gelu_pytorch_tanh" : "silu";
        // only the converter's llama models (MoE ones too) have their q/k rows permuted for interleaved pairs
        boolean interleaved = arch.equals("llama");
        int context = f.getInt(p + "context_length", 0);
        return new ModelConfig(a.modelType(), a.hfClasses(), hidden, f.getInt(p + "feed_forward_length"),
                f.getInt(p + "block_count"), heads, kvHeads, headDim, vocab, context,
                eps, tied, Optional.of(act),
                f.getInt("tokenizer.ggml.bos_token_id", ModelConfig.NO_TOKEN), eos, storedDtype(f), attentionBias, mlpBias,
                rotaryDim / (double) headDim, rope(f, p), interleaved, 0, moe, Optional.empty(), scalarMetadata(f));
    }

    private static boolean hasTensor(GgufFile f, String name) {
        return f.tensorInfos().stream().anyMatch(t -> t.name().equals(name));
    }

    private static RopeConfig rope(GgufFile f, String p) {
        double theta = f.getFloat(p + "rope.freq_base", (float) RopeConfig.DEFAULT_THETA);
        String scaling = f.has(p + "rope.scaling.type") ? f.getString(p + "rope.scaling.type") : "none";
        return switch (scaling) {
            case "none" -> RopeConfig.plain(theta);
            case "linear" -> new RopeConfig(RopeConfig.Type.LINEAR, theta, f.getFloat(p + "rope.scaling.factor"), 1.0, 1.0,
                    f.getInt(p + "rope.scaling.original_context_length", 0));
            default -> throw new ModelLoadException("unsupported GGUF rope scaling '" + scaling + "' in " + f.path());
        };
    }

    /** The dtype of the token embedding when it is a plain float type; F32 (the dequantised type) otherwise. */
    private static DType storedDtype(GgufFile f) {
        return f.tensorInfos().stream().filter(t -> t.name().equals("token_embd.weight")).findFirst()
                .flatMap(t -> GgmlType.tensorType(t.ggmlType()))
                .filter(t -> !t.isQuantized())
                .map(t -> t.dtype())
                .orElse(DType.F32);
    }

    /** The scalar metadata as JSON (arrays such as the vocabulary are left out). */
    private static ObjectNode scalarMetadata(GgufFile f) {
        ObjectNode raw = JsonFields.mapper().createObjectNode();
        for (Map.Entry<String, Object> e : f.metadata().entrySet()) {
            Object v = e.getValue();
            switch (v) {
                case String s -> raw.put(e.getKey(), s);
                case Integer i -> raw.put(e.getKey(), i);
                case Long l -> raw.put(e.getKey(), l);
                case Float x -> raw.put(e.getKey(), x);
                case Double d -> raw.put(e.getKey(), d);
                case Boolean b -> raw.put(e.getKey(), b);
                default -> {
                }
            }
        }
        return raw;
    }
}
