package io.lightllm.models.decoder;

import io.lightllm.kernels.FoldedGemv;
import io.lightllm.kernels.Norms;
import io.lightllm.models.decoder.Architecture.NormKind;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/** An RMSNorm (weight) or LayerNorm (weight and bias) over rows of {@code dim}. */
public record Norm(NormKind kind, DeviceBuffer weight, DeviceBuffer bias, float eps, int dim) {

    /** The norm whose tensors are {@code name}.weight (and {@code name}.bias for a LayerNorm). */
    public static Norm load(NormKind kind, WeightLoader w, String name, float eps, int dim) {
        return new Norm(kind, w.vector(name + ".weight"), kind == NormKind.LAYER ? w.vector(name + ".bias") : null, eps, dim);
    }

    /** out = norm(x). */
    public void apply(Device device, DeviceBuffer out, DeviceBuffer x, int rows) {
        switch (kind) {
            case RMS -> Norms.launchRmsNorm(device, out, x, weight, eps, rows, dim);
            case LAYER -> Norms.launchLayerNorm(device, out, x, weight, bias, eps, rows, dim);
        }
    }

    /** Whether this norm can be folded into the GEMV that reads its output ({@link FoldedGemv}: RMSNorm only). */
    boolean foldable() {
        return kind == NormKind.RMS;
    }

    /** This RMSNorm as a fold of the batch-1 GEMV that reads its output. */
    FoldedGemv.Fold fold() {
        if (!foldable()) {
            throw new IllegalStateException("a " + kind + " norm does not fold into a GEMV");
        }
        return FoldedGemv.Fold.rmsNorm(weight, eps);
    }

    /** residual += delta, then out = norm(residual): a residual add fused into the norm after it. */
    void applyAdding(Device device, DeviceBuffer out, DeviceBuffer residual, DeviceBuffer delta, int rows) {
        switch (kind) {
            case RMS -> Norms.launchRmsNormAddResidual(device, out, residual, delta, weight, eps, rows, dim);
            case LAYER -> Norms.launchLayerNormAddResidual(device, out, residual, delta, weight, bias, eps, rows, dim);
        }
    }
}
