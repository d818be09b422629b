package io.lightllm.models.llama;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Attention;
import io.lightllm.kernels.Elementwise;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.Norms;
import io.lightllm.kernels.Rotary;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * One Llama decoder layer over a nopad batch, top to bottom:
 *
 * <pre>
 * residual ─ rmsnorm ─ q,k,v proj ─ rotary ─ K/V into pool slots ─ attention ─ o proj ─┐
 *                                   (int8 pool: quantised; the batch's tokens read back as f32 for attention)
 * residual += ◄──────────────────────────────────────────────────────────────────────────┘
 * residual ─ rmsnorm ─ gate,up proj ─ silu(gate)·up ─ down proj ─ residual +=
 * </pre>
 *
 * Under tensor parallelism ({@link LlamaShard}) a rank runs its own heads and MLP rows and the
 * o and down outputs are summed over the ranks right after their projection.
 *
 * <p>Each residual add is fused into the norm that follows it (the next layer's input norm, or
 * the final norm), so a layer leaves its MLP output in {@code projected} and the caller's
 * next norm adds it.
 */
final class LlamaLayerInfer {
    private final Device device;
    private final ModelConfig c;
    private final float eps;
    private final Attention.Heads attentionHeads;
    private final float residualScale;
    private final Activations.Kind activation;
    private final LlamaShard shard;

    LlamaLayerInfer(Device device, ModelConfig config, LlamaShard shard) {
        this.device = device;
        this.c = config;
        this.shard = shard;
        this.eps = (float) config.normEps();
        this.attentionHeads = Attention.Heads.of(shard.heads(), shard.kvHeads(), config.headDim()).withSlidingWindow(config.slidingWindow());
        this.residualScale = config.miniCpm().map(m -> (float) (m.scaleDepth() / Math.sqrt(config.numHiddenLayers()))).orElse(1f);
        this.activation = Activations.Kind.fromConfig(config.hiddenAct().orElse("silu"));
    }

    void scale(DeviceBuffer x, int n, float factor) {
        Elementwise.launchScale(device, x, n, factor);
    }

    void forward(int layer, LlamaWeights.Layer w, LlamaModel.StepBuffers s, NopadBatch batch, TokenKvPool pool,
            RequestTokenTable table, DeviceBuffer invFreq, int rotaryDim, int attentionMaxSeqLen) {
        int t = batch.tokens(), hidden = c.hiddenSize();
        int heads = shard.heads(), kvHeads = shard.kvHeads(), headDim = c.headDim();
        // attention block; the previous layer's MLP output joins the residual here
        if (layer == 0) {
            Norms.launchRmsNorm(device, s.normed, s.residual, w.inputNorm(), eps, t, hidden);
        } else {
            Norms.launchRmsNormAddResidual(device, s.normed, s.residual, s.projected, w.inputNorm(), eps, t, hidden);
        }
        w.q().apply(device, s.q, s.normed, t);
        w.k().apply(device, s.k, s.normed, t);
        w.v().apply(device, s.v, s.normed, t);
        Rotary.launchRotary(device, s.q, s.k, s.positions, invFreq, t, heads, kvHeads, headDim, rotaryDim, c.rotaryInterleaved(), 1f);
        DeviceBuffer keys = pool.keys(layer), values = pool.values(layer);
        // an int8 pool keeps one scale per token and head, which attention applies as it reads
        boolean int8 = pool.dtype() == DType.I8;
        DeviceBuffer keyScales = int8 ? pool.keyScales(layer) : null, valueScales = int8 ? pool.valueScales(layer) : null;
        if (int8) {
            KvCache.launchCopyToPoolInt8(device, keys, keyScales, s.k, s.kvSlots, t, kvHeads, headDim);
            KvCache.launchCopyToPoolInt8(device, values, valueScales, s.v, s.kvSlots, t, kvHeads, headDim);
        } else {
            KvCache.launchCopyToPool(device, keys, s.k, s.kvSlots, t, kvHeads, headDim);
            KvCache.launchCopyToPool(device, values, s.v, s.kvSlots, t, kvHeads, headDim);
        }
        Attention.KvView kv = new Attention.KvView(keys, values, keyScales, valueScales);
        Attention.TokenTableView tokens = new Attention.TokenTableView(table.buffer(), s.requestRows, table.maxLen());
        if (batch.prefill()) {
            Attention.launchPrefillAttention(device, s.attention, s.q, kv, tokens, attentionHeads,
                    new Attention.PrefillBatch(s.starts, s.newCounts, s.prefixes, batch.requests(), t, batch.maxNewTokens()));
        } else {
            Attention.launchDecodeAttention(device, s.attention, s.q, kv, tokens, attentionHeads,
                    new Attention.DecodeBatch(s.seqLens, batch.requests(), attentionMaxSeqLen), s.decodeScratch(batch, table.maxLen()));
        }
        w.o().apply(device, s.projected, s.attention, t);
        shard.allReduce(s.projected, t * hidden); // each rank's heads give a partial sum of the o projection
        if (residualScale != 1f) {
            scale(s.projected, t * hidden, residualScale);
        }
        // MLP block: residual += attention output, then normalise
        Norms.launchRmsNormAddResidual(device, s.normed, s.residual, s.projected, w.postAttentionNorm(), eps, t, hidden);
        w.gate().apply(device, s.gate, s.normed, t);
        w.up().apply(device, s.up, s.normed, t);
        Activations.launchGated(device, activation, s.act, s.gate, s.up, t, shard.intermediate());
        w.down().apply(device, s.projected, s.act, t);
        shard.allReduce(s.projected, t * hidden);
        if (residualScale != 1f) {
            scale(s.projected, t * hidden, residualScale);
        }
    }
}
