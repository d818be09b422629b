package io.lightllm.models.gguf;

import io.lightllm.models.ModelLoadException;
import io.lightllm.models.decoder.Architecture;
import io.lightllm.models.decoder.Architecture.MlpSpec;
import io.lightllm.models.decoder.Architecture.Qkv;
import io.lightllm.models.weights.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one table between llama.cpp's tensor names (gguf-py's MODEL_TENSOR) and a declaration's
 * Hugging Face names, with the two layouts llama.cpp's converter changes: a mixture's experts are
 * stacked in one tensor per layer ({@code ffn_gate_exps} [E, ff, hidden]: here a view per expert),
 * and BLOOM's per-head q/k/v rows are regrouped as [all q; all k; all v] (here put back per head,
 * a copy). Llama's q/k row permutation is kept (see {@link GgufModelConfig}). Names without an entry
 * keep their GGUF name ({@code rope_freqs.weight}).
 */
public final class GgufTensorNames {
    private static final Pattern GGUF_NAME = Pattern.compile("(?:blk\\.(\\d+)\\.)?(\\w+)\\.(weight|bias)");

    private final Architecture a;
    private final Map<String, String> global = new HashMap<>();
    private final Map<String, String> perLayer = new HashMap<>();
    private final Map<String, String> experts = new HashMap<>();

    private GgufTensorNames(Architecture a) {
        this.a = a;
        put(global, "token_embd", a.embeddings().tokens());
        put(global, "position_embd", a.embeddings().positions());
        put(global, "token_embd_norm", a.embeddings().norm());
        put(global, "output_norm", a.finalNorm());
        put(global, "output", a.lmHead());
        put(perLayer, "attn_norm", a.inputNorm());
        put(perLayer, "ffn_norm", a.postAttentionNorm());
        put(perLayer, "attn_output", a.attention().o());
        put(perLayer, "attn_q_norm", a.attention().qNorm());
        put(perLayer, "attn_k_norm", a.attention().kNorm());
        switch (a.attention().qkv()) {
            case Qkv.Separate s -> {
                put(perLayer, "attn_q", s.q());
                put(perLayer, "attn_k", s.k());
                put(perLayer, "attn_v", s.v());
            }
            case Qkv.Stacked s -> put(perLayer, "attn_qkv", s.name());
            case Qkv.PerHead s -> put(perLayer, "attn_qkv", s.name());
        }
        switch (a.mlp()) {
            case MlpSpec.Gated g -> {
                put(perLayer, "ffn_gate", g.gate());
                put(perLayer, "ffn_up", g.up());
                put(perLayer, "ffn_down", g.down());
            }
            case MlpSpec.GatedStacked g -> { // llama.cpp's ChatGLM: the stacked gate and up as ffn_up
                put(perLayer, "ffn_up", g.gateUp());
                put(perLayer, "ffn_down", g.down());
            }
            case MlpSpec.Plain p -> {
                put(perLayer, "ffn_up", p.fc());
                put(perLayer, "ffn_down", p.proj());
            }
            case MlpSpec.Experts e -> {
                put(perLayer, "ffn_gate_inp", e.router());
                put(experts, "ffn_gate_exps", e.gate());
                put(experts, "ffn_up_exps", e.up());
                put(experts, "ffn_down_exps", e.down());
            }
        }
    }

    private static void put(Map<String, String> m, String gguf, String hf) {
        if (hf != null) {
            m.put(gguf, hf);
        }
    }

    /** The names of a declaration's GGUF files. */
    public static GgufTensorNames of(Architecture a) {
        return new GgufTensorNames(a);
    }

    /** The HF name of a GGUF tensor that maps one to one, or the GGUF name itself when the table has no entry. */
    public String toHf(String ggufName) {
        Matcher m = GGUF_NAME.matcher(ggufName);
        if (m.matches()) {
            String layer = m.group(1);
            String hf = (layer == null ? global : perLayer).get(m.group(2));
            if (hf != null) {
                return (layer == null ? "" : a.layerPrefix(Integer.parseInt(layer))) + hf + "." + m.group(3);
            }
        }
        return ggufName;
    }

    /** The GGUF name of an HF tensor name, if the table maps it one to one (for messages). */
    public Optional<String> toGguf(String hfName) {
        for (Map.Entry<String, String> e : global.entrySet()) {
            for (String suffix : new String[] {".weight", ".bias"}) {
                if (hfName.equals(e.getValue() + suffix)) {
                    return Optional.of(e.getKey() + suffix);
                }
            }
        }
        Matcher m = Pattern.compile(Pattern.quote(a.layerPrefix(0)).replace("0", "\\E(\\d+)\\Q") + "(.+)\\.(weight|bias)").matcher(hfName);
        if (m.matches()) {
            for (Map.Entry<String, String> e : perLayer.entrySet()) {
                if (e.getValue().equals(m.group(2))) {
                    return Optional.of("blk." + m.group(1) + "." + e.getKey() + "." + m.group(3));
                }
            }
        }
        return Optional.empty();
    }

    /**
     * The HF tensors of one GGUF tensor: itself renamed, one view per expert of a stacked experts
     * tensor, or BLOOM's q/k/v rows put back per head ({@code heads} heads; a copy in {@code arena}).
     */
    public List<Tensor> toHf(Tensor t, int heads, Arena arena) {
        Matcher m = GGUF_NAME.matcher(t.name());
        if (m.matches() && m.group(1) != null && experts.containsKey(m.group(2))) {
            return expertsOf(t, a.layerPrefix(Integer.parseInt(m.group(1))), m.group(3));
        }
        String hf = toHf(t.name());
        if (a.attention().qkv() instanceof Qkv.PerHead && m.matches() && m.group(2).equals("attn_qkv")) {
            return List.of(perHead(t, hf, heads, arena));
        }
        return List.of(new Tensor(hf, t.type(), t.shape(), t.data()));
    }

    private List<Tensor> expertsOf(Tensor t, String layerPrefix, String suffix) {
        MlpSpec.Experts spec = (MlpSpec.Experts) a.mlp();
        String role = experts.get(GGUF_NAME.matcher(t.name()).replaceAll("$2"));
        if (t.rank() != 3) {
            throw new ModelLoadException("stacked experts tensor " + t.name() + " has shape " + java.util.Arrays.toString(t.shape())
                    + ", expected [experts, rows, columns]");
        }
        int n = (int) t.dim(0);
        long bytes = t.data().byteSize() / n;
        Tensor[] out = new Tensor[n];
        for (int e = 0; e < n; e++) {
            out[e] = new Tensor(layerPrefix + spec.experts().formatted(e) + role + "." + suffix, t.type(),
                    new long[] {t.dim(1), t.dim(2)}, t.data().asSlice(e * bytes, bytes));
        }
        return List.of(out);
    }

    /** Rows [q of every head; k of every head; v of every head] back to [q, k, v of head 0; ...]. */
    private static Tensor perHead(Tensor t, String name, int heads, Arena arena) {
        long rows = t.dim(0);
        if (rows % (3L * heads) != 0) {
            throw new ModelLoadException(t.name() + " has " + rows + " rows, not 3 x " + heads + " heads");
        }
        long headDim = rows / (3L * heads);
        long rowBytes = t.data().byteSize() / rows;
        MemorySegment out = arena.allocate(t.data().byteSize(), 64);
        for (int part = 0; part < 3; part++) {
            for (int h = 0; h < heads; h++) {
                long from = (part * (long) heads + h) * headDim, to = (3L * h + part) * headDim;
                MemorySegment.copy(t.data(), from * rowBytes, out, to * rowBytes, headDim * rowBytes);
            }
        }
        return new Tensor(name, t.type(), t.shape(), out);
    }
}
