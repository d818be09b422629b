package io.lightllm.models.decoder;

import io.lightllm.kernels.Attention;
import io.lightllm.kernels.Elementwise;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * One pre-norm decoder layer over a nopad batch, top to bottom:
 *
 * <pre>
 * residual ─ input norm ─ attention ─┐
 * residual += ◄──────────────────────┘
 * residual ─ post-attention norm ─ MLP ─ residual +=
 * </pre>
 *
 * Each residual add is fused into the norm that follows it (the next layer's input norm, or the
 * final norm), so a layer leaves its MLP output in {@code projected} and the caller's next norm
 * adds it. MiniCPM scales both branches before they join the residual.
 */
final class DecoderLayer {
    private final Device device;
    private final Norm inputNorm, postAttentionNorm;
    private final AttentionBlock attention;
    private final Mlp mlp;
    private final int hidden;
    private final float residualScale;

    DecoderLayer(Architecture a, ModelConfig c, WeightLoader w, int layer, DeviceBuffer alibiSlopes) {
        String prefix = a.layerPrefix(layer);
        float eps = (float) c.normEps();
        this.device = w.device();
        this.hidden = c.hiddenSize();
        this.inputNorm = Norm.load(a.norm(), w, prefix + a.inputNorm(), eps, hidden);
        this.attention = new AttentionBlock(a.attention(), c, w, prefix, layer, alibiSlopes);
        this.postAttentionNorm = Norm.load(a.norm(), w, prefix + a.postAttentionNorm(), eps, hidden);
        this.mlp = Mlp.load(a.mlp(), c, w, prefix);
        this.residualScale = c.miniCpm().map(m -> (float) (m.scaleDepth() / Math.sqrt(c.numHiddenLayers()))).orElse(1f);
    }

    /**
     * Whether batch-1 steps may run this layer with its norms and residual adds folded into its GEMVs here
     * ({@link io.lightllm.kernels.FoldedGemv}): RMSNorms, no branch scaling, GEMVs that fold.
     */
    boolean folds(Device device) {
        return residualScale == 1f && inputNorm.foldable() && postAttentionNorm.foldable() && attention.folds(device) && mlp.folds(device);
    }

    /** How this layer's decode attention splits a step ({@link AttentionBlock#decodeSplits}). */
    Attention.DecodeSplits decodeSplits(int requests, int maxSeqLen, DType pool) {
        return attention.decodeSplits(requests, maxSeqLen, pool);
    }

    /**
     * {@code first}: the residual holds the embeddings and nothing is pending in {@code projected}. {@code folded} (batch 1,
     * where {@link #folds}): the projections read the residual through the norms and add into it; nothing is left pending.
     */
    void forward(StepBuffers s, Step step, boolean first, boolean folded) {
        if (folded) {
            attention.forwardFolded(s, step, inputNorm);
            mlp.forwardFolded(s, postAttentionNorm);
            return;
        }
        int t = step.tokens();
        // each norm writes its output in the type the projections after it read as it is (bf16 for a prefill on tensor cores)
        DeviceBuffer attentionInput = s.normedIn(attention.inputType(device, t));
        if (first) {
            inputNorm.apply(device, attentionInput, s.residual, t);
        } else {
            inputNorm.applyAdding(device, attentionInput, s.residual, s.projected, t);
        }
        attention.forward(s, step, attentionInput);
        scaleBranch(s.projected, t);
        DeviceBuffer mlpInput = s.normedIn(mlp.inputType(device, t));
        postAttentionNorm.applyAdding(device, mlpInput, s.residual, s.projected, t);
        mlp.forward(s, mlpInput, t);
        scaleBranch(s.projected, t);
    }

    private void scaleBranch(DeviceBuffer branch, int t) {
        if (residualScale != 1f) {
            Elementwise.launchScale(device, branch, t * hidden, residualScale);
        }
    }
}
