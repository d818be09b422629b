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
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Self-attention over the Token-Attention pool, one rank's heads:
 *
 * <pre>
 * normed ─ q,k,v proj ─ (q/k norm) ─ (rotary) ─ K/V into pool slots ─ attention (+ ALiBi) ─ o proj ─ projected (summed over ranks)
 *                                     └─ one launch for f16/bf16/f32 pools ─┘
 * </pre>
 */
final class AttentionBlock {
    private final Device device;
    private final Shard shard;
    private final int layer, hidden, headDim, rotaryDim;
    private final boolean rotaryInterleaved;
    private final Linear q, k, v, o;
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
        List<Linear> qkv = switch (spec.qkv()) {
            case Qkv.Separate s -> List.of(w.rowSplit(prefix + s.q(), qDim, hidden, qRows), w.rowSplit(prefix + s.k(), kvDim, hidden, kvRows),
                    w.rowSplit(prefix + s.v(), kvDim, hidden, kvRows));
            case Qkv.Stacked s -> w.rowParts(prefix + s.name(), qDim + 2 * kvDim, hidden,
                    List.of(List.of(qRows), List.of(kvRows.shifted(qDim)), List.of(kvRows.shifted(qDim + kvDim))));
            case Qkv.PerHead s -> {
                if (c.numKeyValueHeads() != c.numAttentionHeads()) {
                    throw new ModelLoadException(s.name() + " interleaves q, k and v per head, which needs as many kv heads as heads");
                }
                List<List<Range>> parts = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
                for (int h = shard.firstHead(); h < shard.firstHead() + shard.heads(); h++) {
                    for (int part = 0; part < 3; part++) {
                        parts.get(part).add(new Range((3 * h + part) * headDim, headDim));
                    }
                }
                yield w.rowParts(prefix + s.name(), 3 * qDim, hidden, parts);
            }
        };
        this.q = qkv.get(0);
        this.k = qkv.get(1);
        this.v = qkv.get(2);
        this.o = w.columnSplit(prefix + spec.o(), hidden, qDim, qRows);
        float eps = (float) c.normEps();
        this.qNorm = spec.qNorm() == null ? null : Norm.load(NormKind.RMS, w, prefix + spec.qNorm(), eps, headDim);
        this.kNorm = spec.kNorm() == null ? null : Norm.load(NormKind.RMS, w, prefix + spec.kNorm(), eps, headDim);
        Attention.Heads h = Attention.Heads.of(shard.heads(), shard.kvHeads(), headDim).withSlidingWindow(c.slidingWindow());
        this.heads = spec.positions() == Positions.ALIBI ? h.withAlibi(alibiSlopes) : h;
    }

    /** This rank's ALiBi slopes (of its heads), uploaded once per model and shared by the layers. */
    static DeviceBuffer alibiSlopes(ModelConfig c, WeightLoader w) {
        float[] all = Attention.alibiSlopes(c.numAttentionHeads());
        Shard shard = w.shard();
        float[] mine = java.util.Arrays.copyOfRange(all, shard.firstHead(), shard.firstHead() + shard.heads());
        return w.own(w.device().upload(FloatArray.fromArray(mine)));
    }

    /** s.normed → s.projected: the attention output projected back to the hidden size and summed over the ranks. */
    void forward(StepBuffers s, Step step) {
        int t = step.tokens();
        q.apply(device, s.q, s.normed, t);
        k.apply(device, s.k, s.normed, t);
        v.apply(device, s.v, s.normed, t);
        if (qNorm != null) {
            qNorm.apply(device, s.q, s.q, t * shard.heads());
            kNorm.apply(device, s.k, s.k, t * shard.kvHeads());
        }
        DeviceBuffer keys = step.pool().keys(layer), values = step.pool().values(layer);
        // an int8 or fp8 pool keeps one scale per token and head, which attention applies as it reads
        boolean scaled = KvCache.hasScales(step.pool().dtype());
        DeviceBuffer keyScales = scaled ? step.pool().keyScales(layer) : null, valueScales = scaled ? step.pool().valueScales(layer) : null;
        if (rotaryDim > 0 && !scaled) {
            // one launch rotates q and k and writes k and v into the pool (three small kernels before)
            KvCache.launchRotaryIntoPool(device, s.q, s.k, s.v, s.positions, new Rotary.Rope(step.invFreq(), rotaryDim, rotaryInterleaved, 1f),
                    keys, values, s.kvSlots, t, heads);
        } else {
            if (rotaryDim > 0) {
                Rotary.launchRotary(device, s.q, s.k, s.positions, step.invFreq(), t, shard.heads(), shard.kvHeads(), headDim, rotaryDim,
                        rotaryInterleaved, 1f);
            }
            if (scaled) {
                KvCache.launchCopyToPoolScaled(device, keys, keyScales, s.k, s.kvSlots, t, shard.kvHeads(), headDim);
                KvCache.launchCopyToPoolScaled(device, values, valueScales, s.v, s.kvSlots, t, shard.kvHeads(), headDim);
            } else {
                KvCache.launchCopyToPool(device, keys, s.k, s.kvSlots, t, shard.kvHeads(), headDim);
                KvCache.launchCopyToPool(device, values, s.v, s.kvSlots, t, shard.kvHeads(), headDim);
            }
        }
        Attention.KvView kv = new Attention.KvView(keys, values, keyScales, valueScales);
        Attention.TokenTableView tokens = new Attention.TokenTableView(step.table().buffer(), s.requestRows, step.table().maxLen());
        if (step.batch().prefill()) {
            Attention.launchPrefillAttention(device, s.attention, s.q, kv, tokens, heads,
                    new Attention.PrefillBatch(s.starts, s.newCounts, s.prefixes, step.batch().requests(), t, step.batch().maxNewTokens()));
        } else {
            Attention.launchDecodeAttention(device, s.attention, s.q, kv, tokens, heads,
                    new Attention.DecodeBatch(s.seqLens, step.batch().requests(), step.attentionMaxSeqLen()),
                    s.decodeScratch(heads, step.table().maxLen()));
        }
        o.apply(device, s.projected, s.attention, t);
        shard.allReduce(s.projected, t * hidden); // each rank's heads give a partial sum of the o projection
    }
}
