package io.lightllm.kernels;

import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Work-group reductions shared by the row kernels (norms, softmax, sampling, int8 KV cache).
 * Each is a tree reduction over the group in a local array that the calling kernel allocates
 * with capacity {@link #MAX_LOCAL}; every work-item of the group must call it (it has
 * barriers) and every item gets the group's result. The local array may be reused by the
 * next reduction: each helper ends with a barrier after reading the result.
 *
 * <p>Correct for any power-of-two local size from 1 to {@link #MAX_LOCAL}.
 */
public final class GroupReduce {
    /** Capacity of the local arrays of every row kernel here: the largest local size they accept. */
    public static final int MAX_LOCAL = 256;

    /** Scale of the fixed-point probability mass in {@link #sumLong}: 2^48 units per 1.0. */
    static final float MASS_SCALE = 281474976710656f;

    private GroupReduce() {
    }

    /**
     * The local size for one-group-per-row kernels on {@code device}: {@code reduce.local}
     * from the tuning table, checked to be a power of two no larger than {@link #MAX_LOCAL}.
     */
    public static int rowLocalSize(Device device) {
        int local = Tuning.get(device, "reduce.local", 64);
        checkLocalSize(local);
        return local;
    }

    /** Refuses local sizes the row kernels cannot run with. */
    public static void checkLocalSize(long local) {
        Shapes.localSize(local, MAX_LOCAL, "a row kernel");
    }

    public static float sum(KernelContext ctx, float[] scratch, float value) {
        int lid = ctx.localIdx;
        scratch[lid] = value;
        for (int stride = ctx.localGroupSizeX / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lid < stride) {
                scratch[lid] = scratch[lid] + scratch[lid + stride];
            }
        }
        ctx.localBarrier();
        float total = scratch[0];
        ctx.localBarrier();
        return total;
    }

    public static float max(KernelContext ctx, float[] scratch, float value) {
        int lid = ctx.localIdx;
        scratch[lid] = value;
        for (int stride = ctx.localGroupSizeX / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lid < stride) {
                scratch[lid] = KMath.max(scratch[lid], scratch[lid + stride]);
            }
        }
        ctx.localBarrier();
        float total = scratch[0];
        ctx.localBarrier();
        return total;
    }

    static int sumInt(KernelContext ctx, int[] scratch, int value) {
        int lid = ctx.localIdx;
        scratch[lid] = value;
        for (int stride = ctx.localGroupSizeX / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lid < stride) {
                scratch[lid] = scratch[lid] + scratch[lid + stride];
            }
        }
        ctx.localBarrier();
        int total = scratch[0];
        ctx.localBarrier();
        return total;
    }

    /**
     * Sum of longs, kept in two int local arrays (high and low words) because local memory
     * holds floats and ints only. Integer sums do not depend on the order of addition, so the
     * result is the same for every local size and backend.
     */
    static long sumLong(KernelContext ctx, int[] high, int[] low, long value) {
        int lid = ctx.localIdx;
        high[lid] = (int) (value >>> 32);
        low[lid] = (int) value;
        for (int stride = ctx.localGroupSizeX / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lid < stride) {
                long s = joinLong(high[lid], low[lid]) + joinLong(high[lid + stride], low[lid + stride]);
                high[lid] = (int) (s >>> 32);
                low[lid] = (int) s;
            }
        }
        ctx.localBarrier();
        long total = joinLong(high[0], low[0]);
        ctx.localBarrier();
        return total;
    }

    static long joinLong(int high, int low) {
        return ((long) high << 32) | (low & 0xffffffffL);
    }

    /**
     * A probability as fixed-point mass: floor(p * 2^48), p clamped to [0, 1] (NaN counts as 0). Exact for
     * every p >= 2^-25; smaller ones lose under 2^-48 each. Sums of up to 2^15 whole units
     * fit a long, far above the 1.0 a probability row sums to.
     */
    public static long mass(float p) {
        // p > 0 is false for NaN, which must not reach the float-to-long conversion (undefined in C)
        float clamped = p > 0f ? KMath.min(p, 1f) : 0f;
        return (long) (clamped * MASS_SCALE);
    }

    /**
     * The group's largest candidate, the lowest index on ties: each item offers (best, bestIndex),
     * bestIndex -1 for none. Returns the winning index (-1 when no item had a candidate).
     */
    public static int argmax(KernelContext ctx, float[] values, int[] indices, float best, int bestIndex) {
        int lid = ctx.localIdx;
        values[lid] = best;
        indices[lid] = bestIndex;
        for (int stride = ctx.localGroupSizeX / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lid < stride) {
                float v = values[lid + stride];
                int i = indices[lid + stride];
                int mine = indices[lid];
                if (i >= 0 && (mine < 0 || v > values[lid] || (v == values[lid] && i < mine))) {
                    values[lid] = v;
                    indices[lid] = i;
                }
            }
        }
        ctx.localBarrier();
        int result = indices[0];
        ctx.localBarrier();
        return result;
    }
}
