package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Attention;
import io.lightllm.kernels.Matmul;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.kernels.QuantMatmul;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelOverride;
import io.lightllm.tornado.runtime.KernelRef;

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
        override(device, Matmul.MATMUL_TILED, floatWeights);
        override(device, Matmul.MATMUL_GEMV, floatWeights);
        // Matmul.matmulInt8Tiled / matmulInt8Gemv (out, a, w, scales, bias, hasBias, m, n, k)
        KernelOverride int8Weights = (d, grid, args) -> VectorMatmul.multiply(device, floats(device, args[0]),
                floats(device, args[1]), device.array((DeviceBuffer) args[2]), floats(device, args[3]),
                (Boolean) args[5] ? floats(device, args[4]) : null, (Integer) args[6], (Integer) args[7], (Integer) args[8]);
        override(device, Matmul.MATMUL_INT8_TILED, int8Weights);
        override(device, Matmul.MATMUL_INT8_GEMV, int8Weights);
        // QuantMatmul.matmulQuantTiled / matmulQuantGemv (out, a, w, format, bias, hasBias, m, n, k)
        KernelOverride packedWeights = (d, grid, args) -> VectorQuantMatmul.multiply(device, floats(device, args[0]),
                floats(device, args[1]), (ByteArray) device.array((DeviceBuffer) args[2]), QuantFormat.of((Integer) args[3]),
                (Boolean) args[5] ? floats(device, args[4]) : null, (Integer) args[6], (Integer) args[7], (Integer) args[8]);
        override(device, QuantMatmul.TILED, packedWeights);
        override(device, QuantMatmul.GEMV, packedWeights);
        // Activations.gatedActivation (out, gate, up, tokens, width, strides and offsets, kind): SiLU and tanh-GELU in vectors
        // into f32 (a 16-bit out, the input of a down projection on tensor cores, takes the portable kernel)
        overrideWhere(device, Activations.GATED,
                args -> VectorActivations.vectorized((Integer) args[9]) && ((DeviceBuffer) args[0]).dtype() == DType.F32,
                (d, grid, args) -> VectorActivations.gated(device, hostArrays(device, args)));
        // Norms.rmsNorm / rmsNormAddResidual: a row a work-group; f32 outputs over f32 or bf16 weights in vectors
        overrideWhere(device, io.lightllm.kernels.Norms.RMS_NORM,
                args -> VectorNorms.vectorized(device.array((DeviceBuffer) args[0]), device.array((DeviceBuffer) args[2])),
                (d, grid, args) -> VectorNorms.rmsNorm(device, groups(grid), hostArrays(device, args)));
        overrideWhere(device, io.lightllm.kernels.Norms.RMS_NORM_ADD_RESIDUAL,
                args -> VectorNorms.vectorized(device.array((DeviceBuffer) args[0]), device.array((DeviceBuffer) args[3])),
                (d, grid, args) -> VectorNorms.rmsNormAddResidual(device, groups(grid), hostArrays(device, args)));
        // Attention.decodeAttentionPartial / prefillAttention: the grid's group count gives the batch
        override(device, Attention.DECODE_PARTIAL, (d, grid, args) -> VectorAttention.decodePartial(device, groups(grid), hostArrays(device, args)));
        override(device, Attention.PREFILL, (d, grid, args) -> VectorAttention.prefill(device, groups(grid), hostArrays(device, args)));
        override(device, Attention.DECODE_MERGE, (d, grid, args) -> VectorAttention.decodeMerge(hostArrays(device, args)));
        override(device, io.lightllm.kernels.Rotary.ROTARY, (d, grid, args) -> JvmRotary.apply(hostArrays(device, args)));
        override(device, io.lightllm.kernels.KvCache.SPLIT_QKV, (d, grid, args) -> JvmSplitQkv.apply(device, hostArrays(device, args)));
        override(device, io.lightllm.kernels.Softmax.SOFTMAX, (d, grid, args) -> VectorSoftmax.softmax(device, groups(grid), hostArrays(device, args)));
        override(device, io.lightllm.kernels.Sampling.TEMPERATURE_SOFTMAX,
                (d, grid, args) -> VectorSoftmax.temperatureSoftmax(device, groups(grid), hostArrays(device, args)));
        override(device, io.lightllm.kernels.Sampling.TOP_K_TOP_P_THRESHOLD,
                (d, grid, args) -> JvmSampling.threshold(device, groups(grid), hostArrays(device, args)));
        override(device, io.lightllm.kernels.Sampling.ARGMAX, (d, grid, args) -> JvmSampling.argmax(device, groups(grid), hostArrays(device, args)));
        override(device, io.lightllm.kernels.Sampling.SAMPLE_FROM_THRESHOLD,
                (d, grid, args) -> JvmSampling.sampleFromThreshold(device, groups(grid), hostArrays(device, args)));
        // Vision.imageAttention (ctx, out, q, k, v, images, seq, heads, headDim, scale, queryTiles): the context is not among the arguments
        KernelOverride imageAttention = (d, grid, args) -> VectorVision.imageAttention(device, hostArrays(device, args));
        override(device, io.lightllm.kernels.Vision.ATTENTION, imageAttention);
        override(device, io.lightllm.kernels.Vision.ATTENTION_D64, imageAttention);
    }

    private static int groups(Grid grid) {
        return (int) (grid.globalSize(0) / grid.localSize(0));
    }

    /** The arguments with every buffer replaced by its host array. */
    private static Object[] hostArrays(JvmDevice device, Object[] args) {
        Object[] out = args.clone();
        for (int i = 0; i < out.length; i++) {
            if (out[i] instanceof DeviceBuffer b) {
                out[i] = device.array(b);
            }
        }
        return out;
    }

    /** {@link #override} with {@code vector} where {@code applies} to a launch's arguments, and the portable kernel elsewhere. */
    private static void overrideWhere(JvmDevice device, KernelRef kernel, java.util.function.Predicate<Object[]> applies, KernelOverride vector) {
        override(device, kernel, (d, grid, args) -> {
            if (applies.test(args)) {
                vector.launch(d, grid, args);
            } else {
                device.launchPortable(kernel, grid, args);
            }
        });
    }

    /** Registers an override that reports its time like a kernel when the device profiles (launches here are synchronous). */
    private static void override(JvmDevice device, KernelRef kernel, KernelOverride implementation) {
        device.override(kernel, (d, grid, args) -> {
            if (!device.profiling()) {
                implementation.launch(d, grid, args);
                return;
            }
            long t0 = System.nanoTime();
            implementation.launch(d, grid, args);
            device.recordTime(kernel.name(), System.nanoTime() - t0);
        });
    }

    private static FloatArray floats(JvmDevice device, Object buffer) {
        NativeArray a = device.array((DeviceBuffer) buffer);
        return (FloatArray) a;
    }
}
