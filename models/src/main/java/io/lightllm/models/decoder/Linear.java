package io.lightllm.models.decoder;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Matmul;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.kernels.QuantMatmul;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/** A linear layer: y = x · wᵀ (+ bias), with w [outFeatures, inFeatures] stored as {@code weight} says. */
public record Linear(Weight weight, DeviceBuffer bias, int outFeatures, int inFeatures) {
    public void apply(Device device, DeviceBuffer out, DeviceBuffer in, int rows) {
        weight.multiply(device, out, in, bias, rows, outFeatures, inFeatures);
    }

    /**
     * For a layer of rows [gate; up]: out[rows, outFeatures / 2] = act(gate) * up in one launch, where the weight's
     * kernels can ({@link Matmul#gatedGemvApplies}); false (nothing done) where they cannot.
     */
    public boolean applyGated(Device device, DeviceBuffer out, DeviceBuffer in, int rows, Activations.Kind act) {
        return weight.multiplyGated(device, out, in, bias, rows, outFeatures / 2, inFeatures, act);
    }

    /** How a weight matrix [n, k] is stored on the device, and the kernels that multiply by it. */
    public sealed interface Weight {
        /** out[m, n] = in[m, k] · wᵀ + bias (or null). */
        void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k);

        /** out[m, width] = act(gate) * up for w of rows [gate; up] in one launch, if this storage has such a kernel here; else false. */
        default boolean multiplyGated(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int width, int k,
                Activations.Kind act) {
            return false;
        }
    }

    /** f32, f16 or bf16 elements. */
    public record Dense(DeviceBuffer values) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            Matmul.launchMatmul(device, out, in, values, bias, m, n, k);
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
    }

    /** int8 codes with one f32 scale per row ({@link Matmul#quantizeInt8}). */
    public record Int8Rows(DeviceBuffer codes, DeviceBuffer scales) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            Matmul.launchMatmulInt8(device, out, in, codes, scales, bias, m, n, k);
        }
    }

    /** Rows of blocks of a {@link QuantFormat} (int4, or a GGUF block type), decoded inside the kernels. */
    public record Packed(DeviceBuffer blocks, QuantFormat format) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            QuantMatmul.launch(device, out, in, blocks, format, bias, m, n, k);
        }
    }
}
