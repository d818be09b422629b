package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/** Small element-wise kernels (MiniCPM's embedding, residual-branch and logit scalings). */
public final class Elementwise {
    public static final KernelRef SCALE = KernelRef.of(Elementwise.class, "scale");

    private Elementwise() {
    }

    /** x[i] *= factor for i in [0, n). */
    public static void scale(FloatArray x, float factor, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) * factor);
        }
    }

    public static void launchScale(Device device, DeviceBuffer x, int n, float factor) {
        device.launch(SCALE, Grid.of(Math.max(1, n)), x, factor, n);
    }
}
