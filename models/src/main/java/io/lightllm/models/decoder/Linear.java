package io.lightllm.models.decoder;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.FoldedGemv;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.Matmul;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.kernels.QuantMatmul;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/** A linear layer: y = x · wᵀ (+ bias), with w [outFeatures, inFeatures] stored as {@code weight} says. */
public record Linear(Weight weight, DeviceBuffer bias, int outFeatures, int inFeatures) {
    public void apply(Device device, DeviceBuffer out, DeviceBuffer in, int rows) {
        weight.multiply(device, out, in, bias, rows, outFeatures, inFeatures);
    }

    /** The type this layer reads its input in at {@code rows} rows without converting it first ({@link Matmul#activationType}). */
    public DType inputType(Device device, int rows) {
        return weight.inputType(device, rows, inFeatures);
    }

    /** The {@link #inputType} that layers reading one input all share at {@code rows} rows; f32 where they differ. */
    static DType sharedInputType(Device device, int rows, Linear... layers) {
        DType type = layers[0].inputType(device, rows);
        for (Linear l : layers) {
            if (l.inputType(device, rows) != type) {
                return DType.F32;
            }
        }
        return type;
    }

    /**
     * For a layer of rows [gate; up]: out[rows, outFeatures / 2] = act(gate) * up in one launch, where the weight's
     * kernels can ({@link Matmul#gatedGemvApplies}); false (nothing done) where they cannot.
     */
    public boolean applyGated(Device device, DeviceBuffer out, DeviceBuffer in, int rows, Activations.Kind act) {
        return weight.multiplyGated(device, out, in, bias, rows, outFeatures / 2, inFeatures, act);
    }

    /** Whether a batch-1 {@link #applyFolded} runs here ({@link FoldedGemv}): for a layer of rows [gate; up] with {@code gated}. */
    public boolean folds(Device device, boolean gated) {
        return gated ? weight.foldsGated(device, inFeatures) : weight.folds(device, inFeatures);
    }

    /** out[1, outFeatures] = in · wᵀ + bias at batch 1 with {@code fold}: in through an RMSNorm, or added into out. */
    public void applyFolded(Device device, DeviceBuffer out, DeviceBuffer in, FoldedGemv.Fold fold) {
        weight.multiplyFolded(device, out, in, bias, outFeatures, inFeatures, fold);
    }

    /**
     * Whether a batch-1 {@link #applyFoldedSplit} runs here: this fused q/k/v projection's GEMV, its norm folded, does
     * {@code split}'s work as its epilogue as well (so that no split kernel follows it).
     */
    public boolean foldsSplit(Device device, KvCache.QkvSplit split) {
        return weight.foldsSplit(device, inFeatures, split);
    }

    /** {@link #applyFolded} of a fused q/k/v projection, its output split by its own epilogue into {@code split}'s buffers and pools. */
    public void applyFoldedSplit(Device device, DeviceBuffer in, FoldedGemv.Fold fold, KvCache.QkvSplit split) {
        weight.multiplySplitFolded(device, in, bias, inFeatures, fold, split);
    }

    /** {@link #applyGated} at batch 1 with the input through the RMSNorm of {@code fold}. */
    public void applyGatedFolded(Device device, DeviceBuffer out, DeviceBuffer in, Activations.Kind act, FoldedGemv.Fold fold) {
        weight.multiplyGatedFolded(device, out, in, bias, outFeatures / 2, inFeatures, act, fold);
    }

    /** How a weight matrix [n, k] is stored on the device, and the kernels that multiply by it. */
    public sealed interface Weight {
        /** out[m, n] = in[m, k] · wᵀ + bias (or null). */
        void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k);

        /** The input type {@link #multiply} reads without a conversion at m rows: f32 unless its kernel takes 16-bit activations. */
        default DType inputType(Device device, int m, int k) {
            return DType.F32;
        }

        /** out[m, width] = act(gate) * up for w of rows [gate; up] in one launch, if this storage has such a kernel here; else false. */
        default boolean multiplyGated(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int width, int k,
                Activations.Kind act) {
            return false;
        }

        /** Whether this storage's batch-1 GEMV folds a norm or an add here ({@link FoldedGemv}). */
        default boolean folds(Device device, int k) {
            return false;
        }

        /** {@link #folds} for the gated [gate; up] GEMV. */
        default boolean foldsGated(Device device, int k) {
            return false;
        }

        /** The batch-1 product with a fold, where {@link #folds} says so. */
        default void multiplyFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int n, int k, FoldedGemv.Fold fold) {
            throw new UnsupportedOperationException(getClass().getSimpleName() + " weights fold nothing into their GEMV");
        }

        /** Whether this storage's batch-1 normed GEMV does a fused q/k/v projection's split as well ({@link #multiplySplitFolded}). */
        default boolean foldsSplit(Device device, int k, KvCache.QkvSplit split) {
            return false;
        }

        /** The batch-1 product with a folded norm, split by its epilogue, where {@link #foldsSplit} says so. */
        default void multiplySplitFolded(Device device, DeviceBuffer in, DeviceBuffer bias, int k, FoldedGemv.Fold fold, KvCache.QkvSplit split) {
            throw new UnsupportedOperationException(getClass().getSimpleName() + " weights split nothing in their GEMV");
        }

        /** The batch-1 gated product with a folded norm, where {@link #foldsGated} says so. */
        default void multiplyGatedFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int width, int k,
                Activations.Kind act, FoldedGemv.Fold fold) {
            throw new UnsupportedOperationException(getClass().getSimpleName() + " weights fold nothing into a gated GEMV");
        }
    }

    /** f32, f16 or bf16 elements. */
    public record Dense(DeviceBuffer values) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            Matmul.launchMatmul(device, out, in, values, bias, m, n, k);
        }

        @Override
        public DType inputType(Device device, int m, int k) {
            return Matmul.activationType(device, values, m, k);
        }

        @Override
        public boolean multiplyGated(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int width, int k,
                Activations.Kind act) {
            if (!Matmul.gatedGemvApplies(device, m, k)) {
                return false;
            }
            Matmul.launchGatedGemv(device, out, in, values, bias, act, width, k);
            return true;
        }

        @Override
        public boolean folds(Device device, int k) {
            return FoldedGemv.floatApplies(device, values.dtype(), k);
        }

        @Override
        public boolean foldsGated(Device device, int k) {
            return FoldedGemv.gatedApplies(device, values.dtype(), k);
        }

        @Override
        public void multiplyFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int n, int k, FoldedGemv.Fold fold) {
            FoldedGemv.launchFloat(device, out, in, values, bias, n, k, fold);
        }

        @Override
        public void multiplyGatedFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int width, int k,
                Activations.Kind act, FoldedGemv.Fold fold) {
            FoldedGemv.launchGated(device, out, in, values, bias, act, width, k, fold);
        }
    }

    /** int8 codes with one f32 scale per row ({@link Matmul#quantizeInt8}). */
    public record Int8Rows(DeviceBuffer codes, DeviceBuffer scales) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            Matmul.launchMatmulInt8(device, out, in, codes, scales, bias, m, n, k);
        }

        @Override
        public DType inputType(Device device, int m, int k) {
            return Matmul.int8ActivationType(device, m, k);
        }

        @Override
        public boolean multiplyGated(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int width, int k,
                Activations.Kind act) {
            if (!Matmul.gatedInt8Applies(device, m, k)) {
                return false;
            }
            Matmul.launchGatedGemvInt8(device, out, in, codes, scales, bias, act, width, k);
            return true;
        }

        @Override
        public boolean folds(Device device, int k) {
            return FoldedGemv.int8Applies(device, k);
        }

        @Override
        public boolean foldsGated(Device device, int k) {
            return FoldedGemv.int8GatedApplies(device, k);
        }

        @Override
        public void multiplyFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int n, int k, FoldedGemv.Fold fold) {
            FoldedGemv.launchInt8(device, out, in, codes, scales, bias, n, k, fold);
        }

        @Override
        public void multiplyGatedFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int width, int k,
                Activations.Kind act, FoldedGemv.Fold fold) {
            FoldedGemv.launchInt8Gated(device, out, in, codes, scales, bias, act, width, k, fold);
        }
    }

    /** Rows of blocks of a {@link QuantFormat} (int4, or a GGUF block type), decoded inside the kernels. */
    public record Packed(DeviceBuffer blocks, QuantFormat format) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            QuantMatmul.launch(device, out, in, blocks, format, bias, m, n, k);
        }

        @Override
        public DType inputType(Device device, int m, int k) {
            return QuantMatmul.activationType(device, format, m, k);
        }

        @Override
        public boolean multiplyGated(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int width, int k,
                Activations.Kind act) {
            if (!QuantMatmul.gatedApplies(device, format, m, k)) {
                return false;
            }
            QuantMatmul.launchGated(device, out, in, blocks, format, bias, act, m, width, k);
            return true;
        }

        @Override
        public boolean folds(Device device, int k) {
            return FoldedGemv.packedApplies(device, format, k);
        }

        @Override
        public boolean foldsGated(Device device, int k) {
            return FoldedGemv.packedGatedApplies(device, format, k);
        }

        @Override
        public void multiplyFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int n, int k, FoldedGemv.Fold fold) {
            FoldedGemv.launchPacked(device, out, in, blocks, format, bias, n, k, fold);
        }

        @Override
        public void multiplyGatedFolded(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int width, int k,
                Activations.Kind act, FoldedGemv.Fold fold) {
            FoldedGemv.launchPackedGated(device, out, in, blocks, format, bias, act, width, k, fold);
        }

        @Override
        public boolean foldsSplit(Device device, int k, KvCache.QkvSplit split) {
            return FoldedGemv.packedSplitApplies(device, format, k, split);
        }

        @Override
        public void multiplySplitFolded(Device device, DeviceBuffer in, DeviceBuffer bias, int k, FoldedGemv.Fold fold, KvCache.QkvSplit split) {
            FoldedGemv.launchPackedSplit(device, in, blocks, format, bias, k, fold, split);
        }
    }
}
