package io.lightllm.models.gguf;

import static io.lightllm.models.llama.LlamaGoldenTest.assertLogitsClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.GreedyRunner;
import io.lightllm.models.weights.SafetensorsWriter;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.TensorType;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * GGUF files with block-quantised matrices, written by the test as llama-quantize writes them
 * (llama.cpp's reference quantisers), load packed and generate:
 *
 * <p>1. The packed kernels compute the model the file holds: the same file with each quantised matrix
 * written back as its dequantised F32 values gives the same logits (1e-4, two f32 summation orders)
 * and greedy ids.
 *
 * <p>2. The quantised model stays near the unquantised one: the RMS of the last-position logit error
 * is within 2 √(1 + 2 layers) r RMS(logits), r the format's RMS weight error relative to the weights'
 * RMS (QuantFormatTest: Q8_0 0.0055 measured, 0.01 here; Q4_0 0.12, Q4_K 0.12, Q6_K 0.03), the same
 * estimate as LlamaInt8Test's. On stories260K, Q8_0 must also keep transformers' greedy ids for every
 * step whose top-1 margin exceeds twice three times that bound (the largest of 512 logit errors).
 *
 * <p>The fixtures' matrices are 64, 160 and 172 columns wide: Q4_0 and Q8_0 blocks (32) fit all but
 * stories260K's down_proj (172: F16, llama.cpp's fallback); the K formats need 256, so they run on a
 * llama of the tiny fixture's vocabulary and tokenizer made 256 wide with random weights
 * ({@link #wideLlama}), whose reference is its own F32 file. "Q4_K_M" mixes as llama.cpp's Q4_K_M
 * does: Q6_K for the head, attn_v and ffn_down, Q4_K elsewhere (q, k and v then load as three projections, not
 * one); "Q4_K_MIXED" also keeps ffn_up in Q6_K, so that gate and up load as two projections.
 */
public class GgufQuantizedTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} as {1}")
    @CsvSource({"llama, Q8_0, 0.01", "llama, Q4_0, 0.12", "stories260K, Q8_0, 0.01", "stories260K, Q4_0, 0.12",
        "wide, Q4_K_M, 0.12", "wide, Q4_K_MIXED, 0.12", "wide, Q6_K, 0.03", "wide, Q5_K, 0.06", "wide, Q4_0, 0.12"})
    void quantisedFilesComputeTheirDequantisedModelNearTheOriginal(String model, String type, double relativeError) throws IOException {
        Path hf = model.equals("wide") ? wideLlama(Files.createDirectories(dir.resolve("hf"))) : model.equals("stories260K")
                ? SharedData.model(model) : SharedData.tinyFixture(model);
        Function<String, QuantFormat> policy = policy(type);
        List<Golden> cases = Golden.read(model.equals("wide") ? SharedData.tinyFixture("llama") : hf);
        Path quantised = dir.resolve("q.gguf"), dequantised = dir.resolve("dq.gguf"), original = dir.resolve("f32.gguf");
        GgufArchitecturesTest.convert(hf, "llama", quantised, policy, false);
        GgufArchitecturesTest.convert(hf, "llama", dequantised, policy, true);
        GreedyRunner q = run(quantised, cases, model + " " + type);
        GreedyRunner dq = run(dequantised, cases, null);
        float[][] reference;
        int[][] referenceIds;
        if (model.equals("wide")) {
            GgufArchitecturesTest.convert(hf, "llama", original, name -> null, false);
            GreedyRunner f32 = run(original, cases, null);
            reference = f32.firstLogits;
            referenceIds = f32.generated;
        } else {
            reference = cases.stream().map(Golden::lastLogits).toArray(float[][]::new);
            referenceIds = cases.stream().map(Golden::greedyIds).toArray(int[][]::new);
        }
        int layers = JsonFields.read(hf.resolve("config.json")).path("num_hidden_layers").asInt();
        for (int c = 0; c < cases.size(); c++) {
            String what = model + " " + type + " case " + c;
            assertLogitsClose(dq.firstLogits[c], q.firstLogits[c], 1e-4f, what + " vs its dequantised F32 file");
            assertArrayEquals(dq.generated[c], q.generated[c], what + " greedy ids vs its dequantised F32 file");
            double rmsBound = 2 * Math.sqrt(1 + 2 * layers) * relativeError * rms(reference[c]);
            double rmsError = rmsDifference(reference[c], q.firstLogits[c]);
            int agree = 0;
            while (agree < q.generated[c].length && q.generated[c][agree] == referenceIds[c][agree]) {
                agree++;
            }
            System.out.printf("%s: logit error RMS %.4f (bound %.4f) of logits RMS %.3f; greedy agrees with the unquantised model for %d of %d steps%n",
                    what, rmsError, rmsBound, rms(reference[c]), agree, q.generated[c].length);
            assertTrue(rmsError <= rmsBound, what + ": RMS logit error " + rmsError + " > " + rmsBound);
            if (model.equals("stories260K") && type.equals("Q8_0")) {
                int safe = 0;
                while (safe < q.margins[c].length && q.margins[c][safe] > 2 * 3 * rmsBound) {
                    safe++;
                }
                assertArrayEquals(Arrays.copyOf(cases.get(c).greedyIds(), safe), Arrays.copyOf(q.generated[c], safe), what + " guaranteed greedy ids");
            }
        }
    }

    /**
     * Packed matrices split over tensor-parallel ranks: a Q8_0 file's columns cut on its 32-element blocks
     * (o and down at tp 2 keep their blocks), a Q4_K_M file's cut inside its 256-element super-blocks (those
     * parts dequantised), and rows of blocks for q/k/v, gate/up and the head. Each split model computes what the
     * same file computes on one device (only the summation order of o and down changes: logits 1e-4, greedy ids equal).
     */
    @ParameterizedTest(name = "{0} at tp 2")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"Q8_0", "Q4_K_M"})
    void packedFilesSplitOverRanksComputeTheSameModel(String type) throws IOException {
        Path hf = wideLlama(Files.createDirectories(dir.resolve("hf")));
        Path gguf = dir.resolve("q.gguf");
        GgufArchitecturesTest.convert(hf, "llama", gguf, policy(type), false);
        List<Golden> cases = Golden.read(SharedData.tinyFixture("llama"));
        int[][] prompts = cases.stream().map(Golden::inputIds).toArray(int[][]::new);
        try (ModelFiles files = ModelFiles.open(gguf, LoadOptions.quietly());
             CausalLM one = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, io.lightllm.models.parallel.RankDevices.resolve("jvm", 2), Models.Quantization.NONE, true)) {
            GreedyRunner a = new GreedyRunner(one, prompts, 8, DType.F32), b = new GreedyRunner(split, prompts, 8, DType.F32);
            for (int c = 0; c < prompts.length; c++) {
                assertLogitsClose(a.firstLogits[c], b.firstLogits[c], 1e-4f, type + " at tp 2, case " + c);
                assertArrayEquals(a.generated[c], b.generated[c], type + " at tp 2, case " + c + " greedy ids");
            }
        }
    }

    /** Which matrices become which format, by GGUF name; norms and other vectors stay as they are. */
    public static Function<String, QuantFormat> policy(String type) {
        if (type.equals("Q4_K_M")) {
            return name -> name.equals("output.weight") || name.endsWith("attn_v.weight") || name.endsWith("ffn_down.weight")
                    ? QuantFormat.Q6_K : QuantFormat.Q4_K;
        }
        if (type.equals("Q4_K_MIXED")) {
            return name -> name.equals("output.weight") || name.endsWith("attn_v.weight") || name.endsWith("ffn_down.weight")
                    || name.endsWith("ffn_up.weight") ? QuantFormat.Q6_K : QuantFormat.Q4_K;
        }
        QuantFormat f = QuantFormat.valueOf(type);
        return name -> f;
    }

    private static GreedyRunner run(Path gguf, List<Golden> cases, String packedWhat) {
        try (ModelFiles files = ModelFiles.open(gguf, LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            if (packedWhat != null) {
                long f32Bytes = files.weights().names().stream().mapToLong(n -> files.weights().get(n).elementCount() * 4).sum();
                System.out.printf("%s: %d bytes on the device, %d as F32%n", packedWhat, model.weightBytes(), f32Bytes);
            }
            return new GreedyRunner(model, cases.stream().map(Golden::inputIds).toArray(int[][]::new), 8, DType.F32);
        }
    }

    /**
     * A llama of the tiny fixture's config, vocabulary and tokenizer, widened so that every matrix
     * row is a whole number of 256-element blocks: hidden 256, intermediate 512, 4 heads of 64 (2 kv
     * heads), 2 layers, an untied head; weights Gaussian (σ 0.05; norms 1 ± 0.1), F32, seeded.
     */
    public static Path wideLlama(Path out) throws IOException {
        Path fixture = SharedData.tinyFixture("llama");
        ObjectNode config = (ObjectNode) JsonFields.read(fixture.resolve("config.json"));
        int hidden = 256, inter = 512, heads = 4, kvHeads = 2, headDim = 64, layers = 2, vocab = config.path("vocab_size").asInt();
        config.put("hidden_size", hidden).put("intermediate_size", inter).put("num_attention_heads", heads).put("num_key_value_heads", kvHeads)
                .put("head_dim", headDim).put("num_hidden_layers", layers).put("tie_word_embeddings", false).put("torch_dtype", "float32")
                .put("dtype", "float32");
        Random rnd = new Random(17);
        Arena arena = Arena.ofAuto();
        List<Tensor> tensors = new ArrayList<>();
        Function<long[], MemorySegment> random = shape -> {
            long n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
            MemorySegment s = arena.allocate(4 * n, 8);
            for (long i = 0; i < n; i++) {
                s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, shape.length == 1 ? 1 + 0.1f * (float) rnd.nextGaussian()
                        : 0.05f * (float) rnd.nextGaussian());
            }
            return s;
        };
        java.util.function.BiConsumer<String, long[]> add = (name, shape) -> tensors.add(new Tensor(name, TensorType.F32, shape, random.apply(shape)));
        add.accept("model.embed_tokens.weight", new long[] {vocab, hidden});
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            add.accept(p + "input_layernorm.weight", new long[] {hidden});
            add.accept(p + "post_attention_layernorm.weight", new long[] {hidden});
            add.accept(p + "self_attn.q_proj.weight", new long[] {heads * headDim, hidden});
            add.accept(p + "self_attn.k_proj.weight", new long[] {kvHeads * headDim, hidden});
            add.accept(p + "self_attn.v_proj.weight", new long[] {kvHeads * headDim, hidden});
            add.accept(p + "self_attn.o_proj.weight", new long[] {hidden, heads * headDim});
            add.accept(p + "mlp.gate_proj.weight", new long[] {inter, hidden});
            add.accept(p + "mlp.up_proj.weight", new long[] {inter, hidden});
            add.accept(p + "mlp.down_proj.weight", new long[] {hidden, inter});
        }
        add.accept("model.norm.weight", new long[] {hidden});
        add.accept("lm_head.weight", new long[] {vocab, hidden});
        for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(fixture.resolve(f), out.resolve(f));
        }
        Files.writeString(out.resolve("config.json"), config.toPrettyString());
        SafetensorsWriter.write(out.resolve("model.safetensors"), tensors);
        return out;
    }

    static double rms(float[] v) {
        double mean = Arrays.stream(toDoubles(v)).average().orElse(0), sq = 0;
        for (float x : v) {
            sq += (x - mean) * (x - mean);
        }
        return Math.sqrt(sq / v.length);
    }

    private static double[] toDoubles(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    static double rmsDifference(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - b[i]) * (double) (a[i] - b[i]);
        }
        return Math.sqrt(s / a.length);
    }
}
