package io.lightllm.models.gguf;

import static io.lightllm.models.llama.LlamaGoldenTest.assertMatchesGolden;
import static io.lightllm.models.llama.LlamaGoldenTest.tolerance;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.weights.SafetensorsWeights;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.TensorType;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.testing.GgmlQuantizer;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * GGUF files of the architectures llama.cpp writes, made from the tiny fixtures the way its
 * convert_hf_to_gguf.py does (tensor names of gguf-py's table, written out here independently of
 * {@link GgufTensorNames}; llama's q/k rows permuted, a mixture's experts stacked, BLOOM's q/k/v
 * regrouped, the byte-level BPE vocabulary and merges as tokenizer.ggml.*), then loaded like any
 * downloaded file: the tokenizer must give transformers' input ids and the model the golden logits
 * and greedy tokens of the HF fixture.
 */
public class GgufArchitecturesTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} as GGUF {1}")
    @CsvSource({"bloom, bloom, shared", "starcoder, starcoder, shared", "stablelm, stablelm, shared", "qwen2, qwen2, shared",
            "mixtral, llama, shared", "qwen3, qwen3, made", "qwen, qwen, made"})
    void convertedFixtureMatchesGolden(String fixture, String ggufArch, String where) throws IOException {
        Path hf = where.equals("made") ? SharedData.madeFixture(fixture) : SharedData.tinyFixture(fixture);
        Path gguf = dir.resolve(fixture + ".gguf");
        convert(hf, ggufArch, gguf);
        List<Golden> cases = Golden.read(hf);
        try (ModelFiles files = ModelFiles.open(gguf, LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            for (Golden g : cases) {
                assertArrayEquals(g.inputIds(), files.tokenizer().encode(g.prompt(), true), fixture + " GGUF tokenizer: '" + g.prompt() + "'");
            }
            assertMatchesGolden(model, cases, tolerance(files.config().dtype()), fixture + " as GGUF");
        }
    }

    /** gguf-py's names of the HF tensors of these fixtures (tensor_mapping.py), per layer part. */
    private static final Map<String, String> LAYER_PARTS = Map.ofEntries(
            Map.entry("input_layernorm", "attn_norm"), Map.entry("ln_1", "attn_norm"),
            Map.entry("post_attention_layernorm", "ffn_norm"), Map.entry("ln_2", "ffn_norm"),
            Map.entry("self_attn.q_proj", "attn_q"), Map.entry("self_attn.k_proj", "attn_k"), Map.entry("self_attn.v_proj", "attn_v"),
            Map.entry("self_attn.o_proj", "attn_output"), Map.entry("self_attention.dense", "attn_output"),
            Map.entry("attn.c_proj", "attn_output"), Map.entry("self_attention.query_key_value", "attn_qkv"),
            Map.entry("attn.c_attn", "attn_qkv"), Map.entry("mlp.gate_proj", "ffn_gate"), Map.entry("mlp.up_proj", "ffn_up"),
            Map.entry("mlp.dense_h_to_4h", "ffn_up"), Map.entry("mlp.c_fc", "ffn_up"), Map.entry("mlp.down_proj", "ffn_down"),
            Map.entry("mlp.dense_4h_to_h", "ffn_down"), Map.entry("mlp.c_proj", "ffn_down"),
            Map.entry("mlp.w1", "ffn_up"), Map.entry("mlp.w2", "ffn_gate"), // Qwen v1's
            Map.entry("block_sparse_moe.gate", "ffn_gate_inp"),
            Map.entry("self_attn.q_norm", "attn_q_norm"), Map.entry("self_attn.k_norm", "attn_k_norm")); // Qwen3's
    private static final Map<String, String> GLOBAL = Map.of("model.embed_tokens", "token_embd", "transformer.word_embeddings", "token_embd",
            "transformer.wte", "token_embd", "transformer.wpe", "position_embd", "transformer.word_embeddings_layernorm", "token_embd_norm",
            "model.norm", "output_norm", "transformer.ln_f", "output_norm", "lm_head", "output");
    private static final Map<String, String> EXPERT_PARTS = Map.of("w1", "ffn_gate_exps", "w3", "ffn_up_exps", "w2", "ffn_down_exps");
    private static final Pattern LAYER = Pattern.compile("(?:model\\.layers|transformer\\.h)\\.(\\d+)\\.(.+)\\.(weight|bias)");
    private static final Pattern EXPERT = Pattern.compile("model\\.layers\\.(\\d+)\\.block_sparse_moe\\.experts\\.(\\d+)\\.(w\\d)\\.weight");

    static void convert(Path hf, String arch, Path out) throws IOException {
        convert(hf, arch, out, name -> null, false);
    }

    /**
     * {@link #convert} with the matrices {@code quantize} names (by GGUF name) quantised by llama.cpp's
     * reference quantisers ({@link GgmlQuantizer}), as llama-quantize does without an importance matrix;
     * a matrix whose rows are not whole blocks falls back to F16 (llama.cpp's last resort). With
     * {@code dequantised}, the quantised values are written back as F32: the model the file computes.
     */
    public static void convert(Path hf, String arch, Path out, Function<String, QuantFormat> quantize, boolean dequantised) throws IOException {
        JsonNode c = JsonFields.read(hf.resolve("config.json"));
        int hidden = c.path(c.has("n_embd") ? "n_embd" : "hidden_size").asInt();
        int heads = c.path(c.has("n_head") ? "n_head" : "num_attention_heads").asInt();
        int layers = c.path(c.has("n_layer") ? "n_layer" : "num_hidden_layers").asInt();
        int kvHeads = c.path("num_key_value_heads").asInt(heads);
        int headDim = c.path("head_dim").asInt(c.path("kv_channels").asInt(hidden / heads));
        GgufTestWriter w = new GgufTestWriter();
        String p = arch + ".";
        // Qwen v1's intermediate_size is twice its MLP width, which is what llama.cpp writes
        int ffn = c.path("intermediate_size").asInt(c.path("n_inner").asInt(4 * hidden)) / (arch.equals("qwen") ? 2 : 1);
        w.string("general.architecture", arch).u32(p + "embedding_length", hidden).u32(p + "block_count", layers)
                .u32(p + "feed_forward_length", ffn)
                .u32(p + "attention.head_count", heads).u32(p + "attention.head_count_kv", kvHeads)
                .u32(p + "attention.key_length", headDim).u32(p + "attention.value_length", headDim)
                .u32(p + "context_length", c.path(c.has("n_positions") ? "n_positions" : c.has("seq_length") ? "seq_length"
                        : "max_position_embeddings").asInt(hidden));
        if (c.has("rms_norm_eps") || arch.equals("qwen")) {
            w.f32(p + "attention.layer_norm_rms_epsilon", (float) c.path(c.has("rms_norm_eps") ? "rms_norm_eps" : "layer_norm_epsilon").asDouble());
        } else {
            w.f32(p + "attention.layer_norm_epsilon", (float) c.path(c.has("layer_norm_eps") ? "layer_norm_eps" : "layer_norm_epsilon").asDouble());
        }
        JsonNode rope = c.path("rope_parameters");
        if (rope.has("rope_theta")) {
            w.f32(p + "rope.freq_base", (float) rope.path("rope_theta").asDouble());
            w.u32(p + "rope.dimension_count", (int) (headDim * rope.path("partial_rotary_factor").asDouble(1.0)));
        }
        if (c.has("num_local_experts")) {
            w.u32(p + "expert_count", c.path("num_local_experts").asInt()).u32(p + "expert_used_count", c.path("num_experts_per_tok").asInt());
        }
        tokenizer(hf, w);
        try (WeightSource weights = SafetensorsWeights.open(hf, LoadOptions.quietly())) {
            Map<String, List<Tensor>> experts = new TreeMap<>();
            for (String name : weights.names()) {
                Tensor t = weights.get(name);
                Matcher e = EXPERT.matcher(name);
                if (e.matches()) {
                    experts.computeIfAbsent("blk." + e.group(1) + "." + EXPERT_PARTS.get(e.group(3)) + ".weight", k -> new ArrayList<>()).add(t);
                    continue;
                }
                String gguf = ggufName(name);
                byte[] data = bytes(t);
                if (arch.equals("llama") && (gguf.endsWith("attn_q.weight") || gguf.endsWith("attn_k.weight"))) {
                    data = permuteRotaryHalves(data, gguf.endsWith("attn_q.weight") ? heads : kvHeads, headDim, rowBytes(t));
                }
                if (arch.equals("bloom") && gguf.contains("attn_qkv")) {
                    data = qkvGrouped(data, heads, headDim, rowBytes(t));
                }
                QuantFormat format = t.rank() == 2 ? quantize.apply(gguf) : null;
                if (format == null) {
                    w.tensor(gguf, ggmlType(t.type()), dims(t.shape()), data);
                } else {
                    writeQuantised(w, gguf, t, data, format, dequantised);
                }
                if (arch.equals("bloom") && gguf.equals("token_embd.weight")) {
                    w.tensor("output.weight", ggmlType(t.type()), dims(t.shape()), data); // convert_hf_to_gguf's BloomModel
                }
            }
            for (Map.Entry<String, List<Tensor>> e : experts.entrySet()) { // experts in order: names sort 0..3 for these fixtures
                List<Tensor> parts = e.getValue();
                java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
                for (Tensor t : parts) {
                    all.write(bytes(t));
                }
                long[] shape = parts.getFirst().shape();
                w.tensor(e.getKey(), ggmlType(parts.getFirst().type()), new long[] {shape[1], shape[0], parts.size()}, all.toByteArray());
            }
        }
        w.write(out);
    }

    private static void writeQuantised(GgufTestWriter w, String gguf, Tensor t, byte[] data, QuantFormat format, boolean dequantised) {
        MemorySegment seg = Arena.ofAuto().allocate(data.length, 8);
        MemorySegment.copy(data, 0, seg, ValueLayout.JAVA_BYTE, 0, data.length);
        NativeArray stored = NativeArray.wrap(seg, t.type().dtype());
        int rows = (int) t.dim(0), cols = (int) t.dim(1);
        float[] x = new float[rows * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = stored.getFloat(i);
        }
        if (cols % format.blockSize() != 0) {
            HalfArray half = HalfArray.allocate(x.length);
            for (int i = 0; i < x.length; i++) {
                half.set(i, x[i]);
            }
            w.tensor(gguf, 1, dims(t.shape()), half.segment().toArray(ValueLayout.JAVA_BYTE));
            return;
        }
        byte[] blocks = GgmlQuantizer.quantize(format, x);
        if (dequantised) {
            float[] y = format.dequantize(MemorySegment.ofArray(blocks), rows, cols).toArray();
            ByteBuffer f32 = ByteBuffer.allocate(4 * y.length).order(ByteOrder.LITTLE_ENDIAN);
            f32.asFloatBuffer().put(y);
            w.tensor(gguf, 0, dims(t.shape()), f32.array());
        } else {
            w.tensor(gguf, GGML_TYPES.get(format), dims(t.shape()), blocks);
        }
    }

    private static final Map<QuantFormat, Integer> GGML_TYPES = Map.of(QuantFormat.Q4_0, 2, QuantFormat.Q8_0, 8, QuantFormat.Q4_K, 12,
            QuantFormat.Q5_K, 13, QuantFormat.Q6_K, 14);

    private static String ggufName(String hf) {
        Matcher m = LAYER.matcher(hf);
        if (m.matches()) {
            String part = LAYER_PARTS.get(m.group(2));
            if (part == null) {
                throw new IllegalStateException("no GGUF name for " + hf);
            }
            return "blk." + m.group(1) + "." + part + "." + m.group(3);
        }
        int dot = hf.lastIndexOf('.');
        return GLOBAL.get(hf.substring(0, dot)) + hf.substring(dot);
    }

    /** convert_hf_to_gguf's LlamaModel.permute: each head's rows from HF's rotary halves to interleaved pairs. */
    private static byte[] permuteRotaryHalves(byte[] data, int heads, int headDim, int rowBytes) {
        byte[] out = new byte[data.length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int part = 0; part < 2; part++) {
                    System.arraycopy(data, (h * headDim + part * half + i) * rowBytes, out, (h * headDim + 2 * i + part) * rowBytes, rowBytes);
                }
            }
        }
        return out;
    }

    /** convert_hf_to_gguf's BloomModel: rows [q, k, v of head 0; q, k, v of head 1; ...] to [all q; all k; all v]. */
    private static byte[] qkvGrouped(byte[] data, int heads, int headDim, int rowBytes) {
        byte[] out = new byte[data.length];
        for (int h = 0; h < heads; h++) {
            for (int part = 0; part < 3; part++) {
                System.arraycopy(data, (3 * h + part) * headDim * rowBytes, out, (part * heads + h) * headDim * rowBytes, headDim * rowBytes);
            }
        }
        return out;
    }

    /** The fixture's byte-level BPE as tokenizer.ggml.* (llama.cpp's gpt2 tokenizer model). */
    private static void tokenizer(Path hf, GgufTestWriter w) {
        JsonNode t = JsonFields.read(hf.resolve("tokenizer.json"));
        Map<Integer, String> byId = new TreeMap<>();
        t.path("model").path("vocab").properties().forEach(e -> byId.put(e.getValue().asInt(), e.getKey()));
        int[] types = new int[byId.size()];
        java.util.Arrays.fill(types, 1);
        for (JsonNode added : t.path("added_tokens")) {
            byId.put(added.path("id").asInt(), added.path("content").asText());
            types[added.path("id").asInt()] = added.path("special").asBoolean() ? 3 : 4;
        }
        List<String> merges = new ArrayList<>();
        for (JsonNode m : t.path("model").path("merges")) {
            merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
        }
        w.string("tokenizer.ggml.model", "gpt2").string("tokenizer.ggml.pre", "gpt2")
                .stringArray("tokenizer.ggml.tokens", byId.values().toArray(String[]::new)).intArray("tokenizer.ggml.token_type", types)
                .stringArray("tokenizer.ggml.merges", merges.toArray(String[]::new))
                .u32("tokenizer.ggml.bos_token_id", 0).u32("tokenizer.ggml.eos_token_id", 1).bool("tokenizer.ggml.add_bos_token", true);
    }

    private static byte[] bytes(Tensor t) {
        return t.data().toArray(ValueLayout.JAVA_BYTE);
    }

    private static int rowBytes(Tensor t) {
        return (int) (t.data().byteSize() / t.dim(0));
    }

    private static long[] dims(long[] shape) {
        long[] d = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            d[i] = shape[shape.length - 1 - i];
        }
        return d;
    }

    private static int ggmlType(TensorType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case BF16 -> 30;
            default -> throw new IllegalArgumentException(type.toString());
        };
    }
}
