package io.lightllm.models.weights;

import static io.lightllm.models.llama.LlamaGoldenTest.assertLogitsClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.gguf.GgufQuantizedTest;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.GreedyRunner;
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
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * AWQ and GPTQ checkpoints, packed here as AutoAWQ (GEMM) and AutoGPTQ pack them, from a random
 * 256-wide llama whose linear layers are quantised to 4 bits in groups of 128: loaded, each must compute
 * what the same model with its dequantised weights written as f32 computes (logits within 1e-4, the same
 * greedy tokens). Contiguous groups stay packed (INT4_ZP); GPTQ's act-order g_idx is dequantised.
 */
class Int4CheckpointWeightsTest {
    private static final String[] LINEARS = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    private static final int[] AWQ_ORDER = {0, 2, 4, 6, 1, 3, 5, 7};

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"awq", "gptq", "gptq-act-order"})
    void loadsAsItsDequantisedModel(String kind) throws IOException {
        Path wide = GgufQuantizedTest.wideLlama(Files.createDirectories(dir.resolve("wide")));
        Path quantised = Files.createDirectories(dir.resolve(kind)), dequantised = Files.createDirectories(dir.resolve(kind + "-f32"));
        List<Tensor> q = new ArrayList<>(), dq = new ArrayList<>();
        Arena arena = Arena.ofAuto();
        try (WeightSource w = SafetensorsWeights.open(wide, LoadOptions.quietly())) {
            for (String name : w.names()) {
                Tensor t = w.get(name);
                String layer = name.substring(0, name.length() - ".weight".length());
                boolean linear = java.util.Arrays.stream(LINEARS).anyMatch(l -> name.endsWith(l + ".weight"));
                if (!linear) {
                    q.add(t);
                    dq.add(t);
                    continue;
                }
                int out = (int) t.dim(0), in = (int) t.dim(1);
                float[] values = t.toFloat().toArray();
                Quantised m = quantise(values, out, in, kind.startsWith("gptq"), kind.equals("gptq-act-order"));
                dq.add(new Tensor(name, TensorType.F32, new long[] {out, in}, floats(arena, m.dequantised)));
                if (kind.equals("awq")) {
                    q.add(new Tensor(layer + ".qweight", TensorType.I32, new long[] {in, out / 8}, ints(arena, packAwq((k, n) -> m.codes[n * in + k], out, in))));
                    q.add(new Tensor(layer + ".qzeros", TensorType.I32, new long[] {in / 128, out / 8}, ints(arena, packAwq((g, n) -> m.zeros[g * out + n], out, in / 128))));
                } else {
                    q.add(new Tensor(layer + ".qweight", TensorType.I32, new long[] {in / 8, out}, ints(arena, packGptqWeight(m.codes, out, in))));
                    int[] stored = m.zeros.clone(); // AutoGPTQ stores z - 1
                    for (int i = 0; i < stored.length; i++) {
                        stored[i] -= 1;
                    }
                    q.add(new Tensor(layer + ".qzeros", TensorType.I32, new long[] {in / 128, out / 8}, ints(arena, packGptqZeros(stored, out, in / 128))));
                    q.add(new Tensor(layer + ".g_idx", TensorType.I32, new long[] {in}, ints(arena, m.groupOf)));
                }
                q.add(new Tensor(layer + ".scales", TensorType.F16, new long[] {in / 128, out}, halves(arena, m.scales)));
            }
            SafetensorsWriter.write(quantised.resolve("model.safetensors"), q); // while the unquantised tensors are mapped
            SafetensorsWriter.write(dequantised.resolve("model.safetensors"), dq);
        }
        ObjectNode config = (ObjectNode) JsonFields.read(wide.resolve("config.json"));
        for (Path d : new Path[] {quantised, dequantised}) {
            for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
                Files.copy(wide.resolve(f), d.resolve(f));
            }
        }
        Files.writeString(dequantised.resolve("config.json"), config.toPrettyString());
        config.putObject("quantization_config").put("quant_method", kind.startsWith("gptq") ? "gptq" : "awq").put("bits", 4)
                .put("group_size", 128).put("version", "gemm").put("desc_act", kind.equals("gptq-act-order"));
        Files.writeString(quantised.resolve("config.json"), config.toPrettyString());

        List<Golden> cases = Golden.read(SharedData.tinyFixture("llama"));
        int[][] prompts = cases.stream().map(Golden::inputIds).toArray(int[][]::new);
        try (ModelFiles a = ModelFiles.open(quantised, LoadOptions.quietly()); ModelFiles b = ModelFiles.open(dequantised, LoadOptions.quietly());
             CausalLM packed = Models.load(a, Devices.get("jvm"), Models.Quantization.NONE, true);
             CausalLM reference = Models.load(b, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            TensorType stored = a.weights().get("model.layers.0.self_attn.q_proj.weight").type();
            assertEquals(kind.equals("gptq-act-order") ? TensorType.F32 : TensorType.INT4_ZP, stored, kind);
            assertFalse(a.weights().names().stream().anyMatch(n -> n.endsWith(".qweight") || n.endsWith(".scales")), "the parts are hidden");
            assertTrue(a.weights().names().contains("model.layers.1.mlp.down_proj.weight"));
            GreedyRunner x = new GreedyRunner(packed, prompts, 8, DType.F32), y = new GreedyRunner(reference, prompts, 8, DType.F32);
            for (int c = 0; c < prompts.length; c++) {
                assertLogitsClose(y.firstLogits[c], x.firstLogits[c], 1e-4f, kind + " case " + c);
                assertArrayEquals(y.generated[c], x.generated[c], kind + " case " + c + " greedy ids");
            }
        }
    }

    /** Codes [out, in], zeros and scales [groups, out] (f16-rounded scales), the values they stand for, each input's group. */
    private record Quantised(int[] codes, int[] zeros, float[] scales, float[] dequantised, int[] groupOf) { }

    /**
     * AWQ: asymmetric per group (min/max); GPTQ: symmetric (zero 8, as sym=True writes). With act order
     * the inputs' groups are interleaved (input k in group (7 k mod in) / 128), as desc_act permutes them.
     */
    private static Quantised quantise(float[] w, int out, int in, boolean symmetric, boolean actOrder) {
        int groups = in / 128;
        int[] groupOf = new int[in];
        for (int k = 0; k < in; k++) {
            groupOf[k] = actOrder ? (int) ((7L * k) % in) / 128 : k / 128;
        }
        int[] codes = new int[out * in], zeros = new int[groups * out];
        float[] scales = new float[groups * out], deq = new float[out * in];
        for (int n = 0; n < out; n++) {
            for (int g = 0; g < groups; g++) {
                float lo = Float.MAX_VALUE, hi = -Float.MAX_VALUE;
                for (int k = 0; k < in; k++) {
                    if (groupOf[k] == g) {
                        lo = Math.min(lo, w[n * in + k]);
                        hi = Math.max(hi, w[n * in + k]);
                    }
                }
                float s = symmetric ? Math.max(Math.abs(lo), Math.abs(hi)) / 7 : (hi - lo) / 15;
                s = Float.float16ToFloat(Float.floatToFloat16(s));
                int z = symmetric ? 8 : Math.clamp(Math.round(-lo / s), 0, 15);
                scales[g * out + n] = s;
                zeros[g * out + n] = z;
            }
            for (int k = 0; k < in; k++) {
                int g = groupOf[k];
                float s = scales[g * out + n];
                int z = zeros[g * out + n];
                int c = Math.clamp(Math.round(w[n * in + k] / s) + z, 0, 15);
                codes[n * in + k] = c;
                deq[n * in + k] = (c - z) * s;
            }
        }
        return new Quantised(codes, zeros, scales, deq, groupOf);
    }

    /** AWQ's [rows, out / 8] ints: nibble i of int (r, c) holds {@code value(r, 8 c + AWQ_ORDER[i])}. */
    private static int[] packAwq(java.util.function.IntBinaryOperator value, int out, int rows) {
        int[] packed = new int[rows * (out / 8)];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < out / 8; c++) {
                int word = 0;
                for (int i = 0; i < 8; i++) {
                    word |= value.applyAsInt(r, 8 * c + AWQ_ORDER[i]) << 4 * i;
                }
                packed[r * (out / 8) + c] = word;
            }
        }
        return packed;
    }

    /** GPTQ's qweight [in / 8, out]: nibble i of int (r, n) holds input 8 r + i. */
    private static int[] packGptqWeight(int[] codes, int out, int in) {
        int[] packed = new int[in / 8 * out];
        for (int r = 0; r < in / 8; r++) {
            for (int n = 0; n < out; n++) {
                int word = 0;
                for (int i = 0; i < 8; i++) {
                    word |= codes[n * in + 8 * r + i] << 4 * i;
                }
                packed[r * out + n] = word;
            }
        }
        return packed;
    }

    /** GPTQ's qzeros [groups, out / 8]: nibble i of int (g, c) holds output 8 c + i. */
    private static int[] packGptqZeros(int[] zeros, int out, int groups) {
        int[] packed = new int[groups * (out / 8)];
        for (int g = 0; g < groups; g++) {
            for (int c = 0; c < out / 8; c++) {
                int word = 0;
                for (int i = 0; i < 8; i++) {
                    word |= (zeros[g * out + 8 * c + i] & 15) << 4 * i;
                }
                packed[g * (out / 8) + c] = word;
            }
        }
        return packed;
    }

    private static MemorySegment ints(Arena arena, int[] v) {
        MemorySegment s = arena.allocate(4L * v.length, 8);
        for (int i = 0; i < v.length; i++) {
            s.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i, v[i]);
        }
        return s;
    }

    private static MemorySegment floats(Arena arena, float[] v) {
        MemorySegment s = arena.allocate(4L * v.length, 8);
        for (int i = 0; i < v.length; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v[i]);
        }
        return s;
    }

    private static MemorySegment halves(Arena arena, float[] v) {
        MemorySegment s = arena.allocate(2L * v.length, 8);
        for (int i = 0; i < v.length; i++) {
            s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(v[i]));
        }
        return s;
    }
}
