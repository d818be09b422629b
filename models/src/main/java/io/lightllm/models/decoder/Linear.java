package io.lightllm.models.decoder;

import io.lightllm.kernels.Matmul;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/** A linear layer: y = x · wᵀ (+ bias); {@code scales} is set for int8 weights (one per row). */
public record Linear(DeviceBuffer weight, DeviceBuffer scales, DeviceBuffer bias, int outFeatures, int inFeatures) {
    public void apply(Device device, DeviceBuffer out, DeviceBuffer in, int rows) {
        if (scales != null) {
            Matmul.launchMatmulInt8(device, out, in, weight, scales, bias, rows, outFeatures, inFeatures);
        } else {
            Matmul.launchMatmul(device, out, in, weight, bias, rows, outFeatures, inFeatures);
        }
    }
}
