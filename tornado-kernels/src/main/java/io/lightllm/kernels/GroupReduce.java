package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
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

    /** Scale of the fixed-point probability mass ({@link #mass}, summed by {@link #sumWays}): 2^48 units per 1.0. */
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

    /** Sub-groups whose partial sums meet in local memory at once in {@link #sumWays}. */
    public static final int WAYS_ROUND = 64;
    /** Ints of each of {@link #sumWays}'s two local arrays: a round's sub-group sums and the totals. */
    public static final int WAYS_INTS = (WAYS_ROUND + 1) * Sampling.SEARCH_WAYS;

    /**
     * values[w] summed over the group for every w < {@link Sampling#SEARCH_WAYS}, into values[w] of every item: first
     * within each sub-group (shuffles, no barrier), then the sub-groups' sums through {@code high} and {@code low} (local
     * arrays of {@link #WAYS_INTS} ints), {@link #WAYS_ROUND} sub-groups a round, an item a value. Exact and wrapping as
     * long addition, whatever the order: each value crosses the sub-group as four 16-bit pieces, whose sums over up to
     * 256 items floats hold exactly; with {@code below2to24} (counts of a row under 2^24) as one float.
     */
    static void sumWays(KernelContext ctx, int[] high, int[] low, long[] values, boolean below2to24) {
        int ways = Sampling.SEARCH_WAYS;
        int lid = ctx.localIdx;
        int local = ctx.localGroupSizeX;
        int sg = ctx.subGroupSize();
        int entries = local / sg;
        int at = WAYS_ROUND * ways; // the totals, after a round's entries
        for (int w = 0; w < ways; w++) {
            long v = values[w];
            if (below2to24) {
                values[w] = (long) ctx.subGroupReduceAdd((float) v);
            } else {
                long sum = 0L;
                for (int piece = 0; piece < 4; piece++) {
                    sum += ((long) ctx.subGroupReduceAdd((float) ((v >>> (16 * piece)) & 0xffffL))) << (16 * piece);
                }
                values[w] = sum;
            }
        }
        for (int w = lid; w < ways; w += local) {
            high[at + w] = 0;
            low[at + w] = 0;
        }
        for (int first = 0; first < entries; first += WAYS_ROUND) {
            int entry = lid / sg - first;
            if (lid % sg == 0 && entry >= 0 && entry < WAYS_ROUND) {
                for (int w = 0; w < ways; w++) {
                    high[entry * ways + w] = (int) (values[w] >>> 32);
                    low[entry * ways + w] = (int) values[w];
                }
            }
            ctx.localBarrier();
            int n = KMath.min(WAYS_ROUND, entries - first);
            for (int w = lid; w < ways; w += local) {
                long total = joinLong(high[at + w], low[at + w]);
                for (int e = 0; e < n; e++) {
                    total += joinLong(high[e * ways + w], low[e * ways + w]);
                }
                high[at + w] = (int) (total >>> 32);
                low[at + w] = (int) total;
            }
            ctx.localBarrier();
        }
        for (int w = 0; w < ways; w++) {
            values[w] = joinLong(high[at + w], low[at + w]);
        }
        ctx.localBarrier();
    }

    /**
     * Runs j, j + local, j + 2 local and j + 3 local of 4 floats of row x (from base) into run[0..15], the four loads
     * issued before any is used (a batch-1 row kernel is one group, bound by its loads in flight: the argmax, the softmax, the sampling threshold); a run past the row's
     * {@code runs} loads run j again, which the caller does not use. Written out: as a loop over a private-array offset,
     * PoCL 5 used runs past the row at 256 items and more (the JVM did not).
     */
    static void loadFourRuns(FloatArray x, int base, int j, int local, int runs, float[] run) {
        x.getFloats(base + 4 * j, run, 0, 4);
        x.getFloats(base + 4 * (j + local < runs ? j + local : j), run, 4, 4);
        x.getFloats(base + 4 * (j + 2 * local < runs ? j + 2 * local : j), run, 8, 4);
        x.getFloats(base + 4 * (j + 3 * local < runs ? j + 3 * local : j), run, 12, 4);
    }

    /** Stores run[0..15] back as {@link #loadFourRuns} loaded it: each of the four runs that lies in the row. */
    static void storeFourRuns(FloatArray x, int base, int j, int local, int runs, float[] run) {
        x.setFloats(base + 4 * j, run, 0, 4);
        if (j + local < runs) {
            x.setFloats(base + 4 * (j + local), run, 4, 4);
        }
        if (j + 2 * local < runs) {
            x.setFloats(base + 4 * (j + 2 * local), run, 8, 4);
        }
        if (j + 3 * local < runs) {
            x.setFloats(base + 4 * (j + 3 * local), run, 12, 4);
        }
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
