package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * RMSNorm and LayerNorm over the rows of a row-major [rows, dim] f32 tensor, one work-group
 * per row with local-memory reductions (local size: a power of two up to
 * {@link GroupReduce#MAX_LOCAL}). The fused-residual variants first do
 * {@code residual += x} (stored back) and then normalise the updated residual, as
 * LightLLM's and vLLM's {@code fused_add_rms_norm}. Weights and biases may be f32, f16 or bf16; so may
 * the output, rounded as it is stored: what a tensor-core GEMM reads next without a conversion of its own
 * ({@link Matmul#activationType}).
 */
public final class Norms {
    public static final KernelRef RMS_NORM = KernelRef.of(Norms.class, "rmsNorm");
    public static final KernelRef RMS_NORM_ADD_RESIDUAL = KernelRef.of(Norms.class, "rmsNormAddResidual");
    public static final KernelRef LAYER_NORM = KernelRef.of(Norms.class, "layerNorm");
    public static final KernelRef LAYER_NORM_ADD_RESIDUAL = KernelRef.of(Norms.class, "layerNormAddResidual");

    private Norms() {
    }

    /** out[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * weight. */
    public static void rmsNorm(KernelContext ctx, NativeArray out, FloatArray x, NativeArray weight, float eps, int dim) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        rmsNormRow(ctx, scratch, out, x, x, false, weight, eps, dim);
    }

    /** residual[r] += x[r]; out[r] = rmsNorm(residual[r]) * weight. */
    public static void rmsNormAddResidual(KernelContext ctx, NativeArray out, FloatArray residual, FloatArray x, NativeArray weight,
            float eps, int dim) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        rmsNormRow(ctx, scratch, out, residual, x, true, weight, eps, dim);
    }

    /**
     * The RMSNorm kernels' body for row {@code groupIdx}: with {@code add}, {@code row} += x first (the
     * residual stream), then out = row * rsqrt(mean(row^2) + eps) * weight. Rows of a multiple of 4
     * elements go 4 at a time (16-byte loads) with two runs' loads issued before any store: element by
     * element, each item's next load waited for its last store (the arrays may alias), 16 dependent
     * round trips a pass at 4096 elements and 256 items, and the residual norm took some 15 us a launch
     * at batch 1 on an H100, 64 launches a step of an 8B model.
     */
    static void rmsNormRow(KernelContext ctx, float[] scratch, NativeArray out, FloatArray row, FloatArray x, boolean add, NativeArray weight,
            float eps, int dim) {
        float[] a0 = new float[4];
        float[] a1 = new float[4];
        float[] b0 = new float[4];
        float[] b1 = new float[4];
        int base = ctx.groupIdx * dim;
        float squares = addAndSum(ctx, row, x, add, true, base, dim, a0, a1, b0, b1);
        float inv = KMath.rsqrt(GroupReduce.sum(ctx, scratch, squares) / dim + eps);
        // no bias: the weight stands in for it, unread
        writeNormalised(ctx, out, row, base, dim, 0f, inv, weight, weight, false, a0, a1, b0, b1);
    }

    /**
     * The first pass of both norms over row {@code base..}: with {@code add}, row += x, stored back; returns this
     * item's sum of the (new) elements, or with {@code squared} of their squares. Runs of 4 with two runs' loads
     * before any store where dim is a multiple of 4 ({@link #rmsNormRow}); element by element otherwise, each item
     * re-reading only the elements it wrote itself, so no barrier is needed before the next pass. a0..b1: scratch of 4.
     */
    static float addAndSum(KernelContext ctx, FloatArray row, FloatArray x, boolean add, boolean squared, int base, int dim, float[] a0,
            float[] a1, float[] b0, float[] b1) {
        int local = ctx.localGroupSizeX;
        float sum = 0f;
        if (dim % 4 == 0) {
            int runs = dim / 4;
            for (int j = ctx.localIdx; j < runs; j += 2 * local) {
                boolean second = j + local < runs;
                int at0 = base + 4 * j;
                int at1 = base + 4 * (second ? j + local : j); // the first run again, unused, past the row's end
                loadRuns(row, x, add, at0, at1, second, a0, a1, b0, b1);
                for (int e = 0; e < 4; e++) {
                    float v0 = a0[e];
                    float v1 = second ? a1[e] : 0f;
                    sum += squared ? v0 * v0 + v1 * v1 : v0 + v1;
                }
            }
        } else {
            for (int i = ctx.localIdx; i < dim; i += local) {
                float v = add ? row.get(base + i) + x.get(base + i) : row.get(base + i);
                if (add) {
                    row.set(base + i, v);
                }
                sum += squared ? v * v : v;
            }
        }
        return sum;
    }

    /**
     * The last pass of both norms: out = (row - mean) * inv * weight, plus bias with {@code hasBias}, walked as
     * {@link #addAndSum} walks the row (RMSNorm passes mean 0, which leaves every element as it is). a0..b1: scratch of 4.
     */
    static void writeNormalised(KernelContext ctx, NativeArray out, FloatArray row, int base, int dim, float mean, float inv, NativeArray weight,
            NativeArray bias, boolean hasBias, float[] a0, float[] a1, float[] b0, float[] b1) {
        float[] c0 = new float[4];
        float[] c1 = new float[4];
        int local = ctx.localGroupSizeX;
        if (dim % 4 == 0) {
            int runs = dim / 4;
            for (int j = ctx.localIdx; j < runs; j += 2 * local) {
                boolean second = j + local < runs;
                int at0 = base + 4 * j;
                int at1 = base + 4 * (second ? j + local : j);
                row.getFloats(at0, a0, 0, 4);
                row.getFloats(at1, a1, 0, 4);
                weight.getFloats(at0 - base, b0, 0, 4);
                weight.getFloats(at1 - base, b1, 0, 4);
                if (hasBias) {
                    bias.getFloats(at0 - base, c0, 0, 4);
                    bias.getFloats(at1 - base, c1, 0, 4);
                }
                for (int e = 0; e < 4; e++) {
                    a0[e] = hasBias ? (a0[e] - mean) * inv * b0[e] + c0[e] : (a0[e] - mean) * inv * b0[e];
                    a1[e] = hasBias ? (a1[e] - mean) * inv * b1[e] + c1[e] : (a1[e] - mean) * inv * b1[e];
                }
                out.setFloats(at0, a0, 0, 4);
                if (second) {
                    out.setFloats(at1, a1, 0, 4);
                }
            }
        } else {
            for (int i = ctx.localIdx; i < dim; i += local) {
                float v = (row.get(base + i) - mean) * inv * weight.getFloat(i);
                out.setFloat(base + i, hasBias ? v + bias.getFloat(i) : v);
            }
        }
    }

    /**
     * Runs of 4 at {@code at0} and {@code at1} of {@code row} into a0 and a1, both loaded before anything is stored;
     * with {@code add}, plus x's runs (b0, b1 its scratch), the sums stored back (the second only when
     * {@code second}: otherwise at1 repeats at0).
     */
    static void loadRuns(FloatArray row, FloatArray x, boolean add, int at0, int at1, boolean second, float[] a0, float[] a1, float[] b0,
            float[] b1) {
        row.getFloats(at0, a0, 0, 4);
        row.getFloats(at1, a1, 0, 4);
        if (add) {
            x.getFloats(at0, b0, 0, 4);
            x.getFloats(at1, b1, 0, 4);
            for (int e = 0; e < 4; e++) {
                a0[e] += b0[e];
                a1[e] += b1[e];
            }
            row.setFloats(at0, a0, 0, 4);
            if (second) {
                row.setFloats(at1, a1, 0, 4);
            }
        }
    }

    /** out[r] = (x[r] - mean) * rsqrt(var + eps) * weight + bias, with the biased (population) variance. */
    public static void layerNorm(KernelContext ctx, NativeArray out, FloatArray x, NativeArray weight, NativeArray bias, float eps, int dim) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        layerNormRow(ctx, scratch, out, x, x, false, weight, bias, eps, dim);
    }

    /** residual[r] += x[r]; out[r] = layerNorm(residual[r]) * weight + bias. */
    public static void layerNormAddResidual(KernelContext ctx, NativeArray out, FloatArray residual, FloatArray x, NativeArray weight,
            NativeArray bias, float eps, int dim) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        layerNormRow(ctx, scratch, out, residual, x, true, weight, bias, eps, dim);
    }

    /**
     * The LayerNorm kernels' body for row {@code groupIdx}, as {@link #rmsNormRow} walks a row (runs of 4, two
     * runs' loads before any store): with {@code add}, {@code row} += x first; the mean; the variance of
     * (row - mean) in a second pass (E[x^2] - mean^2 can cancel catastrophically); then out.
     */
    static void layerNormRow(KernelContext ctx, float[] scratch, NativeArray out, FloatArray row, FloatArray x, boolean add, NativeArray weight,
            NativeArray bias, float eps, int dim) {
        float[] a0 = new float[4];
        float[] a1 = new float[4];
        float[] b0 = new float[4];
        float[] b1 = new float[4];
        int base = ctx.groupIdx * dim;
        int local = ctx.localGroupSizeX;
        float mean = GroupReduce.sum(ctx, scratch, addAndSum(ctx, row, x, add, false, base, dim, a0, a1, b0, b1)) / dim;
        float squares = 0f;
        if (dim % 4 == 0) {
            int runs = dim / 4;
            for (int j = ctx.localIdx; j < runs; j += 2 * local) {
                boolean second = j + local < runs;
                row.getFloats(base + 4 * j, a0, 0, 4);
                row.getFloats(base + 4 * (second ? j + local : j), a1, 0, 4);
                for (int e = 0; e < 4; e++) {
                    float d0 = a0[e] - mean;
                    float d1 = second ? a1[e] - mean : 0f;
                    squares += d0 * d0 + d1 * d1;
                }
            }
        } else {
            for (int i = ctx.localIdx; i < dim; i += local) {
                float d = row.get(base + i) - mean;
                squares += d * d;
            }
        }
        float inv = KMath.rsqrt(GroupReduce.sum(ctx, scratch, squares) / dim + eps);
        writeNormalised(ctx, out, row, base, dim, mean, inv, weight, bias, true, a0, a1, b0, b1);
    }

    // ---- host launchers -----------------------------------------------------------

    public static void launchRmsNorm(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer weight, float eps, int rows, int dim) {
        check(out, x, weight, null, rows, dim);
        device.launch(RMS_NORM, grid(device, rows), out, x, weight, eps, dim);
    }

    public static void launchRmsNormAddResidual(Device device, DeviceBuffer out, DeviceBuffer residual, DeviceBuffer x, DeviceBuffer weight,
            float eps, int rows, int dim) {
        check(out, x, weight, null, rows, dim);
        Shapes.atLeast(residual, (long) rows * dim, "residual");
        device.launch(RMS_NORM_ADD_RESIDUAL, grid(device, rows), out, residual, x, weight, eps, dim);
    }

    public static void launchLayerNorm(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, float eps,
            int rows, int dim) {
        check(out, x, weight, bias, rows, dim);
        device.launch(LAYER_NORM, grid(device, rows), out, x, weight, bias, eps, dim);
    }

    public static void launchLayerNormAddResidual(Device device, DeviceBuffer out, DeviceBuffer residual, DeviceBuffer x,
            DeviceBuffer weight, DeviceBuffer bias, float eps, int rows, int dim) {
        check(out, x, weight, bias, rows, dim);
        Shapes.atLeast(residual, (long) rows * dim, "residual");
        device.launch(LAYER_NORM_ADD_RESIDUAL, grid(device, rows), out, residual, x, weight, bias, eps, dim);
    }

    private static Grid grid(Device device, int rows) {
        return Grid.groups(rows, GroupReduce.rowLocalSize(device));
    }

    private static void check(DeviceBuffer out, DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int dim) {
        Shapes.positive(rows, "rows");
        Shapes.positive(dim, "dim");
        Shapes.intIndexable((long) rows * dim, "x");
        Shapes.atLeast(out, (long) rows * dim, "out");
        Shapes.atLeast(x, (long) rows * dim, "x");
        Shapes.atLeast(weight, dim, "weight");
        if (bias != null) {
            Shapes.atLeast(bias, dim, "bias");
        }
    }
}
