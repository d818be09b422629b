package io.lightllm.models.vision;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Elementwise;
import io.lightllm.kernels.Vision;
import io.lightllm.models.decoder.Linear;
import io.lightllm.models.decoder.Norm;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/** One pre-LayerNorm ViT block, as CLIP's and Qwen-VL's towers have it: attention within each image, then an MLP, each added to the stream. */
record VitBlock(Norm norm1, Linear q, Linear k, Linear v, Linear o, Norm norm2, Linear fc1, Linear fc2) {
    /**
     * x += o(attention(q, k, v of norm1(x))); x += fc2(act(fc1(norm2(x)))), in place on x [images * seq, width].
     * h, q, k, v (rows x width) and mlp (rows x intermediate) are scratch.
     */
    void apply(Device device, DeviceBuffer x, DeviceBuffer h, DeviceBuffer qOut, DeviceBuffer kOut, DeviceBuffer vOut, DeviceBuffer mlp,
            int images, int seq, int heads, int width, int intermediate, Activations.Kind act) {
        int rows = images * seq;
        norm1.apply(device, h, x, rows);
        q.apply(device, qOut, h, rows);
        k.apply(device, kOut, h, rows);
        v.apply(device, vOut, h, rows);
        Vision.launchAttention(device, h, qOut, kOut, vOut, images, seq, heads, width / heads);
        o.apply(device, qOut, h, rows);
        Elementwise.launchAdd(device, x, qOut, rows * width);
        norm2.apply(device, h, x, rows);
        fc1.apply(device, mlp, h, rows);
        Activations.launchInPlace(device, act, mlp, rows * intermediate);
        fc2.apply(device, qOut, mlp, rows);
        Elementwise.launchAdd(device, x, qOut, rows * width);
    }
}
