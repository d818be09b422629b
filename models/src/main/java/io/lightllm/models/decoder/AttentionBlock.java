package io.lightllm.models.decoder;

import io.lightllm.kernels.Attention;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.Rotary;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture.AttentionSpec;
import io.lightllm.models.decoder.Architecture.NormKind;
import io.lightllm.models.decoder.Architecture.Positions;
import io.lightllm.models.decoder.Architecture.Qkv;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Self-attention over the Token-Attention pool, one rank's heads:
 *
 * <pre>
 * normed ─ qkv proj ─ split (+ rotary, + K/V into pool slots) ─ attention (+ ALiBi) ─ o proj ─ projected (summed over ranks)
 *                     └ (q/k norm) ─ (rotary) ─ K/V into pool: where norms come first or the pool holds codes
 * </pre>
 * q, k and v are one projection (one matmul, one epilogue launch) unless a GGUF file stores them in
 * different block types.
 */
final class AttentionBlock {
    private final Device device;
    private final Shard shard;
    private final int layer, hidden, headDim, rotaryDim;
    private final boolean rotaryInterleaved;
    private final Linear qkv, o;
    private final Linear q, k, v; // only where q, k and v cannot be one projection (qkv null)
    private final Norm qNorm, kNorm;
    private final Attention.Heads heads;

    AttentionBlock(AttentionSpec spec, ModelConfig c, WeightLoader w, String prefix, int layer, DeviceBuffer alibiSlopes) {
        this.device = w.device();
        this.shard = w.shard();
        this.layer = layer;
        this.hidden = c.hiddenSize();
        this.headDim = c.headDim();
        this.rotaryDim = spec.positions() == Positions.ROTARY ? c.rotaryDim() : 0;
        this.rotaryInterleaved = c.rotaryInterleaved();
        int qDim = c.numAttentionHeads() * headDim, kvDim = c.numKeyValueHeads() * headDim;
        Range qRows = new Range(shard.firstHead() * headDim, shard.heads() * headDim);
        Range kvRows = new Range(shard.firstKvHead() * headDim, shard.kvHeads() * headDim);
        // q, k and v as one projection where they are stored in one format (one GEMV a decode step, not three)
        this.qkv = switch (spec.qkv()) {
            case Qkv.Separate s -> w.stackedRows(List.of(new WeightLoader.RowsOf(prefix + s.q(), qDim, qRows),
                    new WeightLoader.RowsOf(prefix + s.k(), kvDim, kvRows), new WeightLoader.RowsOf(prefix + s.v(), kvDim, kvRows)), hidden);
            case Qkv.Stacked s -> {
                int stored = qDim + 2 * kvDim;
                yield w.stackedRows(List.of(new WeightLoader.RowsOf(prefix + s.name(), stored, qRows),
                        new WeightLoader.RowsOf(prefix + s.name(), stored, kvRows.shifted(qDim)),
                        new WeightLoader.RowsOf(prefix + s.name(), stored, kvRows.shifted(qDim + kvDim))), hidden);
            }
            case Qkv.PerHead s -> {
                if (c.numKeyValueHeads() != c.numAttentionHeads()) {
                    throw new ModelLoadException(s.name() + " interleaves q, k and v per head, which needs as many kv heads as heads");
                }
                List<WeightLoader.RowsOf> parts = new ArrayList<>();
                for (int part = 0; part < 3; part++) {
                    for (int h = shard.firstHead(); h < shard.firstHead() + shard.heads(); h++) {
                        parts.add(new WeightLoader.RowsOf(prefix + s.name(), 3 * qDim, new Range((3 * h + part) * headDim, headDim)));
                    }
                }
                yield w.stackedRows(parts, hidden);
            }
        };
        // stored in different formats (a GGUF file's v in another block type): three projections
        Qkv.Separate apart = qkv == null ? (Qkv.Separate) spec.qkv() : null;
        this.q = apart == null ? null : w.rowSplit(prefix + apart.q(), qDim, hidden, qRows);
        this.k = apart == null ? null : w.rowSplit(prefix + apart.k(), kvDim, hidden, kvRows);
        this.v = apart == null ? null : w.rowSplit(prefix + apart.v(), kvDim, hidden, kvRows);
        this.o = w.columnSplit(prefix + spec.o(), hidden, qDim, qRows);
        float eps = (float) c.normEps();
        this.qNorm = spec.qNorm() == null ? null : Norm.load(NormKind.RMS, w, prefix + spec.qNorm(), eps, headDim);
        this.kNorm = spec.kNorm() == null ? null : Norm.load(NormKind.RMS, w, prefix + spec.kNorm(), eps, headDim);
        Attention.Heads h = Attention.Heads.of(shard.heads(), shard.kvHeads(), headDim).withSlidingWindow(c.slidingWindow());
        this.heads = spec.positions() == Positions.ALIBI ? h.withAlibi(alibiSlopes) : h;
    }

    /**
     * How this layer's decode attention spreads a step of {@code requests} requests, the longest {@code maxSeqLen} tokens,
     * over a pool of {@code pool}: the only part of a recorded decode step that depends on the context's length.
     */
    Attention.DecodeSplits decodeSplits(int requests, int maxSeqLen, DType pool) {
        return Attention.DecodeSplits.choose(device, requests, heads, maxSeqLen, pool);
    }

    /** This rank's ALiBi slopes (of its heads), uploaded once per model and shared by the layers. */
    static DeviceBuffer alibiSlopes(ModelConfig c, WeightLoader w) {
        float[] all = Attention.alibiSlopes(c.numAttentionHeads());
        Shard shard = w.shard();
        float[] mine = java.util.Arrays.copyOfRange(all, shard.firstHead(), shard.firstHead() + shard.heads());
        return w.own(w.device().upload(FloatArray.fromArray(mine)));
    }

    /**
     * input (the normed residual, in {@link #inputType}) → s.projected: the attention output projected back to the
     * hidden size and summed over the ranks.
     */
    void forward(StepBuffers s, Step step, DeviceBuffer input) {
        forward(s, step, input, null);
    }

    /** The type the input projections read at {@code tokens} rows as they are ({@link Linear#inputType}); f32 where they differ. */
    DType inputType(Device device, int tokens) {
        return qkv != null ? qkv.inputType(device, tokens) : Linear.sharedInputType(device, tokens, q, k, v);
    }

    /** Batch 1, where {@link #folds}: s.residual through {@code norm} → attention → o adds into s.residual, with no norm launch. */
    void forwardFolded(StepBuffers s, Step step, Norm norm) {
        forward(s, step, s.residual, norm);
    }

    /**
     * Whether a batch-1 step may fold the input norm into the q/k/v projection and the residual add into o here
     * ({@link io.lightllm.kernels.FoldedGemv}; one rank: o's partial sums must be all-reduced before they join the residual).
     */
    boolean folds(Device device) {
        boolean in = qkv != null ? qkv.folds(device, false) : q.folds(device, false) && k.folds(device, false) && v.folds(device, false);
        return in && o.folds(device, false) && !shard.sharded();
    }

    /** {@link #forward(StepBuffers, Step, DeviceBuffer)}, or with {@code folded} {@link #forwardFolded} (input: the residual). */
    private void forward(StepBuffers s, Step step, DeviceBuffer input, Norm folded) {
        int t = step.tokens();
        DeviceBuffer keys = step.pool().keys(layer), values = step.pool().values(layer);
        // an int8 or fp8 pool keeps one scale per token and head, which attention applies as it reads
        boolean scaled = KvCache.hasScales(step.pool().dtype());
        DeviceBuffer keyScales = scaled ? step.pool().keyScales(layer) : null, valueScales = scaled ? step.pool().valueScales(layer) : null;
        Rotary.Rope rope = rotaryDim > 0 ? new Rotary.Rope(step.invFreq(), rotaryDim, rotaryInterleaved, 1f) : null;
        // the fused projection's epilogue rotates (unless q/k norms come first) and fills the pool (unless it holds codes)
        boolean rotated = qkv != null && qNorm == null, pooled = rotated && !scaled;
        Attention.KvView kv = new Attention.KvView(keys, values, keyScales, valueScales);
        // a step of prompts alone may hand its prefill attention the query operand it makes of f32 rows (from the fused
        // split, which writes it in their place) and take its rows in the o projection's input type (no narrowing launch)
        boolean prompts = step.batch().decodes() == 0;
        DType queryType = prompts && rotated ? Attention.prefillQueryType(device, kv, heads) : DType.F32;
        DType outType = prompts ? Attention.prefillOutputType(device, kv, heads, o.inputType(device, t)) : DType.F32;
        DeviceBuffer queries = s.queriesIn(queryType), attended = s.attentionIn(outType);
        if (qkv != null) {
            KvCache.QkvSplit split = new KvCache.QkvSplit(queries, s.k, s.v, s.positions, rotated ? rope : null, pooled ? keys : null,
                    pooled ? values : null, s.kvSlots, heads);
            if (folded != null && qkv.foldsSplit(device, split)) {
                qkv.applyFoldedSplit(device, input, folded.fold(), split); // the projection's epilogue splits: no split launch
            } else {
                project(qkv, s.qkv, input, t, folded);
                KvCache.launchSplitQkv(device, s.qkv, split, t);
            }
        } else {
            project(q, s.q, input, t, folded);
            project(k, s.k, input, t, folded);
            project(v, s.v, input, t, folded);
        }
        if (qNorm != null) {
            qNorm.apply(device, s.q, s.q, t * shard.heads());
            kNorm.apply(device, s.k, s.k, t * shard.kvHeads());
        }
        if (rope != null && !rotated) {
            Rotary.launchRotary(device, s.q, s.k, s.positions, rope, t, shard.heads(), shard.kvHeads(), headDim);
        }
        if (scaled) {
            KvCache.launchCopyToPoolScaled(device, keys, keyScales, s.k, s.kvSlots, t, shard.kvHeads(), headDim);
            KvCache.launchCopyToPoolScaled(device, values, valueScales, s.v, s.kvSlots, t, shard.kvHeads(), headDim);
        } else if (!pooled) {
            KvCache.launchCopyToPool(device, keys, s.k, s.kvSlots, t, shard.kvHeads(), headDim);
            KvCache.launchCopyToPool(device, values, s.v, s.kvSlots, t, shard.kvHeads(), headDim);
        }
        Attention.TokenTableView tokens = new Attention.TokenTableView(step.table().buffer(), s.requestRows, step.table().maxLen());
        attend(s, step, attended, queries, kv, tokens, t);
        if (folded != null) {
            o.applyFolded(device, s.residual, attended, io.lightllm.kernels.FoldedGemv.Fold.ADD);
        } else {
            o.apply(device, s.projected, attended, t);
            shard.allReduce(s.projected, t * hidden); // each rank's heads give a partial sum of the o projection
        }
    }

    /** An input projection: of the normed input, or (folded) of the residual through the norm inside the GEMV. */
    private void project(Linear l, DeviceBuffer out, DeviceBuffer input, int t, Norm folded) {
        if (folded == null) {
            l.apply(device, out, input, t);
        } else {
            l.applyFolded(device, out, input, folded.fold());
        }
    }

    /**
     * Attention of the step's queries over the pool: decode attention (flash-decoding) for the decodes at the head of the
     * batch ({@link io.lightllm.models.infer.NopadBatch#decodes}: a decode step's all; chunked prefill's, which it puts first), prefill
     * attention for the rest, which start at {@link StepBuffers#tailStarts}. A decode thus takes the same kernel whether
     * prompt chunks share its step or not, which batch invariance needs as well.
     */
    private void attend(StepBuffers s, Step step, DeviceBuffer out, DeviceBuffer queries, Attention.KvView kv, Attention.TokenTableView tokens,
            int t) {
        int requests = step.batch().requests(), decodes = step.batch().decodes();
        if (decodes > 0) {
            Attention.launchDecodeAttention(device, out, queries, kv, tokens, heads,
                    new Attention.DecodeBatch(s.seqLens, decodes, step.attentionMaxSeqLen()), s.decodeScratch(heads, step.table().maxLen()));
        }
        if (decodes == 0) {
            Attention.launchPrefillAttention(device, out, queries, kv, tokens, heads,
                    new Attention.PrefillBatch(s.starts, s.newCounts, s.prefixes, requests, t, step.batch().maxNewTokens()));
        } else if (decodes < requests) {
            Attention.launchPrefillAttention(device, out, queries, kv,
                    new Attention.TokenTableView(tokens.reqToToken(), s.tailRequestRows, tokens.maxLen()), heads,
                    new Attention.PrefillBatch(s.tailStarts, s.tailNewCounts, s.tailPrefixes, requests - decodes, t, step.batch().maxNewTokens()));
        }
    }
}
