package io.lightllm.models.weights;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.kernels.QuantBlocks;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.models.ModelLoadException;
import io.lightllm.tornado.api.NativeArray;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * AWQ and GPTQ checkpoints (config.json's {@code quantization_config.quant_method} "awq" or "gptq",
 * 4 bits): every linear layer stored as {@code qweight}, {@code qzeros} and {@code scales} (and GPTQ's
 * {@code g_idx}) is presented as {@code <layer>.weight}, w = (q - z) s, in the engine's {@link QuantFormat#INT4_ZP}
 * blocks (an f32 scale and offset per 128 inputs, the codes as they are), so the matmul kernels read it packed.
 * Converted when first asked for; everything else passes through.
 *
 * <p>The packings, as AutoAWQ (GEMM) and AutoGPTQ write them (transformers reads the same):
 * <ul>
 *   <li>AWQ: qweight int32 [in, out / 8], each int 8 outputs' codes in the order 0 2 4 6 1 3 5 7 (nibble i holds
 *       output 8 c + AWQ_ORDER[i]); qzeros int32 [in / g, out / 8] likewise; scales f16 [in / g, out].</li>
 *   <li>GPTQ: qweight int32 [in / 8, out], nibble i of row r the input 8 r + i; qzeros int32 [groups, out / 8],
 *       nibble i output 8 c + i, holding z - 1 (AutoGPTQ's format, "checkpoint_format" gptq; gptq_v2 holds z);
 *       scales f16 [groups, out]; g_idx int32 [in], the group of each input.</li>
 * </ul>
 * Groups of 128 whose g_idx is input / 128 stay packed; any other group size or an act-order g_idx (desc_act)
 * is dequantised to f32 instead (correct, four times the bytes), said once per model on stderr.
 */
public final class Int4CheckpointWeights implements WeightSource {
    /** The output of AWQ's nibble i: its packing order. */
    private static final int[] AWQ_ORDER = {0, 2, 4, 6, 1, 3, 5, 7};
    private static final String[] PARTS = {".qweight", ".qzeros", ".scales", ".g_idx"};
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final WeightSource stored;
    private final boolean awq;
    private final int groupSize;
    private final boolean zerosMinusOne;
    private final Arena arena = Arena.ofShared();
    private final Map<String, Tensor> converted = new ConcurrentHashMap<>();
    private volatile boolean warned;

    private Int4CheckpointWeights(WeightSource stored, boolean awq, int groupSize, boolean zerosMinusOne) {
        this.stored = stored;
        this.awq = awq;
        this.groupSize = groupSize;
        this.zerosMinusOne = zerosMinusOne;
    }

    /** {@code stored} as it is, or read through AWQ's or GPTQ's packing when {@code config} says it holds one. */
    public static WeightSource wrap(WeightSource stored, JsonNode config) {
        JsonNode q = config.path("quantization_config");
        String method = q.path("quant_method").asText("");
        if (!method.equals("awq") && !method.equals("gptq")) {
            if (!method.isEmpty()) {
                throw new ModelLoadException("quantization_config.quant_method '" + method + "' is not supported (supported: awq, gptq)");
            }
            return stored;
        }
        int bits = q.path(q.has("bits") ? "bits" : "w_bit").asInt(4);
        int group = q.path(q.has("group_size") ? "group_size" : "q_group_size").asInt(128);
        if (bits != 4) {
            throw new ModelLoadException(method + " checkpoints of " + bits + " bits are not supported (4 bits are)");
        }
        if (method.equals("awq") && !q.path("version").asText("gemm").equalsIgnoreCase("gemm")) {
            throw new ModelLoadException("AWQ version '" + q.path("version").asText() + "' is not supported (gemm is)");
        }
        boolean v2 = q.path("checkpoint_format").asText("gptq").equals("gptq_v2");
        return new Int4CheckpointWeights(stored, method.equals("awq"), group, method.equals("gptq") && !v2);
    }

    @Override
    public Tensor get(String name) {
        if (name.endsWith(".weight")) {
            String layer = name.substring(0, name.length() - ".weight".length());
            if (!stored.has(name) && stored.has(layer + ".qweight")) {
                return converted.computeIfAbsent(name, n -> convert(layer));
            }
        }
        return stored.get(name);
    }

    @Override
    public boolean has(String name) {
        return stored.has(name) || name.endsWith(".weight") && stored.has(name.substring(0, name.length() - ".weight".length()) + ".qweight");
    }

    @Override
    public SortedSet<String> names() {
        SortedSet<String> out = new TreeSet<>();
        for (String n : stored.names()) {
            String part = java.util.Arrays.stream(PARTS).filter(n::endsWith).findFirst().orElse(null);
            String layer = part == null ? null : n.substring(0, n.length() - part.length());
            if (part == null || !stored.has(layer + ".qweight")) {
                out.add(n);
            } else if (part.equals(".qweight")) {
                out.add(layer + ".weight");
            }
        }
        return out;
    }

    @Override
    public String location() {
        return stored.location() + " (" + (awq ? "AWQ" : "GPTQ") + ")";
    }

    @Override
    public void close() {
        converted.clear();
        arena.close();
        stored.close();
    }

    private Tensor convert(String layer) {
        Tensor qweight = stored.get(layer + ".qweight"), qzeros = stored.get(layer + ".qzeros"), scales = stored.get(layer + ".scales");
        int in = Math.toIntExact(awq ? qweight.dim(0) : qweight.dim(0) * 8);
        int out = Math.toIntExact(awq ? qweight.dim(1) * 8 : qweight.dim(1));
        int[] group = new int[in];
        for (int k = 0; k < in; k++) {
            group[k] = k / groupSize;
        }
        boolean contiguous = true;
        if (!awq && stored.has(layer + ".g_idx")) {
            NativeArray g = stored.get(layer + ".g_idx").view();
            for (int k = 0; k < in; k++) {
                group[k] = (int) g.getFloat(k);
                contiguous &= group[k] == k / groupSize;
            }
        }
        NativeArray s = scales.view();
        MemorySegment qw = qweight.data(), qz = qzeros.data();
        long[] shape = {out, in};
        if (groupSize == 128 && contiguous && in % 128 == 0) {
            QuantFormat f = QuantFormat.INT4_ZP;
            long rowBytes = f.rowBytes(in);
            MemorySegment blocks = arena.allocate(out * rowBytes, 16);
            int groups = in / 128;
            for (int n = 0; n < out; n++) {
                int rowAt = Math.toIntExact(n * rowBytes);
                for (int g = 0; g < groups; g++) {
                    int at = QuantBlocks.int4ScaleAt(f.code(), rowAt, groups, g), codesAt = QuantBlocks.int4CodesAt(rowAt, g);
                    float scale = s.getFloat(g * out + n);
                    blocks.set(F32, at, scale);
                    blocks.set(F32, at + 4, scale * zero(qz, out, g, n));
                    for (int j = 0; j < 64; j++) {
                        int k = g * 128 + j;
                        blocks.set(ValueLayout.JAVA_BYTE, codesAt + j, (byte) (code(qw, out, k, n) | code(qw, out, k + 64, n) << 4));
                    }
                }
            }
            return new Tensor(layer + ".weight", TensorType.INT4_ZP, shape, blocks);
        }
        if (!warned) {
            warned = true;
            System.err.println("note: " + location() + " has groups of " + groupSize + (contiguous ? "" : " in act order (g_idx)")
                    + "; such layers are dequantised to f32 (packed int4 needs contiguous groups of 128)");
        }
        MemorySegment dense = arena.allocate((long) out * in * 4, 8);
        for (int n = 0; n < out; n++) {
            for (int k = 0; k < in; k++) {
                int g = group[k];
                dense.setAtIndex(F32, (long) n * in + k, (code(qw, out, k, n) - zero(qz, out, g, n)) * s.getFloat(g * out + n));
            }
        }
        return new Tensor(layer + ".weight", TensorType.F32, shape, dense);
    }

    /** The code of input k, output n. */
    private int code(MemorySegment qweight, int out, int k, int n) {
        if (awq) {
            int word = qweight.getAtIndex(I32, (long) k * (out / 8) + n / 8);
            return word >>> 4 * AWQ_NIBBLE[n % 8] & 15;
        }
        int word = qweight.getAtIndex(I32, (long) (k / 8) * out + n);
        return word >>> 4 * (k % 8) & 15;
    }

    /** The zero point of group g, output n. */
    private int zero(MemorySegment qzeros, int out, int g, int n) {
        int word = qzeros.getAtIndex(I32, (long) g * (out / 8) + n / 8);
        int z = word >>> 4 * (awq ? AWQ_NIBBLE[n % 8] : n % 8) & 15;
        return zerosMinusOne ? z + 1 : z;
    }

    /** The nibble that holds output 8 c + i in AWQ's packing (AWQ_ORDER inverted). */
    private static final int[] AWQ_NIBBLE = new int[8];

    static {
        for (int i = 0; i < 8; i++) {
            AWQ_NIBBLE[AWQ_ORDER[i]] = i;
        }
    }
}
