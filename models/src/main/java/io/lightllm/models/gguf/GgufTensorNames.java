package io.lightllm.models.gguf;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one table between llama.cpp's tensor names for Llama-family GGUF files and Hugging Face's
 * names. Per-layer names carry the layer number ("blk.3.attn_q" = "model.layers.3.self_attn.q_proj");
 * both ".weight" and ".bias" suffixes map. Names without an entry keep their GGUF name.
 */
public final class GgufTensorNames {
    private static final String[][] GLOBAL = {
        {"token_embd", "model.embed_tokens"},
        {"output_norm", "model.norm"},
        {"output", "lm_head"},
    };
    private static final String[][] PER_LAYER = {
        {"attn_norm", "input_layernorm"},
        {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"},
        {"attn_output", "self_attn.o_proj"},
        {"ffn_norm", "post_attention_layernorm"},
        {"ffn_gate", "mlp.gate_proj"},
        {"ffn_up", "mlp.up_proj"},
        {"ffn_down", "mlp.down_proj"},
    };

    private static final Pattern GGUF_NAME = Pattern.compile("(?:blk\\.(\\d+)\\.)?(\\w+)\\.(weight|bias)");
    private static final Pattern HF_NAME = Pattern.compile("(?:model\\.layers\\.(\\d+)\\.)?([\\w.]+)\\.(weight|bias)");
    private static final Map<String, String> GLOBAL_TO_HF = table(GLOBAL, false);
    private static final Map<String, String> GLOBAL_TO_GGUF = table(GLOBAL, true);
    private static final Map<String, String> LAYER_TO_HF = table(PER_LAYER, false);
    private static final Map<String, String> LAYER_TO_GGUF = table(PER_LAYER, true);

    private GgufTensorNames() {
    }

    private static Map<String, String> table(String[][] pairs, boolean reversed) {
        Map<String, String> m = new HashMap<>();
        for (String[] p : pairs) {
            m.put(reversed ? p[1] : p[0], reversed ? p[0] : p[1]);
        }
        return m;
    }

    /** The HF name of a GGUF tensor, or the GGUF name itself when the table has no entry. */
    public static String toHf(String ggufName) {
        Matcher m = GGUF_NAME.matcher(ggufName);
        if (m.matches()) {
            String layer = m.group(1);
            String hf = (layer == null ? GLOBAL_TO_HF : LAYER_TO_HF).get(m.group(2));
            if (hf != null) {
                return (layer == null ? "" : "model.layers." + layer + ".") + hf + "." + m.group(3);
            }
        }
        return ggufName;
    }

    /** The GGUF name of an HF tensor name, if the table maps it. */
    public static Optional<String> toGguf(String hfName) {
        Matcher m = HF_NAME.matcher(hfName);
        if (m.matches()) {
            String layer = m.group(1);
            String gguf = (layer == null ? GLOBAL_TO_GGUF : LAYER_TO_GGUF).get(m.group(2));
            if (gguf != null) {
                return Optional.of((layer == null ? "" : "blk." + layer + ".") + gguf + "." + m.group(3));
            }
        }
        return Optional.empty();
    }
}
