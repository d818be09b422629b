package io.lightllm.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Weight-only int8 and int4 ({@code --quant int8|int4}) on stories260K, the tiny llama fixture and a dummy Llama whose rows hold int4 blocks. */
class LlamaInt8Test {
    private static final String[] LINEARS = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

    @TempDir
    Path tmp;

    static Path checkpoint(String name) {
        return name.equals("stories260K") ? SharedData.model(name) : SharedData.tinyFixture(name);
    }

    /**
     * Expected relative error of one quantised matmul: a weight's rounding error is uniform in ±s/2
     * (int8: s = row max / 127; int4: s = max of a group of 128 / 7), RMS s/√12; rows (groups) of
     * 64-512 roughly Gaussian values have max/RMS ≈ √(2 ln n) ≈ 3, so the RMS error relative to the
     * weights, and to the output of a dot product with an unrelated input, is ≈ 3 / (127 √12) ≈ 0.7%
     * for int8 and 3 / (7 √12) ≈ 12% for int4.
     */
    private static double matmulRelativeError(Models.Quantization quant) {
        return 3 / ((quant == Models.Quantization.INT8 ? 127 : 7) * Math.sqrt(12));
    }

    /**
     * Two properties, on one quantised run per checkpoint:
     *
     * <p>1. The quantised path computes the model whose weights are the dequantised values: a plain
     * f32 checkpoint holding round(w / s) * s (computed here, independently of the loader) gives the
     * same logits, within the f32 bound of two summation orders (1e-4, see LlamaVariantsTest), and the
     * same greedy ids. The head is quantised too (a copy, when tied); the input embedding is not.
     *
     * <p>2. The quantised model stays close to transformers' full-precision one. Bound on the
     * last-position logits: the head's own error plus one error per attention and MLP block
     * entering the residual stream, independent, so √(1 + 2·layers) · (0.7% or 12%) of the logits'
     * spread (RMS); a further 2x covers the gain of the norms and activations, which the estimate
     * ignores. That bounds the RMS of the logit error; the largest of 512 is ≈ 3 RMS. int8 asserts
     * the largest; int4, whose errors are 17x larger, the RMS. Measured (printed): int8 0.16-0.23 max
     * on stories260K (bound ≈ 0.7-1.2), 0.028-0.039 on tiny llama (bound ≈ 0.06). Greedy ids: while
     * the model's top-1 leads its top-2 by more than twice the largest error, no error within the bound
     * can change the choice, so greedy must equal the golden ids up to the first step whose margin is
     * smaller; the steps that agree before the first difference are printed.
     */
    @ParameterizedTest
    @CsvSource({"stories260K, INT8", "llama, INT8", "stories260K, INT4", "llama, INT4"})
    void quantisedComputesTheDequantisedModelCloseToTransformers(String name, Models.Quantization quant) throws IOException {
        Path source = checkpoint(name);
        List<Golden> cases = Golden.read(source);
        GreedyRunner quantised = run(source, quant, cases);
        GreedyRunner reference = run(dequantisedCheckpoint(source, quant), Models.Quantization.NONE, cases);
        int layers = DerivedCheckpoint.of(source).layers();
        for (int c = 0; c < cases.size(); c++) {
            String what = name + " " + quant + " case " + c;
            LlamaGoldenTest.assertLogitsClose(reference.firstLogits[c], quantised.firstLogits[c], 1e-4f, what + " vs dequantised f32");
            assertArrayEquals(reference.generated[c], quantised.generated[c], what + " greedy ids vs dequantised f32");

            float[] golden = cases.get(c).lastLogits();
            float rmsBound = (float) (2 * matmulRelativeError(quant) * Math.sqrt(1 + 2 * layers) * rms(golden));
            float bound = 3 * rmsBound;
            double rmsError = rmsDifference(golden, quantised.firstLogits[c]);
            if (quant == Models.Quantization.INT8) {
                LlamaGoldenTest.assertLogitsClose(golden, quantised.firstLogits[c], bound, what + " vs transformers");
            } else {
                assertTrue(rmsError <= rmsBound, what + ": RMS logit error " + rmsError + " > " + rmsBound);
            }
            int safe = 0;
            while (safe < quantised.margins[c].length && quantised.margins[c][safe] > 2 * bound) {
                safe++;
            }
            int agree = 0;
            while (agree < quantised.generated[c].length && quantised.generated[c][agree] == cases.get(c).greedyIds()[agree]) {
                agree++;
            }
            System.out.printf("%s: logit error RMS %.4f (bound %.3f), max bound %.3f, greedy ids agree for %d of %d steps (%d guaranteed)%n",
                    what, rmsError, rmsBound, bound, agree, quantised.margins[c].length, safe);
            int[] expected = Arrays.copyOf(cases.get(c).greedyIds(), safe);
            assertArrayEquals(expected, Arrays.copyOf(quantised.generated[c], safe), what + ": greedy ids of the " + safe
                    + " steps whose margin exceeds 2 x " + bound);
        }
    }

    /**
     * Int4 decode batches through the tensor-core GEMV ({@code Int4TensorGemv}, which CUDA takes at 2-8 rows) compute the
     * same model as the JVM's int4 GEMV: a dummy Llama whose matrices have k = 128 and 256 (the fixtures' 64 and 160 are
     * no multiple of an int4 block), four prompts, so every decode step multiplies 4 rows (its q/k/v, o, gated gate/up
     * and down projections and the head) with the JVM tuned to take that kernel. It rounds the activations to bf16 (the
     * GEMV keeps f32): a relative 2^-9 each, uniform, so a matmul's output moves by an RMS 2^-9 / √3 of its own RMS;
     * bounded as the quantisation error above, √(1 + 2·layers) blocks, 2x for the norms, on the logits' RMS; greedy ids
     * equal while the reference's margin exceeds twice the largest error (3 RMS).
     */
    @org.junit.jupiter.api.Test
    void int4DecodeBatchesOnTensorCoresComputeTheSameModel() throws IOException {
        Path config = DummyLlamaConfig.write(tmp, 128, 256, 4, 2, "float32");
        int[][] prompts = {{1, 5, 9, 17, 33, 2}, {1, 3}, {1, 100, 200, 300, 400, 7, 8, 9}, {1, 42, 43}};
        int steps = 8;
        GreedyRunner reference, tensorCores;
        try (CausalLM model = Models.dummy(config.toString(), DType.F32, Devices.get("jvm"), Models.Quantization.INT4, true)) {
            reference = new GreedyRunner(model, prompts, steps, DType.F32);
            // as CUDA runs it: up to 8 rows, a block's activations loaded at once
            String max = "lightllm.tuning.jvm.matmul.int4_mma_gemv_max_m", hoist = "lightllm.tuning.jvm.matmul.int4_mma_gemv_hoist";
            System.setProperty(max, "8");
            System.setProperty(hoist, "1");
            try {
                tensorCores = new GreedyRunner(model, prompts, steps, DType.F32);
            } finally {
                System.clearProperty(max);
                System.clearProperty(hoist);
            }
        }
        double rmsBound = 2 * 0x1p-9 / Math.sqrt(3) * Math.sqrt(1 + 2 * 2);
        int checked = 0;
        for (int r = 0; r < prompts.length; r++) {
            // the prefill's projections take all 19 rows (another kernel both times); its head takes the 4 last rows
            double rmsError = rmsDifference(reference.firstLogits[r], tensorCores.firstLogits[r]);
            assertTrue(rmsError <= rmsBound * rms(reference.firstLogits[r]), "prompt " + r + ": first logits' RMS error " + rmsError);
            assertTrue(rmsError > 0, "prompt " + r + ": the head did not take the tensor-core GEMV (its rounding is missing)");
            int safe = 0;
            while (safe < steps && reference.margins[r][safe] > 2 * 3 * rmsBound * rms(reference.firstLogits[r])) {
                safe++;
            }
            checked += safe;
            assertArrayEquals(Arrays.copyOf(reference.generated[r], safe), Arrays.copyOf(tensorCores.generated[r], safe),
                    "prompt " + r + ": greedy ids of the " + safe + " steps whose margin exceeds the bound");
            // while the ids agree, each step's top-1 minus top-2 logit moves by at most twice the largest logit error
            for (int step = 1; step < safe; step++) {
                double moved = Math.abs(reference.margins[r][step] - tensorCores.margins[r][step]);
                assertTrue(moved <= 2 * 3 * rmsBound * rms(reference.firstLogits[r]), "prompt " + r + " step " + step + ": margin moved " + moved);
            }
        }
        System.out.printf("int4 decode batches on tensor cores: %d greedy steps of %d beyond the bound, all equal%n", checked, prompts.length * steps);
        assertTrue(checked >= prompts.length * steps / 2, "the dummy model's margins leave too few steps to check: " + checked);
    }

    /**
     * A prefill whose int8 and int4 matmuls dequantise their rows for the bf16 GEMM ({@code matmul.dequant_min_m=17}, as CUDA
     * runs them; the GEMM on tensor cores, emulated on the JVM) takes bf16 activations from the norms, the attention and the
     * gated activation ({@code Matmul.int8ActivationType}, {@code QuantMatmul.activationType}), where with
     * {@code matmul.narrow_inputs=0} each matmul's f32 activations are narrowed to bf16 in a launch of their own: the same
     * rounding, so the same logits and greedy ids, bit for bit. Two prompts of 20 and 18 tokens: 38 rows a prefill matmul.
     * (OpenCL, which has no GEMM to hand dequantised rows to, keeps its kernels and f32 both times.)
     */
    @ParameterizedTest
    @ValueSource(strings = {"INT8", "INT4"})
    void dequantisedPrefillTakesSixteenBitActivations(Models.Quantization quant) throws IOException {
        Path config = DummyLlamaConfig.write(tmp, 128, 256, 4, 2, "bfloat16");
        int[][] prompts = {{1, 5, 9, 17, 33, 2, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 400},
            {1, 3, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85}};
        for (String deviceId : io.lightllm.testing.TestDevices.jvmAndAccelerators()) {
            String backend = "lightllm.tuning." + Devices.backendName(deviceId) + ".matmul.";
            GreedyRunner[] runs = new GreedyRunner[2];
            for (int narrow = 0; narrow < 2; narrow++) {
                int at = narrow;
                // the tensor-core GEMM over codes off (CUDA takes it to 128 rows), so that 38 rows take the dequantised GEMM everywhere
                java.util.Map<String, String> tuning = java.util.Map.of(backend + "tensor_cores", "1", backend + "dequant_min_m", "17",
                        backend + "narrow_inputs", String.valueOf(narrow), backend + "quant_mma_max_m", "0");
                io.lightllm.testing.TestProperties.with(tuning, () -> {
                    io.lightllm.tornado.runtime.Device device = Devices.get(deviceId);
                    // OpenCL has no vendor or JVM GEMM to hand dequantised rows to: it keeps its own kernels (and f32)
                    boolean dequantises = io.lightllm.kernels.DequantizedGemm.applies(device, 38, 128);
                    assertTrue(dequantises || !deviceId.equals("jvm"), "the JVM should dequantise 38 rows under this tuning");
                    DType expected = at == 1 && dequantises ? DType.BF16 : DType.F32;
                    DType taken = quant == Models.Quantization.INT8 ? io.lightllm.kernels.Matmul.int8ActivationType(device, 38, 128)
                            : io.lightllm.kernels.QuantMatmul.activationType(device, io.lightllm.kernels.QuantFormat.INT4, 38, 128);
                    assertEquals(expected, taken, deviceId + ": the dequantised GEMM's activation type");
                    try (CausalLM model = Models.dummy(config.toString(), DType.BF16, device, quant, true)) {
                        runs[at] = new GreedyRunner(model, prompts, 6, DType.F32);
                    }
                });
            }
            for (int c = 0; c < prompts.length; c++) {
                assertArrayEquals(runs[0].firstLogits[c], runs[1].firstLogits[c], deviceId + " " + quant + " prompt " + c + ": prefill logits");
                assertArrayEquals(runs[0].generated[c], runs[1].generated[c], deviceId + " " + quant + " prompt " + c + ": greedy ids");
            }
        }
    }

    static double rmsDifference(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - b[i]) * (double) (a[i] - b[i]);
        }
        return Math.sqrt(s / a.length);
    }

    /** Linear layers become int8 (1 byte per weight and an f32 scale per row): what the device holds. */
    @ParameterizedTest
    @ValueSource(strings = {"stories260K", "llama"})
    void int8ShrinksTheLinearWeights(String name) {
        try (ModelFiles files = ModelFiles.open(checkpoint(name), LoadOptions.quietly());
             CausalLM full = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true);
             CausalLM int8 = Models.load(files, Devices.get("jvm"), Models.Quantization.INT8, true)) {
            ModelConfig c = files.config();
            long linearWeights = 0, linearRows = 0;
            int hidden = c.hiddenSize(), qDim = c.numAttentionHeads() * c.headDim(), kvDim = c.numKeyValueHeads() * c.headDim();
            int[][] shapes = {{qDim, hidden}, {kvDim, hidden}, {kvDim, hidden}, {hidden, qDim},
                {c.intermediateSize(), hidden}, {c.intermediateSize(), hidden}, {hidden, c.intermediateSize()}};
            for (int[] s : shapes) {
                linearWeights += (long) s[0] * s[1] * c.numHiddenLayers();
                linearRows += (long) s[0] * c.numHiddenLayers();
            }
            linearWeights += (long) c.vocabSize() * hidden;
            linearRows += c.vocabSize();
            long stored = files.weights().get("model.embed_tokens.weight").type().dtype().bytes();
            // tied: the head becomes an int8 copy while the embedding stays, so the head is added, not replaced
            long replaced = c.tieWordEmbeddings() ? linearWeights - (long) c.vocabSize() * hidden : linearWeights;
            long expected = full.weightBytes() - replaced * stored + linearWeights + linearRows * Float.BYTES;
            assertEquals(expected, int8.weightBytes(), name + ": int8 weight bytes");
            System.out.printf("%s: weights %d bytes (%s), %d bytes with --quant int8 (%.0f%% saved)%n", name, full.weightBytes(),
                    c.dtype(), int8.weightBytes(), 100.0 * (full.weightBytes() - int8.weightBytes()) / full.weightBytes());
        }
    }

    private Path dequantisedCheckpoint(Path source, Models.Quantization quant) throws IOException {
        DerivedCheckpoint dequantised = DerivedCheckpoint.of(source);
        for (int l = 0; l < dequantised.layers(); l++) {
            for (String linear : LINEARS) {
                dequantise(dequantised, "model.layers." + l + "." + linear + ".weight", quant);
            }
        }
        String embed = "model.embed_tokens.weight";
        if (!dequantised.has("lm_head.weight")) {
            dequantised.put("lm_head.weight", dequantised.shape(embed), dequantised.floats(embed));
        }
        dequantised.config.put("tie_word_embeddings", false);
        dequantise(dequantised, "lm_head.weight", quant);
        return dequantised.write(tmp);
    }

    private static double rms(float[] v) {
        double mean = 0, sq = 0;
        for (float x : v) {
            mean += x;
        }
        mean /= v.length;
        for (float x : v) {
            sq += (x - mean) * (x - mean);
        }
        return Math.sqrt(sq / v.length);
    }

    /** Symmetric rounding to int8 per row (s = max / 127) or to int4 per group of 128 along the row (s = max / 7). */
    private static void dequantise(DerivedCheckpoint c, String name, Models.Quantization quant) {
        long[] shape = c.shape(name);
        int rows = (int) shape[0], cols = (int) shape[1];
        int group = quant == Models.Quantization.INT8 ? cols : 128, levels = quant == Models.Quantization.INT8 ? 127 : 7;
        float[] w = c.floats(name);
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < cols; g += group) {
                int end = Math.min(cols, g + group);
                float max = 0;
                for (int i = g; i < end; i++) {
                    max = Math.max(max, Math.abs(w[r * cols + i]));
                }
                float s = max / levels;
                for (int i = g; i < end; i++) {
                    w[r * cols + i] = s == 0 ? 0 : (float) Math.rint(w[r * cols + i] / s) * s;
                }
            }
        }
        c.put(name, shape, w);
    }

    private static GreedyRunner run(Path dir, Models.Quantization quant, List<Golden> cases) {
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), quant, true)) {
            int[][] prompts = cases.stream().map(Golden::inputIds).toArray(int[][]::new);
            return new GreedyRunner(model, prompts, cases.getFirst().greedyIds().length, DType.F32);
        }
    }
}
