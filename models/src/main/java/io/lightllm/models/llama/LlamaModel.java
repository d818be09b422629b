package io.lightllm.models.llama;

import io.lightllm.kernels.Attention;
import io.lightllm.kernels.Embedding;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.Norms;
import io.lightllm.kernels.RopeScaling;
import io.lightllm.kernels.TokenTable;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.function.LongConsumer;

/**
 * A Llama-family decoder (LLaMA 1/2/3, Mistral, Qwen2, Yi, InternLM, Baichuan-7B, MiniCPM): the
 * thin model class. It owns the weights and the per-step scratch, and runs a nopad batch
 * through the embedding, the layers ({@link LlamaLayerInfer}) and the head:
 *
 * <pre>
 * ids ─ embed ─► residual ─┬─ layer 0 … layer L-1 ─► final norm (last token of each request) ─► lm_head ─► logits
 * </pre>
 */
public final class LlamaModel implements CausalLM {
    private final Device device;
    private final ModelConfig config;
    private final LlamaWeights weights;
    private final LlamaLayerInfer layerInfer;
    private final LlamaShard shard;
    private final RopeScaling rope;
    private final int rotaryDim;
    /** GGUF llama3 files' per-pair divisors of the inverse frequencies; null when none. */
    private final FloatArray ropeFrequencyFactors;
    private DeviceBuffer invFreq;
    private int invFreqSeqLen = -1;
    private StepBuffers step;

    public LlamaModel(Device device, ModelConfig config, WeightSource source, boolean int8Weights, LongConsumer onBytes) {
        this(device, config, LlamaShard.whole(config), source, int8Weights, onBytes);
    }

    /**
     * One tensor-parallel rank: its share of the weights, a KV pool of its kv heads, and logits of
     * its vocabulary rows ({@link #vocabSize} is the shard's); run by {@link TensorParallelModel}.
     */
    LlamaModel(Device device, ModelConfig config, LlamaShard shard, WeightSource source, boolean int8Weights, LongConsumer onBytes) {
        this.device = device;
        this.config = config;
        this.shard = shard;
        this.weights = new LlamaWeights(device, config, shard, source, int8Weights, onBytes);
        this.layerInfer = new LlamaLayerInfer(device, config, shard);
        this.rope = LlamaRope.of(config);
        this.rotaryDim = config.rotaryDim();
        this.ropeFrequencyFactors = LlamaWeights.ropeFrequencyFactors(source, config);
    }

    @Override
    public long weightBytes() {
        return weights.deviceBytes();
    }

    public ModelConfig config() {
        return config;
    }

    @Override
    public Device device() {
        return device;
    }

    @Override
    public int vocabSize() {
        return shard.vocab();
    }

    /** The trained context (with a sliding window, attention sees the last {@code sliding_window} tokens of it). */
    @Override
    public int maxSequenceLength() {
        return config.maxPositionEmbeddings();
    }

    @Override
    public TokenKvPool newKvPool(int slots, DType dtype) {
        return new TokenKvPool(device, config.numHiddenLayers(), shard.kvHeads(), config.headDim(), slots, dtype);
    }

    @Override
    public DType preferredKvDtype() {
        return io.lightllm.kernels.Attention.preferredPoolDtype(device, config.headDim());
    }

    @Override
    public DeviceBuffer forward(NopadBatch batch, TokenKvPool pool, RequestTokenTable table) {
        int t = batch.tokens(), b = batch.requests();
        if (step == null || step.tokens < t || step.requests < b) {
            if (step != null) {
                closeRecordings();
                step.close();
            }
            step = new StepBuffers(device, config, shard, Math.max(t, step == null ? 0 : step.tokens), Math.max(b, step == null ? 0 : step.requests));
        }
        StepBuffers s = step;
        s.upload(batch);
        DeviceBuffer freqs = inverseFrequencies(batch.maxSeqLen());
        // a sharded step whose ranks meet on the host mid-step cannot be replayed by a device recording;
        // with NCCL each rank records its own step, collectives included, and the replays meet on the GPUs
        if (batch.prefill() || !RECORD_DECODE || !shard.recordable() || Boolean.FALSE.equals(canRecord)) {
            launchStep(batch, pool, table, freqs, batch.maxSeqLen());
            return s.logits;
        }
        // A decode step is the same launches for every step of a batch size: recorded once, it is
        // replayed with one call (a CUDA graph). Its attention is sized for the table's row length
        // so that growing sequences keep it valid; the lengths themselves are read from s.seqLens.
        DecodeKey key = new DecodeKey(b, pool, table, freqs);
        Device.Replay recorded = decodeSteps.get(key);
        if (recorded != null) {
            recorded.replay();
            return s.logits;
        }
        launchStep(batch, pool, table, freqs, table.maxLen()); // compiles kernels and sizes scratch
        recorded = device.capture(() -> launchStep(batch, pool, table, freqs, table.maxLen()));
        canRecord = recorded != null;
        if (recorded != null) {
            if (decodeSteps.size() >= MAX_RECORDINGS) {
                closeRecordings();
            }
            decodeSteps.put(key, recorded);
        }
        return s.logits;
    }

    /** What a recorded decode step depends on besides the step buffers. */
    private record DecodeKey(int requests, TokenKvPool pool, RequestTokenTable table, DeviceBuffer invFreq) {
    }

    /** {@code -Dlightllm.graphs=false} launches every decode step kernel by kernel. */
    private static final boolean RECORD_DECODE = Boolean.parseBoolean(System.getProperty("lightllm.graphs", "true"));
    private static final int MAX_RECORDINGS = 64;
    private final java.util.Map<DecodeKey, Device.Replay> decodeSteps = new java.util.HashMap<>();
    private Boolean canRecord;

    /** Drops the recorded decode steps (they are recorded again when next needed). */
    void closeRecordings() {
        decodeSteps.values().forEach(Device.Replay::close);
        decodeSteps.clear();
    }

    /** The launches of one step, reading every per-step value from the step buffers. */
    private void launchStep(NopadBatch batch, TokenKvPool pool, RequestTokenTable table, DeviceBuffer freqs, int attentionMaxSeqLen) {
        StepBuffers s = step;
        int t = batch.tokens(), b = batch.requests(), hidden = config.hiddenSize();
        TokenTable.launchScatter(device, table.buffer(), s.tokenRows, s.positions, s.kvSlots, t, table.maxLen());
        if (shard.sharded()) {
            // each rank holds the embedding rows of its vocabulary part: a lookup of those, 0 elsewhere, summed over the ranks
            Embedding.launchGather(device, s.residual, weights.embedTokens, s.ids, t, hidden, config.vocabSize(), shard.firstVocab());
            shard.allReduce(s.residual, t * hidden);
        } else {
            Embedding.launchGather(device, s.residual, weights.embedTokens, s.ids, t, hidden);
        }
        config.miniCpm().ifPresent(m -> layerInfer.scale(s.residual, t * hidden, (float) m.scaleEmb()));
        for (int l = 0; l < weights.layers.size(); l++) {
            layerInfer.forward(l, weights.layers.get(l), s, batch, pool, table, freqs, rotaryDim, attentionMaxSeqLen);
        }
        // the last layer's MLP output joins the residual in the final norm; only the last new
        // token of each request needs the head
        Norms.launchRmsNormAddResidual(device, s.normed, s.residual, s.projected, weights.finalNorm, (float) config.normEps(), t, hidden);
        KvCache.launchGatherFromPool(device, s.lastNormed, s.normed, s.lastIndex, b, 1, hidden);
        weights.lmHead.apply(device, s.logits, s.lastNormed, b);
        config.miniCpm().ifPresent(m -> layerInfer.scale(s.logits, b * shard.vocab(),
                (float) (m.dimModelBase() / (double) hidden)));
    }

    /** The rotary table; dynamic NTK scaling depends on the sequence length, the others do not. */
    private DeviceBuffer inverseFrequencies(int seqLen) {
        int key = rope.type() == RopeScaling.Type.DYNAMIC ? Math.max(seqLen, config.maxPositionEmbeddings()) : 0;
        if (invFreq == null || key != invFreqSeqLen) {
            FloatArray host = rope.inverseFrequencies(rotaryDim, key);
            if (ropeFrequencyFactors != null) {
                // llama.cpp: theta_i = pos * base^(-2i/d) / rope_freqs[i]
                for (int i = 0; i < ropeFrequencyFactors.getSize(); i++) {
                    host.set(i, host.get(i) / ropeFrequencyFactors.get(i));
                }
            }
            if (invFreq != null) {
                closeRecordings(); // they read the old table
                invFreq.close();
            }
            invFreq = device.upload(copyOf(host));
            invFreqSeqLen = key;
        }
        return invFreq;
    }

    private static FloatArray copyOf(FloatArray a) {
        FloatArray c = FloatArray.allocate(a.getSize());
        c.copyFrom(a);
        return c;
    }

    @Override
    public void close() {
        closeRecordings();
        if (step != null) {
            step.close();
        }
        if (invFreq != null) {
            invFreq.close();
        }
        weights.close();
    }

    /** Scratch of one step, sized for a number of tokens and requests and reused while they fit. */
    static final class StepBuffers implements AutoCloseable {
        final int tokens, requests;
        final Device device;
        final DeviceBuffer ids, positions, kvSlots, tokenRows;
        final DeviceBuffer requestRows, starts, newCounts, seqLens, prefixes, lastIndex;
        final DeviceBuffer residual, normed, q, k, v, attention, projected, gate, up, act;
        final DeviceBuffer lastNormed, logits;
        private final java.util.List<DeviceBuffer> all = new java.util.ArrayList<>();
        private final ModelConfig config;
        private Attention.DecodeScratch scratch;
        private int scratchMaxLen;

        private final LlamaShard shard;

        StepBuffers(Device device, ModelConfig c, LlamaShard shard, int tokens, int requests) {
            this.shard = shard;
            this.device = device;
            this.config = c;
            this.tokens = tokens;
            this.requests = requests;
            int hidden = c.hiddenSize();
            ids = i32(tokens);
            positions = i32(tokens);
            kvSlots = i32(tokens);
            tokenRows = i32(tokens);
            requestRows = i32(requests);
            starts = i32(requests);
            newCounts = i32(requests);
            seqLens = i32(requests);
            prefixes = i32(requests);
            lastIndex = i32(requests);
            residual = f32((long) tokens * hidden);
            normed = f32((long) tokens * hidden);
            q = f32((long) tokens * shard.heads() * c.headDim());
            k = f32((long) tokens * shard.kvHeads() * c.headDim());
            v = f32((long) tokens * shard.kvHeads() * c.headDim());
            attention = f32((long) tokens * shard.heads() * c.headDim());
            projected = f32((long) tokens * hidden);
            gate = f32((long) tokens * shard.intermediate());
            up = f32((long) tokens * shard.intermediate());
            act = f32((long) tokens * shard.intermediate());
            lastNormed = f32((long) requests * hidden);
            logits = f32((long) requests * shard.vocab());
        }

        /** Split-k scratch of decode attention, sized for this step's requests and the table's longest row. */
        Attention.DecodeScratch decodeScratch(NopadBatch batch, int maxLen) {
            if (scratch == null || scratchMaxLen < maxLen) {
                if (scratch != null) {
                    scratch.close();
                }
                scratch = Attention.DecodeScratch.allocateFor(device, requests, shard.heads(), config.headDim(), maxLen);
                scratchMaxLen = maxLen;
            }
            return scratch;
        }

        private DeviceBuffer i32(long n) {
            DeviceBuffer b = device.allocate(DType.I32, n);
            all.add(b);
            return b;
        }

        private DeviceBuffer f32(long n) {
            DeviceBuffer b = device.allocate(DType.F32, n);
            all.add(b);
            return b;
        }

        void upload(NopadBatch batch) {
            int t = batch.tokens(), b = batch.requests();
            int[] rows = new int[t];
            int[] prefix = new int[b];
            int[] last = new int[b];
            for (int r = 0; r < b; r++) {
                for (int i = 0; i < batch.newCounts()[r]; i++) {
                    rows[batch.starts()[r] + i] = batch.requestRows()[r];
                }
                prefix[r] = batch.prefix(r);
                last[r] = batch.starts()[r] + batch.newCounts()[r] - 1;
            }
            put(ids, batch.tokenIds());
            put(positions, batch.positions());
            put(kvSlots, batch.kvSlots());
            put(tokenRows, rows);
            put(requestRows, batch.requestRows());
            put(starts, batch.starts());
            put(newCounts, batch.newCounts());
            put(seqLens, batch.seqLens());
            put(prefixes, prefix);
            put(lastIndex, last);
        }

        private void put(DeviceBuffer dst, int[] values) {
            if (values.length > 0) {
                device.write(IntArray.fromArray(values).segment(), dst, 0);
            }
        }

        @Override
        public void close() {
            all.forEach(DeviceBuffer::close);
            if (scratch != null) {
                scratch.close();
            }
        }
    }
}
