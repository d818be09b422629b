package io.lightllm.models.decoder;

import io.lightllm.kernels.Attention;
import io.lightllm.kernels.Elementwise;
import io.lightllm.kernels.Embedding;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.TokenTable;
import io.lightllm.models.Models;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture.Positions;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A decoder-only model of any {@link Architecture} on one device: it owns the weights and the
 * per-step scratch, and runs a nopad batch through the embedding, the layers ({@link DecoderLayer})
 * and the head:
 *
 * <pre>
 * ids ─ embed (+ positions) (─ norm) ─► residual ─┬─ layer 0 … layer L-1 ─► final norm (last token of each request) ─► head ─► logits
 * </pre>
 */
public final class DecoderModel implements CausalLM {
    private final Device device;
    private final Architecture architecture;
    private final ModelConfig config;
    private final Shard shard;
    private final WeightLoader weights;
    private final DeviceBuffer tokenEmbeddings, positionEmbeddings;
    private final Norm embeddingNorm, finalNorm;
    private final List<DecoderLayer> layers = new ArrayList<>();
    private final Linear head;
    private final RotaryTables rotary;
    private StepBuffers step;

    public DecoderModel(Device device, Architecture architecture, ModelConfig config, WeightSource source, Models.Quantization quant,
            LongConsumer onBytes) {
        this(device, architecture, config, Shard.whole(config), source, quant, onBytes);
    }

    /**
     * One tensor-parallel rank: its share of the weights, a KV pool of its kv heads, and logits of
     * its vocabulary rows ({@link #vocabSize} is the shard's); run by {@link TensorParallelModel}.
     */
    DecoderModel(Device device, Architecture a, ModelConfig c, Shard shard, WeightSource source, Models.Quantization quant, LongConsumer onBytes) {
        this.device = device;
        this.architecture = a;
        this.config = c;
        this.shard = shard;
        this.weights = new WeightLoader(device, source, shard, quant, onBytes);
        try {
            int hidden = c.hiddenSize();
            float eps = (float) c.normEps();
            Range vocabRows = new Range(shard.firstVocab(), shard.vocab());
            var e = a.embeddings();
            tokenEmbeddings = weights.tableRows(e.tokens() + ".weight", vocabRows);
            positionEmbeddings = e.positions() == null ? null : weights.tableRows(e.positions() + ".weight", Range.all(c.maxPositionEmbeddings()));
            embeddingNorm = e.norm() == null ? null : Norm.load(a.norm(), weights, e.norm(), eps, hidden);
            DeviceBuffer alibi = a.attention().positions() == Positions.ALIBI ? AttentionBlock.alibiSlopes(c, weights) : null;
            for (int l = 0; l < c.numHiddenLayers(); l++) {
                layers.add(new DecoderLayer(a, c, weights, l, alibi));
            }
            finalNorm = Norm.load(a.norm(), weights, a.finalNorm(), eps, hidden);
            String headName = a.lmHead() + ".weight";
            if (weights.has(headName) && !c.tieWordEmbeddings()) {
                head = a.normalizedHead() ? weights.normalizedRows(a.lmHead(), c.vocabSize(), hidden, vocabRows)
                        : weights.rowSplit(a.lmHead(), c.vocabSize(), hidden, vocabRows);
            } else {
                head = weights.headOver(tokenEmbeddings, e.tokens() + ".weight", vocabRows, hidden);
            }
            rotary = a.attention().positions() == Positions.ROTARY
                    ? new RotaryTables(device, c, weights.ropeFrequencyFactors(c)) : null;
        } catch (RuntimeException ex) {
            weights.close();
            throw ex;
        }
    }

    @Override
    public long weightBytes() {
        return weights.deviceBytes();
    }

    public ModelConfig config() {
        return config;
    }

    public Architecture architecture() {
        return architecture;
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
        return Attention.preferredPoolDtype(device, config.headDim());
    }

    @Override
    public DeviceBuffer forward(NopadBatch given, TokenKvPool pool, RequestTokenTable table) {
        // A decode step is served by a recording where the device records (a sharded step whose ranks meet on the host
        // mid-step cannot be replayed by a device recording; with NCCL each rank records its own step, collectives included,
        // and the replays meet on the GPUs). It runs as one of the recorded sizes, padded: its first rows of logits are its own
        boolean replayed = !given.prefill() && RECORD_DECODE && shard.recordable() && !Boolean.FALSE.equals(canRecord);
        NopadBatch batch = replayed ? given.paddedTo(recordedRequests(given.requests()), table.paddingRow(), pool.paddingSlot()) : given;
        int t = batch.tokens(), b = batch.requests(), rows = batch.logitRows();
        if (step == null || step.tokens < t || step.requests < b || step.logitRows < rows) {
            StepBuffers old = step;
            if (old != null) {
                closeRecordings();
                old.close();
            }
            step = new StepBuffers(device, config, shard, Math.max(t, old == null ? 0 : old.tokens), Math.max(b, old == null ? 0 : old.requests),
                    Math.max(rows, old == null ? 0 : old.logitRows));
        }
        step.upload(batch);
        if (rotary != null && rotary.changesFor(batch.maxSeqLen())) {
            closeRecordings(); // they read the old table
        }
        DeviceBuffer freqs = rotary == null ? null : rotary.forSeqLen(batch.maxSeqLen());
        if (!replayed) {
            launchStep(new Step(batch, pool, table, freqs, batch.maxSeqLen()));
            return step.logits;
        }
        // A decode step is the same launches for every step of a recorded size: recorded once, it is
        // replayed with one call (a CUDA graph); the lengths themselves are read from step.seqLens. Only
        // decode attention's splits follow the context's length: a recording is sized for the longest
        // context rounded up to a power of two, and kept per splits that gives (so a short chat neither
        // launches the split merge nor records again at every token)
        int sizedFor = recordedLength(batch.maxSeqLen(), table.maxLen());
        DecodeKey key = new DecodeKey(b, pool, table, freqs, layers.get(0).decodeSplits(b, sizedFor, pool.dtype()));
        Device.Replay recorded = decodeSteps.get(key);
        if (recorded != null) {
            recorded.replay();
            return step.logits;
        }
        Step decode = new Step(batch, pool, table, freqs, sizedFor);
        launchStep(decode); // compiles kernels and sizes scratch
        recorded = device.capture(() -> launchStep(decode));
        canRecord = recorded != null;
        if (recorded != null) {
            decodeSteps.put(key, recorded);
        }
        return step.logits;
    }

    /**
     * What a recorded decode step depends on besides the step buffers; {@code splits}: its attention's (every layer has
     * the same heads, so the first layer's stand for all).
     */
    private record DecodeKey(int requests, TokenKvPool pool, RequestTokenTable table, DeviceBuffer invFreq, Attention.DecodeSplits splits) {
    }

    /**
     * The requests of the recorded decode step that serves {@code requests}: 1, 2, 4, then the multiples of 8 (vLLM's
     * capture sizes), so that a server whose running set wanders over many sizes records some 35 steps up to 256 requests,
     * not one a size (each costs a launched step and a capture: session 14 measured the first serving run after a start 11 %
     * slower for them). The padding requests cost a step little: a decode step's matrices stream their weights once whatever
     * the rows, and a padding request attends to one token.
     */
    static int recordedRequests(int requests) {
        if (requests < 1) {
            throw new IllegalArgumentException("a decode step has requests, not " + requests);
        }
        return requests <= 2 ? requests : requests <= 4 ? 4 : (requests + 7) / 8 * 8;
    }

    /**
     * The context length a recorded decode step is sized for when its longest request holds {@code maxSeqLen} tokens: the
     * next power of two, at most the table's row length. Until 2026-12-08 every recording was sized for the row length (the
     * model's context), which at batch 1 spread an 8B's attention over 16 groups a KV head and a merge kernel a layer where
     * a short context needs one group and no merge (docs/cuda.md, "CUDA graphs").
     */
    static int recordedLength(int maxSeqLen, int tableMaxLen) {
        if (maxSeqLen < 1 || maxSeqLen > tableMaxLen) {
            throw new IllegalArgumentException("a decode step's longest context is 1.." + tableMaxLen + " tokens, not " + maxSeqLen);
        }
        int power = Integer.highestOneBit(maxSeqLen);
        return power == maxSeqLen ? maxSeqLen : (int) Math.min(tableMaxLen, 2L * power);
    }

    /** {@code -Dlightllm.graphs=false} launches every decode step kernel by kernel. */
    private static final boolean RECORD_DECODE = Boolean.parseBoolean(System.getProperty("lightllm.graphs", "true"));
    /** Recorded decode steps kept (the least recently replayed goes first): vLLM captures some 67 batch sizes. */
    private static final int MAX_RECORDINGS = 128;
    private final RecordedSteps<DecodeKey> decodeSteps = new RecordedSteps<>(MAX_RECORDINGS);
    private Boolean canRecord;

    /** Drops the recorded decode steps (they are recorded again when next needed). */
    @Override
    public void tuningChanged() {
        closeRecordings();
        foldsNorms = null;
        if (step != null) {
            step.tuningChanged(); // after the recordings that read its scratch are gone
        }
    }

    /** A recorded decode step: its requests (padding included) and its attention's splits. */
    record RecordedStep(int requests, Attention.DecodeSplits splits) {
    }

    /** The decode steps recorded now, the least recently replayed first (tests). */
    List<RecordedStep> recordedSteps() {
        return decodeSteps.keys().stream().map(k -> new RecordedStep(k.requests(), k.splits())).toList();
    }

    void closeRecordings() {
        decodeSteps.clear();
    }

    /** The launches of one step, reading every per-step value from the step buffers. */
    private void launchStep(Step st) {
        StepBuffers s = step;
        int t = st.tokens(), hidden = config.hiddenSize();
        TokenTable.launchScatter(device, st.table().buffer(), s.tokenRows, s.positions, s.kvSlots, t, st.table().maxLen());
        embed(s, st.batch());
        int rows = st.batch().logitRows();
        boolean folded = t == 1 && rows == 1 && foldsNorms();
        for (int l = 0; l < layers.size(); l++) {
            layers.get(l).forward(s, st, l == 0, folded);
        }
        if (folded) {
            // batch 1 with the norms in the GEMVs: the residual is whole, and the head's GEMV takes the final norm
            head.applyFolded(device, s.logits, s.residual, finalNorm.fold());
        } else {
            // the last layer's MLP output joins the residual in the final norm; only the batch's logit
            // tokens (by default the last new token of each request) need the head
            finalNorm.applyAdding(device, s.normed, s.residual, s.projected, t);
            KvCache.launchGatherFromPool(device, s.lastNormed, s.normed, s.lastIndex, rows, 1, hidden);
            head.apply(device, s.logits, s.lastNormed, rows);
        }
        config.miniCpm().ifPresent(m -> Elementwise.launchScale(device, s.logits, rows * shard.vocab(), (float) (m.dimModelBase() / (double) hidden)));
    }

    private Boolean foldsNorms;

    /**
     * Whether batch-1 steps run with every norm and residual add folded into the GEMVs ({@link io.lightllm.kernels.FoldedGemv},
     * tuning {@code matmul.gemv_fold}): 64 fewer launches a step at 32 layers. All or nothing, decided once.
     */
    private boolean foldsNorms() {
        if (foldsNorms == null) {
            foldsNorms = io.lightllm.kernels.FoldedGemv.enabled(device) && finalNorm.foldable() && head.folds(device, false) && !shard.sharded()
                    && layers.stream().allMatch(l -> l.folds(device));
        }
        return foldsNorms;
    }

    /**
     * Rows that take the place of some tokens' embeddings: a vision model's image features, whose tokens
     * are ids past the vocabulary ({@link CausalLM#isPlaceholder}). Called in every prefill step, after the
     * lookup, which leaves those tokens' rows NaN; a step without such ids places nothing.
     */
    public interface EmbeddingOverride {
        /** Writes the rows of {@code batch}'s placeholder tokens, if it has any, into {@code embeddings} [batch tokens, hidden]. */
        void place(NopadBatch batch, DeviceBuffer embeddings);
    }

    private EmbeddingOverride embeddingOverride;

    /**
     * Sets what places rows for ids past the vocabulary (a vision model wrapping this one). Under tensor
     * parallelism it runs on every rank after the embedding's all-reduce, when each rank holds whole rows.
     */
    public void embeddingOverride(EmbeddingOverride override) {
        this.embeddingOverride = override;
    }

    /** residual = the token embeddings (+ learned positions) (normalised where the architecture has an embedding norm). */
    private void embed(StepBuffers s, NopadBatch batch) {
        int hidden = config.hiddenSize(), t = batch.tokens();
        DeviceBuffer target = embeddingNorm != null ? s.normed : s.residual;
        if (shard.sharded()) {
            // each rank holds the embedding rows of its vocabulary part: a lookup of those, 0 elsewhere, summed over the ranks
            Embedding.launchGather(device, target, tokenEmbeddings, s.ids, t, hidden, config.vocabSize(), shard.firstVocab());
            shard.allReduce(target, t * hidden);
        } else {
            Embedding.launchGather(device, target, tokenEmbeddings, s.ids, t, hidden);
        }
        if (embeddingOverride != null && batch.prefill()) {
            embeddingOverride.place(batch, target);
        }
        if (positionEmbeddings != null) {
            Embedding.launchGather(device, s.projected, positionEmbeddings, s.positions, t, hidden);
            Elementwise.launchAdd(device, target, s.projected, t * hidden);
        }
        if (embeddingNorm != null) {
            embeddingNorm.apply(device, s.residual, s.normed, t);
        }
        config.miniCpm().ifPresent(m -> Elementwise.launchScale(device, s.residual, t * hidden, (float) m.scaleEmb()));
    }

    @Override
    public void close() {
        closeRecordings();
        if (step != null) {
            step.close();
        }
        if (rotary != null) {
            rotary.close();
        }
        weights.close();
    }
}
