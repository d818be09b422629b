package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Matmul;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelOverride;

/**
 * The JVM's overrides of portable kernels. Each receives the portable kernel's arguments (in
 * its parameter order) and ignores the grid, which was chosen for the portable kernel.
 */
public final class JvmOverrides {
    private JvmOverrides() {
    }

    public static void install(JvmDevice device) {
        // Matmul.matmulTiled / matmulGemv (out, a, w, bias, hasBias, m, n, k)
        KernelOverride floatWeights = (d, grid, args) -> VectorMatmul.multiply(device, floats(device, args[0]),
                floats(device, args[1]), device.array((DeviceBuffer) args[2]), null,
                (Boolean) args[4] ? floats(device, args[3]) : null, (Integer) args[5], (Integer) args[6], (Integer) args[7]);
        device.override(Matmul.MATMUL_TILED, floatWeights);
        device.override(Matmul.MATMUL_GEMV, floatWeights);
        // Matmul.matmulInt8Tiled / matmulInt8Gemv (out, a, w, scales, bias, hasBias, m, n, k)
        KernelOverride int8Weights = (d, grid, args) -> VectorMatmul.multiply(device, floats(device, args[0]),
                floats(device, args[1]), device.array((DeviceBuffer) args[2]), floats(device, args[3]),
                (Boolean) args[5] ? floats(device, args[4]) : null, (Integer) args[6], (Integer) args[7], (Integer) args[8]);
        device.override(Matmul.MATMUL_INT8_TILED, int8Weights);
        device.override(Matmul.MATMUL_INT8_GEMV, int8Weights);
    }

    private static FloatArray floats(JvmDevice device, Object buffer) {
        NativeArray a = device.array((DeviceBuffer) buffer);
        return (FloatArray) a;
    }
}
