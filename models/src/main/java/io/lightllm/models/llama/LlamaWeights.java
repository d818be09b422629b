package io.lightllm.models.llama;

import io.lightllm.kernels.Matmul;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.config.RopeConfig;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * The weights of a Llama-family model on one device, by role. Matrices keep their stored
 * dtype (f32, f16 or bf16; the kernels convert), or become int8 with per-row scales when
 * weight-only quantisation is on. Variants handled here: q/k/v/o biases (Qwen2, InternLM),
 * Baichuan's fused {@code W_pack}, Baichuan2's normalised head, the original Yi checkpoints'
 * {@code ln1}/{@code ln2} norm names, tied embeddings, and GGUF llama3 files' {@code rope_freqs}.
 */
public final class LlamaWeights implements AutoCloseable {
    /** A linear layer: y = x · wᵀ (+ bias); {@code scales} is set for int8 weights. */
    public record Linear(DeviceBuffer weight, DeviceBuffer scales, DeviceBuffer bias, int outFeatures, int inFeatures) {
        public void apply(Device device, DeviceBuffer out, DeviceBuffer in, int rows) {
            if (scales != null) {
                Matmul.launchMatmulInt8(device, out, in, weight, scales, bias, rows, outFeatures, inFeatures);
            } else {
                Matmul.launchMatmul(device, out, in, weight, bias, rows, outFeatures, inFeatures);
            }
        }
    }

    /** One decoder layer. */
    public record Layer(DeviceBuffer inputNorm, Linear q, Linear k, Linear v, Linear o,
                        DeviceBuffer postAttentionNorm, Linear gate, Linear up, Linear down) {
    }

    public final DeviceBuffer embedTokens;
    public final List<Layer> layers = new ArrayList<>();
    public final DeviceBuffer finalNorm;
    public final Linear lmHead;
    private final List<DeviceBuffer> owned = new ArrayList<>();
    private final Device device;
    private final boolean int8;
    private final LongConsumer onBytes;

    public LlamaWeights(Device device, ModelConfig config, WeightSource source, boolean int8, LongConsumer onBytes) {
        this(device, config, LlamaShard.whole(config), source, int8, onBytes);
    }

    /**
     * The weights of one tensor-parallel rank: q, k, v, gate and up keep the shard's output rows,
     * o and down its input columns (their bias only on rank 0, as the ranks' outputs are summed),
     * the embedding and the head the shard's vocabulary rows (a tied head reads the same
     * buffer); the norms are replicated.
     */
    LlamaWeights(Device device, ModelConfig config, LlamaShard shard, WeightSource source, boolean int8, LongConsumer onBytes) {
        this.device = device;
        this.int8 = int8;
        this.onBytes = onBytes;
        int hidden = config.hiddenSize(), headDim = config.headDim();
        int qDim = config.numAttentionHeads() * headDim;
        int kvDim = config.numKeyValueHeads() * headDim;
        Range qRows = new Range(shard.firstHead() * headDim, shard.heads() * headDim);
        Range kvRows = new Range(shard.firstKvHead() * headDim, shard.kvHeads() * headDim);
        Range mlpRows = new Range(shard.firstIntermediate(), shard.intermediate());
        boolean sumsBias = shard.rank() == 0;
        Range vocabRows = new Range(shard.firstVocab(), shard.vocab());
        Tensor embed = source.get("model.embed_tokens.weight");
        onBytes.accept(embed.data().byteSize());
        embedTokens = own(device.upload(shard.sharded() ? rows(embed, vocabRows.from(), vocabRows.count()) : tensorArray(embed)));
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            Linear q, k, v;
            if (source.has(p + "self_attn.W_pack.weight")) {
                // Baichuan: q, k and v stacked in one [3 * hidden, hidden] matrix
                Tensor pack = source.get(p + "self_attn.W_pack.weight");
                q = linear(rows(pack, qRows.from(), qRows.count()), null, qRows.count(), hidden, pack.name());
                k = linear(rows(pack, qDim + kvRows.from(), kvRows.count()), null, kvRows.count(), hidden, pack.name());
                v = linear(rows(pack, qDim + kvDim + kvRows.from(), kvRows.count()), null, kvRows.count(), hidden, pack.name());
            } else {
                q = rowSplit(source, p + "self_attn.q_proj", qDim, hidden, qRows);
                k = rowSplit(source, p + "self_attn.k_proj", kvDim, hidden, kvRows);
                v = rowSplit(source, p + "self_attn.v_proj", kvDim, hidden, kvRows);
            }
            Linear o = columnSplit(source, p + "self_attn.o_proj", hidden, qDim, qRows, sumsBias);
            Linear gate = rowSplit(source, p + "mlp.gate_proj", config.intermediateSize(), hidden, mlpRows);
            Linear up = rowSplit(source, p + "mlp.up_proj", config.intermediateSize(), hidden, mlpRows);
            Linear down = columnSplit(source, p + "mlp.down_proj", hidden, config.intermediateSize(), mlpRows, sumsBias);
            layers.add(new Layer(upload(source.get(norm(source, p, "input_layernorm", "ln1"))), q, k, v, o,
                    upload(source.get(norm(source, p, "post_attention_layernorm", "ln2"))), gate, up, down));
        }
        finalNorm = upload(source.get("model.norm.weight"));
        if (source.has("lm_head.weight") && !config.tieWordEmbeddings()) {
            Tensor head = source.get("lm_head.weight");
            if (hasNormHead(config)) {
                onBytes.accept(head.data().byteSize());
                FloatArray normalized = normalizedRows(head, config.vocabSize(), hidden);
                lmHead = linear(rows(normalized, hidden, vocabRows), null, vocabRows.count(), hidden, head.name());
            } else {
                lmHead = rowSplit(source, "lm_head", config.vocabSize(), hidden, vocabRows);
            }
        } else if (int8) {
            // the int8 head is a quantised copy; the embedding stays in its stored type
            lmHead = linear(rows(embed, vocabRows.from(), vocabRows.count()), null, vocabRows.count(), hidden, embed.name());
        } else {
            lmHead = new Linear(embedTokens, null, null, vocabRows.count(), hidden);
        }
    }

    /** Rows (or columns) {@code [from, from + count)} of a matrix. */
    private record Range(int from, int count) {
    }

    /** Output rows {@code rows} of a linear layer [out, in], with the same rows of its bias. */
    private Linear rowSplit(WeightSource source, String prefix, int out, int in, Range rows) {
        Tensor w = source.get(prefix + ".weight");
        checkShape(w, out, in);
        Tensor b = source.has(prefix + ".bias") ? source.get(prefix + ".bias") : null;
        onBytes.accept(w.data().byteSize() + (b == null ? 0 : b.data().byteSize()));
        FloatArray bias = b == null ? null : b.toFloat();
        if (rows.from() == 0 && rows.count() == out) {
            return linear(tensorArray(w), bias, out, in, w.name());
        }
        FloatArray biasRows = bias == null ? null : (FloatArray) rows(bias, 1, rows);
        return linear(rows(w, rows.from(), rows.count()), biasRows, rows.count(), in, w.name());
    }

    /**
     * Input columns {@code columns} of a linear layer [out, in]: a partial product the ranks sum;
     * the bias joins on one rank only ({@code withBias}) so that it is added once.
     */
    private Linear columnSplit(WeightSource source, String prefix, int out, int in, Range columns, boolean withBias) {
        Tensor w = source.get(prefix + ".weight");
        checkShape(w, out, in);
        Tensor b = source.has(prefix + ".bias") ? source.get(prefix + ".bias") : null;
        onBytes.accept(w.data().byteSize() + (b == null ? 0 : b.data().byteSize()));
        FloatArray bias = withBias && b != null ? b.toFloat() : null;
        NativeArray all = tensorArray(w);
        if (columns.from() == 0 && columns.count() == in) {
            return linear(all, bias, out, in, w.name());
        }
        long elementBytes = all.dtype().bytes();
        NativeArray part = NativeArray.allocate(all.dtype(), (long) out * columns.count());
        for (int r = 0; r < out; r++) {
            MemorySegment.copy(all.segment(), ((long) r * in + columns.from()) * elementBytes,
                    part.segment(), (long) r * columns.count() * elementBytes, columns.count() * elementBytes);
        }
        return linear(part, bias, out, columns.count(), w.name());
    }

    private static void checkShape(Tensor w, int out, int in) {
        if (w.elementCount() != (long) out * in) {
            throw new ModelLoadException("tensor " + w.name() + " has " + w.elementCount() + " elements, expected " + out + " x " + in);
        }
    }

    /**
     * The per-token inverse-frequency divisors of a GGUF llama3 file ({@code rope_freqs.weight},
     * one per rotated pair; llama.cpp's convert script stores there the llama3 rope scaling that HF
     * keeps in config.json), or null when the file has none.
     */
    public static FloatArray ropeFrequencyFactors(WeightSource source, ModelConfig config) {
        if (!source.has(ROPE_FREQS)) {
            return null;
        }
        Tensor t = source.get(ROPE_FREQS);
        int pairs = config.rotaryDim() / 2;
        if (t.elementCount() != pairs) {
            throw new ModelLoadException(ROPE_FREQS + " in " + source.location() + " has " + t.elementCount()
                    + " values, but the model rotates " + pairs + " pairs per head");
        }
        if (config.rope().type() != RopeConfig.Type.DEFAULT && config.rope().type() != RopeConfig.Type.LINEAR) {
            throw new ModelLoadException(source.location() + " has both " + ROPE_FREQS + " and rope scaling "
                    + config.rope().type() + "; the two would scale the frequencies twice");
        }
        return t.toFloat();
    }

    private static final String ROPE_FREQS = "rope_freqs.weight";

    /** A layer's norm under its HF name, or the name the original Yi checkpoints (model_type "Yi") used. */
    private static String norm(WeightSource source, String layerPrefix, String hfName, String yiName) {
        String hf = layerPrefix + hfName + ".weight";
        String yi = layerPrefix + yiName + ".weight";
        return !source.has(hf) && source.has(yi) ? yi : hf;
    }

    /**
     * Baichuan2 (architecture BaichuanForCausalLM; Baichuan-7B is BaiChuanForCausalLM) divides each
     * row of lm_head by its L2 norm at inference (NormHead: F.normalize, eps 1e-12).
     */
    static boolean hasNormHead(ModelConfig c) {
        return c.modelType().equals("baichuan") && c.architectures().contains("BaichuanForCausalLM");
    }

    private static FloatArray normalizedRows(Tensor t, int rows, int cols) {
        FloatArray w = t.toFloat();
        for (int r = 0; r < rows; r++) {
            double sumSq = 0;
            for (int c = 0; c < cols; c++) {
                double v = w.get(r * cols + c);
                sumSq += v * v;
            }
            float inv = (float) (1.0 / Math.max(Math.sqrt(sumSq), 1e-12));
            for (int c = 0; c < cols; c++) {
                w.set(r * cols + c, w.get(r * cols + c) * inv);
            }
        }
        return w;
    }

    /** Bytes the weights take on the device (for reports of what quantisation saves). */
    public long deviceBytes() {
        return owned.stream().mapToLong(DeviceBuffer::byteSize).sum();
    }

    private Linear linear(NativeArray w, FloatArray bias, int out, int in, String name) {
        if ((long) out * in != w.getSize()) {
            throw new ModelLoadException("tensor " + name + " has " + w.getSize() + " elements, expected " + out + " x " + in);
        }
        DeviceBuffer b = bias == null ? null : own(device.upload(bias));
        if (int8) {
            Matmul.Int8Weights q = Matmul.quantizeInt8(w, out, in);
            return new Linear(own(device.upload(q.weights())), own(device.upload(q.scales())), b, out, in);
        }
        return new Linear(own(device.upload(w)), null, b, out, in);
    }

    /** Rows [from, from + count) of a 2-D tensor, sharing its memory. */
    private static NativeArray rows(Tensor t, int from, int count) {
        return rows(tensorArray(t), (int) t.dim(1), new Range(from, count));
    }

    /** Rows {@code rows} of a row-major array of {@code width} columns, sharing its memory. */
    private static NativeArray rows(NativeArray all, int width, Range rows) {
        long rowBytes = (long) width * all.dtype().bytes();
        return NativeArray.wrap(all.segment().asSlice(rows.from() * rowBytes, rows.count() * rowBytes), all.dtype());
    }

    /** The tensor as an array of its dtype; quantised GGUF blocks are expanded to f32. */
    private static NativeArray tensorArray(Tensor t) {
        return t.type().isQuantized() ? t.toFloat() : t.view();
    }

    private DeviceBuffer upload(Tensor t) {
        onBytes.accept(t.data().byteSize());
        return own(device.upload(tensorArray(t)));
    }

    private DeviceBuffer own(DeviceBuffer b) {
        owned.add(b);
        return b;
    }

    public DType embeddingDtype() {
        return embedTokens.dtype();
    }

    @Override
    public void close() {
        owned.forEach(DeviceBuffer::close);
    }
}
