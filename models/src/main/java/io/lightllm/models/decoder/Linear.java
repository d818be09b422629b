package io.lightllm.models.decoder;

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

    /** How a weight matrix [n, k] is stored on the device, and the kernels that multiply by it. */
    public sealed interface Weight {
        /** out[m, n] = in[m, k] · wᵀ + bias (or null). */
        void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k);
    }

    /** f32, f16 or bf16 elements. */
    public record Dense(DeviceBuffer values) implements Weight {
        public void multiply(Device device, DeviceBuffer out, DeviceBuffer in, DeviceBuffer bias, int m, int n, int k) {
            Matmul.launchMatmul(device, out, in, values, bias, m, n, k);
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
