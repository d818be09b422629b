package io.lightllm.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Llama variants without a transformers fixture (Baichuan, InternLM, MiniCPM, Yi, Mistral's
 * sliding window), each checked on a checkpoint derived from a real fixture ({@link
 * DerivedCheckpoint}): either the variant's difference is a re-encoding of the same model, so
 * the fixture's golden must still hold; or the difference changes the model, and a plain llama
 * checkpoint with that change folded into its weights is the reference.
 */
class LlamaVariantsTest {
    private static final Path LLAMA = SharedData.tinyFixture("llama");
    /** Golden tolerance of the bf16 llama fixture; see {@link LlamaGoldenTest#tolerance}. */
    private static final float GOLDEN_TOLERANCE = LlamaGoldenTest.tolerance(DType.BF16);
    /**
     * Two runs of this engine on f32 weights that differ only in where a constant factor is
     * applied (to a weight, or to an activation): the results differ by the f32 rounding of
     * those products, ~1e-7 relative, i.e. ~1e-6 on logits of magnitude ~5; 1e-4 is the f32
     * golden bound of {@link LlamaGoldenTest} and 100x that. Wrong formulas move logits by 1e-2 or more.
     */
    private static final float SAME_MODEL_TOLERANCE = 1e-4f;
    /** Each test shows its reference is far from the plain model by at least this: the check can fail. */
    private static final float DIFFERENT_MODEL = 1e-2f;

    @TempDir
    Path tmp;

    @Test
    void baichuan7bFusedWPackMatchesGolden() throws IOException {
        DerivedCheckpoint c = withoutGqa(DerivedCheckpoint.of(LLAMA));
        baichuan(c, "BaiChuanForCausalLM");
        assertMatchesGolden(c.write(tmp), LLAMA);
    }

    /** Qwen-7B (v1): its config keys, c_attn = [q; k; v] with a (zero) bias, w2 the gate, w1 the up projection. */
    @Test
    void qwenV1StackedCAttnAndSwappedMlpNamesMatchGolden() throws IOException {
        assertMatchesGolden(qwenV1().write(tmp), LLAMA);
    }

    /**
     * The same model as a GGUF file of llama.cpp's "qwen" architecture (convert_hf_to_gguf.py's QwenModel:
     * attn_qkv with its bias, w1 as ffn_up and w2 as ffn_gate, feed_forward_length half of intermediate_size).
     */
    @Test
    void qwenV1AsGgufMatchesGolden() throws IOException {
        Path gguf = tmp.resolve("qwen.gguf");
        io.lightllm.models.gguf.GgufArchitecturesTest.convert(qwenV1().write(dir("qwen-hf")), "qwen", gguf, name -> null, false);
        assertMatchesGolden(gguf, LLAMA);
    }

    private static DerivedCheckpoint qwenV1() {
        DerivedCheckpoint c = withoutGqa(DerivedCheckpoint.of(LLAMA));
        int hidden = c.hidden(), inter = c.config.get("intermediate_size").asInt();
        c.config.put("model_type", "qwen").putArray("architectures").add("QWenLMHeadModel");
        c.config.put("intermediate_size", 2 * inter).put("kv_channels", hidden / c.config.get("num_attention_heads").asInt())
                .put("layer_norm_epsilon", c.config.get("rms_norm_eps").asDouble()).put("rotary_emb_base", 10000).put("rotary_pct", 1.0)
                .put("seq_length", c.config.get("max_position_embeddings").asInt()).put("no_bias", true);
        c.config.remove(List.of("rms_norm_eps", "rope_parameters", "max_position_embeddings"));
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".", q = "transformer.h." + l + ".";
            baichuan(c, l); // q, k, v stacked by rows: the same layout as W_pack
            c.rename(p + "self_attn.W_pack.weight", q + "attn.c_attn.weight");
            c.put(q + "attn.c_attn.bias", new long[] {3L * hidden}, new float[3 * hidden]);
            c.rename(p + "self_attn.o_proj.weight", q + "attn.c_proj.weight");
            c.rename(p + "mlp.gate_proj.weight", q + "mlp.w2.weight");
            c.rename(p + "mlp.up_proj.weight", q + "mlp.w1.weight");
            c.rename(p + "mlp.down_proj.weight", q + "mlp.c_proj.weight");
            c.rename(p + "input_layernorm.weight", q + "ln_1.weight");
            c.rename(p + "post_attention_layernorm.weight", q + "ln_2.weight");
        }
        c.rename("model.embed_tokens.weight", "transformer.wte.weight");
        c.rename("model.norm.weight", "transformer.ln_f.weight");
        return c;
    }

    @Test
    void baichuan2NormalisesTheHeadRows() throws IOException {
        DerivedCheckpoint variant = withoutGqa(DerivedCheckpoint.of(LLAMA));
        baichuan(variant, "BaichuanForCausalLM");
        // the reference: plain llama whose lm_head rows are already unit vectors (computed in double)
        DerivedCheckpoint reference = DerivedCheckpoint.of(LLAMA);
        float[] head = reference.floats("lm_head.weight");
        int hidden = reference.hidden();
        for (int r = 0; r < head.length / hidden; r++) {
            double sumSq = 0;
            for (int i = 0; i < hidden; i++) {
                sumSq += (double) head[r * hidden + i] * head[r * hidden + i];
            }
            for (int i = 0; i < hidden; i++) {
                head[r * hidden + i] = (float) (head[r * hidden + i] / Math.sqrt(sumSq));
            }
        }
        reference.put("lm_head.weight", reference.shape("lm_head.weight"), head);
        assertSameModelNotGolden(variant.write(dir("baichuan2")), reference.write(dir("reference")), LLAMA);
    }

    @Test
    void internLmWithZeroBiasesMatchesGolden() throws IOException {
        DerivedCheckpoint c = internLm(DerivedCheckpoint.of(LLAMA));
        assertMatchesGolden(c.write(tmp), LLAMA);
    }

    /**
     * A v bias b reaches the attention output unchanged (softmax weights sum to 1), so it equals an
     * o bias of W_o·b: the two checkpoints are one model, and different from the fixture.
     */
    @Test
    void internLmValueBiasEqualsOutputBias() throws IOException {
        DerivedCheckpoint withV = internLm(DerivedCheckpoint.of(LLAMA));
        DerivedCheckpoint withO = internLm(DerivedCheckpoint.of(LLAMA));
        int hidden = withV.hidden();
        Random random = new Random(4);
        for (int l = 0; l < withV.layers(); l++) {
            String p = "model.layers." + l + ".self_attn.";
            float[] b = new float[hidden];
            for (int i = 0; i < hidden; i++) {
                b[i] = (float) random.nextGaussian() * 0.5f;
            }
            withV.put(p + "v_proj.bias", new long[] {hidden}, b);
            float[] wo = withO.floats(p + "o_proj.weight");
            float[] ob = new float[hidden];
            for (int r = 0; r < hidden; r++) {
                double s = 0;
                for (int i = 0; i < hidden; i++) {
                    s += (double) wo[r * hidden + i] * b[i];
                }
                ob[r] = (float) s;
            }
            withO.put(p + "o_proj.bias", new long[] {hidden}, ob);
        }
        assertSameModelNotGolden(withV.write(dir("v-bias")), withO.write(dir("o-bias")), LLAMA);
    }

    @Test
    void miniCpmWithCancellingScalesMatchesGolden() throws IOException {
        DerivedCheckpoint c = DerivedCheckpoint.of(LLAMA);
        miniCpm(c, 1.0, Math.sqrt(c.layers()), c.hidden());
        assertMatchesGolden(c.write(tmp), LLAMA);
    }

    @Test
    void miniCpmScalingsEqualScaledLlamaWeights() throws IOException {
        assertMiniCpmEqualsScaledLlama(LLAMA);
    }

    /** MiniCPM ties its embeddings: the input is scaled by scale_emb, the head (the same table) is not. */
    @Test
    void miniCpmScalingsWithTiedEmbeddings() throws IOException {
        assertMiniCpmEqualsScaledLlama(SharedData.tinyFixture("llama3_tied"));
    }

    /**
     * HF MiniCPM: embeddings * scale_emb; residual += branch * scale_depth / sqrt(layers); logits
     * = lm_head(h / (hidden / dim_model_base)). All three are linear, so the reference folds them
     * into a plain llama checkpoint: the embedding table (input side only), o_proj and down_proj,
     * and lm_head. MiniCPM-2B's own values: scale_emb 12, scale_depth 1.4, dim_model_base 256 (of 2304).
     */
    private void assertMiniCpmEqualsScaledLlama(Path fixture) throws IOException {
        double scaleEmb = 12, scaleDepth = 1.4;
        DerivedCheckpoint variant = DerivedCheckpoint.of(fixture);
        int hidden = variant.hidden(), dimModelBase = hidden / 4, layers = variant.layers();
        miniCpm(variant, scaleEmb, scaleDepth, dimModelBase);

        DerivedCheckpoint reference = DerivedCheckpoint.of(fixture);
        String embed = "model.embed_tokens.weight";
        float[] head = reference.has("lm_head.weight") ? reference.floats("lm_head.weight") : reference.floats(embed);
        reference.put("lm_head.weight", reference.shape(embed), head).scale("lm_head.weight", (float) dimModelBase / hidden);
        reference.config.put("tie_word_embeddings", false);
        reference.scale(embed, (float) scaleEmb);
        for (int l = 0; l < layers; l++) {
            float residual = (float) (scaleDepth / Math.sqrt(layers));
            reference.scale("model.layers." + l + ".self_attn.o_proj.weight", residual);
            reference.scale("model.layers." + l + ".mlp.down_proj.weight", residual);
        }
        assertSameModelNotGolden(variant.write(dir("minicpm")), reference.write(dir("reference")), fixture);
    }

    /** The original Yi checkpoints: model_type "Yi", YiForCausalLM, norms named ln1 / ln2. */
    @Test
    void originalYiCheckpointMatchesGolden() throws IOException {
        DerivedCheckpoint c = DerivedCheckpoint.of(LLAMA);
        c.config.put("model_type", "Yi");
        c.config.putArray("architectures").add("YiForCausalLM");
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            c.rename(p + "input_layernorm.weight", p + "ln1.weight");
            c.rename(p + "post_attention_layernorm.weight", p + "ln2.weight");
        }
        assertMatchesGolden(c.write(tmp), LLAMA);
    }

    /**
     * Mistral's sliding window: within the window the model is the full-attention golden; past it a
     * one-layer model's last logits are those of full attention over the last W tokens alone (a
     * layer's attention is all a position mixes, and rotary scores depend only on relative positions),
     * an exact property independent of the kernels. Sequences longer than the window are served.
     */
    @Test
    void mistralSlidingWindowSeesTheLastTokens() throws IOException {
        Path mistral = SharedData.tinyFixture("mistral");
        int window = 8;
        List<Golden> golden = Golden.read(mistral);
        Golden shortCase = golden.stream().filter(g -> g.inputIds().length == 2).findFirst().orElseThrow();
        Golden longCase = golden.stream().filter(g -> g.inputIds().length > window + 2).findFirst().orElseThrow();
        DerivedCheckpoint windowed = DerivedCheckpoint.of(mistral);
        windowed.config.put("sliding_window", window);
        try (ModelFiles files = ModelFiles.open(windowed.write(Files.createDirectory(tmp.resolve("windowed"))), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            assertEquals(512, model.maxSequenceLength(), "the trained context, not the window");
            int steps = window - shortCase.inputIds().length + 1; // the last step's forward sees exactly the window
            GreedyRunner run = new GreedyRunner(model, new int[][] {shortCase.inputIds()}, steps, DType.F32);
            LlamaGoldenTest.assertLogitsClose(shortCase.lastLogits(), run.firstLogits[0], GOLDEN_TOLERANCE, "within the window");
            assertArrayEquals(java.util.Arrays.copyOf(shortCase.greedyIds(), steps), run.generated[0], "greedy ids within the window");
        }
        // one layer, windowed on the long prompt, against full attention on its last W tokens
        DerivedCheckpoint oneLayer = oneLayer(DerivedCheckpoint.of(mistral));
        DerivedCheckpoint oneLayerWindowed = oneLayer(DerivedCheckpoint.of(mistral));
        oneLayerWindowed.config.put("sliding_window", window);
        int[] ids = longCase.inputIds();
        int[] lastTokens = java.util.Arrays.copyOfRange(ids, ids.length - window, ids.length);
        float[] expected, actual;
        try (ModelFiles files = ModelFiles.open(oneLayer.write(Files.createDirectory(tmp.resolve("full"))), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            expected = new GreedyRunner(model, new int[][] {lastTokens}, 1, DType.F32).firstLogits[0];
            float[] whole = new GreedyRunner(model, new int[][] {ids}, 1, DType.F32).firstLogits[0];
            float differs = 0f;
            for (int v = 0; v < whole.length; v++) {
                differs = Math.max(differs, Math.abs(whole[v] - expected[v]));
            }
            assertTrue(differs > 100 * GOLDEN_TOLERANCE, "the earlier tokens must matter to full attention for the check to mean anything");
        }
        try (ModelFiles files = ModelFiles.open(oneLayerWindowed.write(Files.createDirectory(tmp.resolve("oneWindowed"))), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            actual = new GreedyRunner(model, new int[][] {ids}, 1, DType.F32).firstLogits[0];
        }
        LlamaGoldenTest.assertLogitsClose(expected, actual, GOLDEN_TOLERANCE, "windowed attention against full attention on the last " + window + " tokens");
    }

    /** The checkpoint's first layer alone. */
    private static DerivedCheckpoint oneLayer(DerivedCheckpoint c) {
        for (int l = 1; l < c.layers(); l++) {
            for (String name : new java.util.ArrayList<>(c.names())) {
                if (name.startsWith("model.layers." + l + ".")) {
                    c.remove(name);
                }
            }
        }
        c.config.put("num_hidden_layers", 1);
        return c;
    }

    // ---- the derivations

    /**
     * Baichuan-7B and InternLM have one K/V head per query head; the fixture shares each of its
     * K/V heads between query heads (GQA). Repeating each K/V head for the query heads that read it
     * is the same model without GQA.
     */
    private static DerivedCheckpoint withoutGqa(DerivedCheckpoint c) {
        int heads = c.config.get("num_attention_heads").asInt(), kvHeads = c.config.get("num_key_value_heads").asInt();
        int headDim = c.config.get("head_dim").asInt(), hidden = c.hidden();
        assertEquals(hidden, heads * headDim, "the derivation needs hidden = heads x head_dim (no head_dim key in these configs)");
        for (int l = 0; l < c.layers(); l++) {
            for (String proj : new String[] {"k_proj", "v_proj"}) {
                String name = "model.layers." + l + ".self_attn." + proj + ".weight";
                float[] w = c.floats(name);
                float[] expanded = new float[heads * headDim * hidden];
                for (int h = 0; h < heads; h++) {
                    int kv = h / (heads / kvHeads);
                    System.arraycopy(w, kv * headDim * hidden, expanded, h * headDim * hidden, headDim * hidden);
                }
                c.put(name, new long[] {(long) heads * headDim, hidden}, expanded);
            }
        }
        c.config.remove(List.of("num_key_value_heads", "head_dim"));
        return c;
    }

    /** Baichuan's config and its W_pack: q, k and v stacked by rows, [3 * hidden, hidden]. */
    private static void baichuan(DerivedCheckpoint c, String architecture) {
        c.config.put("model_type", "baichuan");
        c.config.putArray("architectures").add(architecture);
        c.config.remove("rope_parameters"); // Baichuan-7B's config has no rope keys (base 10000, the fixture's)
        for (int l = 0; l < c.layers(); l++) {
            baichuan(c, l);
        }
    }

    /** Layer {@code l}'s q, k and v stacked by rows into self_attn.W_pack, [3 * hidden, hidden]. */
    private static void baichuan(DerivedCheckpoint c, int l) {
        int hidden = c.hidden();
        String p = "model.layers." + l + ".self_attn.";
        float[] pack = new float[3 * hidden * hidden];
        int at = 0;
        for (String proj : new String[] {"q_proj", "k_proj", "v_proj"}) {
            float[] w = c.floats(p + proj + ".weight");
            System.arraycopy(w, 0, pack, at, w.length);
            at += w.length;
            c.remove(p + proj + ".weight");
        }
        c.put(p + "W_pack.weight", new long[] {3L * hidden, hidden}, pack);
    }

    /** InternLM (v1): no GQA, {@code bias: true} with biases on q, k, v and o (zero here), its own rotary key. */
    private static DerivedCheckpoint internLm(DerivedCheckpoint c) {
        withoutGqa(c);
        c.config.put("model_type", "internlm");
        c.config.putArray("architectures").add("InternLMForCausalLM");
        c.config.put("bias", true);
        c.config.remove("rope_parameters");
        c.config.putObject("rotary").put("base", 10000).put("type", "dynamic");
        int hidden = c.hidden();
        for (int l = 0; l < c.layers(); l++) {
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) {
                c.put("model.layers." + l + ".self_attn." + proj + ".bias", new long[] {hidden}, new float[hidden]);
            }
        }
        return c;
    }

    private static void miniCpm(DerivedCheckpoint c, double scaleEmb, double scaleDepth, int dimModelBase) {
        c.config.put("model_type", "minicpm");
        c.config.putArray("architectures").add("MiniCPMForCausalLM");
        c.config.put("scale_emb", scaleEmb);
        c.config.put("scale_depth", scaleDepth);
        c.config.put("dim_model_base", dimModelBase);
    }

    // ---- the checks

    /** Logits and greedy ids of every golden case of {@code fixture}, from the derived checkpoint. */
    private static void assertMatchesGolden(Path derived, Path fixture) {
        List<Golden> cases = Golden.read(fixture);
        GreedyRunner run = runGolden(derived, cases);
        for (int c = 0; c < cases.size(); c++) {
            LlamaGoldenTest.assertLogitsClose(cases.get(c).lastLogits(), run.firstLogits[c], GOLDEN_TOLERANCE, "case " + c);
            assertArrayEquals(cases.get(c).greedyIds(), run.generated[c], "case " + c + " greedy ids");
        }
    }

    /** The two checkpoints compute the same logits and greedy ids, and these are not the fixture's. */
    private static void assertSameModelNotGolden(Path variant, Path reference, Path fixture) {
        List<Golden> cases = Golden.read(fixture);
        GreedyRunner a = runGolden(variant, cases);
        GreedyRunner b = runGolden(reference, cases);
        float moved = 0;
        for (int c = 0; c < cases.size(); c++) {
            LlamaGoldenTest.assertLogitsClose(b.firstLogits[c], a.firstLogits[c], SAME_MODEL_TOLERANCE, "case " + c);
            assertArrayEquals(b.generated[c], a.generated[c], "case " + c + " greedy ids");
            for (int i = 0; i < b.firstLogits[c].length; i++) {
                moved = Math.max(moved, Math.abs(b.firstLogits[c][i] - cases.get(c).lastLogits()[i]));
            }
        }
        assertTrue(moved > DIFFERENT_MODEL, "the reference is the fixture's model again (logits moved by " + moved + ")");
    }

    private static GreedyRunner runGolden(Path dir, List<Golden> cases) {
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            int[][] prompts = cases.stream().map(Golden::inputIds).toArray(int[][]::new);
            return new GreedyRunner(model, prompts, cases.getFirst().greedyIds().length, DType.F32);
        }
    }

    private Path dir(String name) throws IOException {
        return Files.createDirectories(tmp.resolve(name));
    }
}
