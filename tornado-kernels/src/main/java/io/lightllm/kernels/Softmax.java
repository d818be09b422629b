package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Row-wise softmax in place over a row-major [rows, n] f32 tensor, one work-group per row
 * (local size: a power of two up to {@link GroupReduce#MAX_LOCAL}). The row maximum is
 * subtracted before exponentiating, so large logits do not overflow.
 */
public final class Softmax {
    public static final KernelRef SOFTMAX = KernelRef.of(Softmax.class, "softmax");

    private Softmax() {
    }

    public static void softmax(KernelContext ctx, FloatArray x, int n) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        softmaxRow(ctx, scratch, x, ctx.groupIdx * n, n, 1f);
    }

    /**
     * Replaces x[base .. base+n) by softmax(x * scale). Shared with the sampling kernels
     * (scale = 1 / temperature). A row whose maximum is -inf (all masked) becomes NaN, as in
     * PyTorch.
     */
    static void softmaxRow(KernelContext ctx, float[] scratch, FloatArray x, int base, int n, float scale) {
        int lid = ctx.localIdx;
        int local = ctx.localGroupSizeX;
        float localMax = Float.NEGATIVE_INFINITY;
        float localSum = 0f;
        float compensation = 0f;
        // each item rewrites only its own elements, so the passes need no barrier between them but the reductions'.
        // Kahan summation: a vocabulary row has 152k terms, and with one item per group (the JVM)
        // a plain float sum of them drifts by 1e-4 relative; compensated, it stays within a few ulps.
        if (n % 4 == 0 && base % 4 == 0) {
            // runs of 4, four in flight an item (GroupReduce.loadFourRuns): at batch 1 one group reads the whole vocabulary
            float[] run = new float[16];
            int runs = n / 4;
            for (int j = lid; j < runs; j += 4 * local) {
                GroupReduce.loadFourRuns(x, base, j, local, runs, run);
                for (int e = 0; e < 16; e++) {
                    if (j + (e / 4) * local < runs) {
                        localMax = KMath.max(localMax, run[e] * scale);
                    }
                }
            }
            float rowMax = GroupReduce.max(ctx, scratch, localMax);
            for (int j = lid; j < runs; j += 4 * local) {
                GroupReduce.loadFourRuns(x, base, j, local, runs, run);
                for (int e = 0; e < 16; e++) {
                    float v = KMath.exp(run[e] * scale - rowMax);
                    run[e] = v;
                    if (j + (e / 4) * local < runs) {
                        float y = v - compensation;
                        float t = localSum + y;
                        compensation = (t - localSum) - y;
                        localSum = t;
                    }
                }
                GroupReduce.storeFourRuns(x, base, j, local, runs, run);
            }
            float inv = 1f / GroupReduce.sum(ctx, scratch, localSum);
            for (int j = lid; j < runs; j += 4 * local) {
                GroupReduce.loadFourRuns(x, base, j, local, runs, run);
                for (int e = 0; e < 16; e++) {
                    run[e] = run[e] * inv;
                }
                GroupReduce.storeFourRuns(x, base, j, local, runs, run);
            }
        } else {
            for (int i = lid; i < n; i += local) {
                localMax = KMath.max(localMax, x.get(base + i) * scale);
            }
            float rowMax = GroupReduce.max(ctx, scratch, localMax);
            for (int i = lid; i < n; i += local) {
                float e = KMath.exp(x.get(base + i) * scale - rowMax);
                x.set(base + i, e);
                float y = e - compensation;
                float t = localSum + y;
                compensation = (t - localSum) - y;
                localSum = t;
            }
            float inv = 1f / GroupReduce.sum(ctx, scratch, localSum);
            for (int i = lid; i < n; i += local) {
                x.set(base + i, x.get(base + i) * inv);
            }
        }
    }

    public static void launchSoftmax(Device device, DeviceBuffer x, int rows, int n) {
        Shapes.positive(rows, "rows");
        Shapes.positive(n, "n");
        Shapes.intIndexable((long) rows * n, "x");
        Shapes.atLeast(x, (long) rows * n, "x");
        device.launch(SOFTMAX, Grid.groups(rows, GroupReduce.rowLocalSize(device)), x, n);
    }
}
