package io.lightllm.models.decoder;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Devices;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Batch-1 decode with the norms and residual adds folded into the GEMVs ({@code matmul.gemv_fold=1},
 * {@link io.lightllm.kernels.FoldedGemv}) against the same model without: every decode step's logits within
 * {@link LogitTokensTest}'s tolerance (only the f32 order of the norm's factor differs) and the same greedy tokens, over
 * bf16 and int8 weights (also on the int8-activation GEMVs, staged or not). The steps really fold: a folded decode step
 * launches FoldedGemv's kernels and no norm, the plain one none of them.
 */
class FoldedDecodeTest {
    private static final int[] PROMPT = {1, 55, 203, 7, 99, 12};
    private static final int STEPS = 12;

    static Stream<String> devices() {
        return TestDevices.jvmAndAccelerators().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void foldedBatchOneDecodeEqualsTheUnfoldedOne(String id) {
        for (String weights : new String[] {"NONE", "INT8", "INT8 q8", "INT8 q8 staged"}) {
            Models.Quantization quant = Models.Quantization.valueOf(weights.split(" ")[0]);
            boolean q8 = weights.contains("q8");
            boolean staged = weights.endsWith("staged");
            Decoded plain = decode(id, quant, false, q8, false), folded = decode(id, quant, true, q8, staged);
            String what = id + " " + weights;
            assertArrayEquals(plain.tokens, folded.tokens, what + ": greedy tokens");
            for (int s = 0; s < STEPS; s++) {
                assertClose(FloatArray.fromArray(plain.logits[s]), FloatArray.fromArray(folded.logits[s]), 1e-4f, 1e-4f, what + " step " + s);
            }
            assertTrue(folded.kernels.stream().anyMatch(k -> k.contains("Normed")) && folded.kernels.stream().anyMatch(k -> k.contains("Adding")),
                    what + ": a folded step launches the folded GEMVs: " + folded.kernels);
            assertTrue(folded.kernels.stream().noneMatch(k -> k.toLowerCase(java.util.Locale.ROOT).contains("norm") && !k.contains("Normed")),
                    what + ": and no norm kernel: " + folded.kernels);
            assertTrue(plain.kernels.stream().noneMatch(k -> k.contains("Normed") || k.contains("Adding")), what + ": the plain one none: "
                    + plain.kernels);
            assertTrue(folded.kernels.stream().anyMatch(k -> k.contains("StagedQ8Gemv")) == staged, what + ": the staged GEMVs run where on: "
                    + folded.kernels);
        }
    }

    /**
     * Int4 weights on the staged GEMVs, the q/k/v projection splitting its own output ({@code matmul.q8_staged_split}:
     * rotary, q/k/v apart and the pool written in its epilogue) against the projection with the split kernel after it:
     * the same greedy tokens and logits. A dummy Llama of hidden size 512 (the tiny fixtures' 64 is below the staged int4
     * GEMV's rows of 512), heads of 128 rotated in halves, grouped kv heads.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void int4ProjectionThatSplitsDecodesAsTheSplitAfterIt(String id, @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path config = dir.resolve("config.json");
        java.nio.file.Files.writeString(config, """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512, "rms_norm_eps": 1e-5,
                 "rope_theta": 10000.0, "max_position_embeddings": 512, "tie_word_embeddings": false}
                """);
        String backend = "lightllm.tuning." + Devices.backendName(id) + ".";
        Decoded[] runs = new Decoded[2];
        for (int split = 0; split < 2; split++) {
            // (work-groups of 64: the int8-activation GEMVs' shuffles take whole warps, where the JVM's default is 1)
            Map<String, String> tuning = Map.of(backend + "matmul.gemv_fold", "1", backend + "matmul.gemv_gated", "1", backend + "matmul.int4_q8", "1",
                    backend + "matmul.gemv_fold_q8", "1", backend + "matmul.q8_staged_int4", "1", backend + "matmul.q8_staged_split", Integer.toString(split),
                    backend + "reduce.local", "64");
            int run = split;
            TestProperties.with(tuning, () -> {
                try (CausalLM model = Models.dummy(config.toString(), DType.BF16, Devices.get(id), Models.Quantization.INT4, true)) {
                    runs[run] = decode(model);
                }
            });
        }
        assertArrayEquals(runs[0].tokens, runs[1].tokens, id + ": greedy tokens");
        for (int s = 0; s < STEPS; s++) {
            assertClose(FloatArray.fromArray(runs[0].logits[s]), FloatArray.fromArray(runs[1].logits[s]), 1e-4f, 1e-4f, id + " step " + s);
        }
        assertTrue(runs[1].kernels.stream().anyMatch(k -> k.startsWith("StagedQ8Gemv.int4SplitNormed")) && runs[1].kernels.stream().noneMatch(k -> k.contains("splitQkv")),
                id + ": the splitting projection runs and no split kernel: " + runs[1].kernels);
        assertTrue(runs[0].kernels.stream().anyMatch(k -> k.startsWith("KvCache.splitQkv")) && runs[0].kernels.stream().anyMatch(k -> k.startsWith("StagedQ8Gemv.int4Normed")),
                id + ": without it the staged projection and the split kernel: " + runs[0].kernels);
    }

    private record Decoded(int[] tokens, float[][] logits, List<String> kernels) { }

    /**
     * The decode with the folds on or off; {@code q8}: int8 weights on the int8-activation GEMVs, which then fold too;
     * {@code staged}: those with their activations staged ({@link io.lightllm.kernels.StagedQ8Gemv}: the same codes).
     */
    private static Decoded decode(String id, Models.Quantization quant, boolean fold, boolean q8, boolean staged) {
        String backend = "lightllm.tuning." + Devices.backendName(id) + ".";
        Map<String, String> tuning = Map.of(backend + "matmul.gemv_fold", fold ? "1" : "0", backend + "matmul.gemv_gated", "1",
                backend + "matmul.int8_q8", q8 ? "1" : "0", backend + "matmul.int4_q8", "0", backend + "matmul.gemv_fold_q8", q8 ? "1" : "0",
                backend + "matmul.q8_staged_int8", staged ? "1" : "0", backend + "matmul.q8_staged_int4", "0");
        Decoded[] result = new Decoded[1];
        TestProperties.with(tuning, () -> result[0] = decodeWithTuning(id, quant));
        return result[0];
    }

    private static Decoded decodeWithTuning(String id, Models.Quantization quant) {
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture("llama"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get(id), quant, true)) {
            return decode(model);
        }
    }

    /** {@link #PROMPT}'s prefill and {@link #STEPS} greedy decode steps at batch 1; the kernels of the first decode step. */
    private static Decoded decode(CausalLM model) {
        try (TokenKvPool pool = model.newKvPool(64, DType.F32);
             RequestTokenTable table = new RequestTokenTable(model.device(), 1, 32)) {
            int vocab = model.vocabSize();
            int row = table.acquire();
            int[] pos = java.util.stream.IntStream.range(0, PROMPT.length).toArray();
            float[] last = model.forwardToHost(new NopadBatch(true, PROMPT, pos, pool.alloc(PROMPT.length), new int[] {row}, new int[] {0},
                    new int[] {PROMPT.length}, new int[] {PROMPT.length}), pool, table).toArray();
            int[] tokens = new int[STEPS];
            float[][] logits = new float[STEPS][];
            int length = PROMPT.length;
            List<String> kernels = List.of();
            for (int s = 0; s < STEPS; s++) {
                tokens[s] = argmax(last);
                // the first decode step's kernels, by name: it runs launch by launch (later ones may replay a recording)
                model.device().setProfiling(s == 0);
                last = model.forwardToHost(new NopadBatch(false, new int[] {tokens[s]}, new int[] {length}, pool.alloc(1), new int[] {row},
                        new int[] {0}, new int[] {1}, new int[] {length + 1}), pool, table).toArray();
                if (s == 0) {
                    kernels = model.device().drainProfile().stream().map(t -> t.name()).toList();
                    model.device().setProfiling(false);
                }
                logits[s] = last;
                length++;
            }
            return new Decoded(tokens, logits, kernels);
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
