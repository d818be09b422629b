package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Token selection on the device for a batch of rows of logits [rows, vocab] (f32), one
 * work-group per row (local size: a power of two up to {@link GroupReduce#MAX_LOCAL}; the argmax, the temperature
 * softmax and the threshold up to {@link #ARGMAX_MAX_LOCAL}, as their tunings say).
 * Greedy decoding is {@link #ARGMAX}; sampling is three steps, each its own kernel:
 * <ol>
 * <li>{@link #TEMPERATURE_SOFTMAX}: logits -> probabilities of logits / temperature, in place;
 * a row with temperature <= 0 becomes one-hot at its argmax, so greedy rows can share a batch
 * with sampled ones.</li>
 * <li>{@link #TOP_K_TOP_P_THRESHOLD}: per row, the smallest probability that survives top-k and
 * then top-p (top-p over the renormalised top-k distribution, as Hugging Face and vLLM apply
 * them). A token is kept iff its probability is >= the threshold.</li>
 * <li>{@link #SAMPLE_FROM_THRESHOLD}: one id per row from the kept tokens, by an inclusive scan
 * of their mass against one uniform random number per row.</li>
 * </ol>
 *
 * <p><b>Method.</b> Thresholds are found exactly by a search on the bit patterns of
 * non-negative floats, which order like the floats themselves: the top-k threshold is the largest
 * float t with count(p >= t) >= k, which is the k-th largest probability;
 * the top-p threshold is the largest t (not below the top-k one) whose kept mass reaches
 * topP times the top-k mass. Each pass of the search counts at 15 bounds at once (4 bits a pass, so some 8 passes
 * where bisection took 31; {@link #largestBitsReaching}). Ties at a threshold are all kept, so a row may keep more than k tokens.
 * Mass is summed in 64-bit fixed point ({@link GroupReduce#mass}: units of 2^-48), so sums
 * are exact and do not depend on the order of addition, the local size or the backend; topP
 * and the uniform number are used in units of 2^-24. The result therefore matches a sorted
 * scalar reference except when a cumulative mass lies within about 1e-7 of the boundary.
 * Cost: about 17 passes over the row for top-k plus top-p (62 with bisection), plus 3 for softmax and 1 for the scan.
 */
public final class Sampling {
    public static final KernelRef ARGMAX = KernelRef.of(Sampling.class, "argmax");
    public static final KernelRef TEMPERATURE_SOFTMAX = KernelRef.of(Sampling.class, "temperatureSoftmax");
    /**
     * The largest work-group {@link #launchTopKTopPThreshold} gives {@link #topKTopPThreshold}: its sums and bounds keep it
     * at 120 registers an item (sm_90a, unbounded), and a 512-item group may have 128. (Launch bounds of 512 would hold
     * the compiler to that, but ptxas then schedules it differently: 123 registers, unmeasured; so the launcher checks.)
     */
    public static final int THRESHOLD_MAX_LOCAL = 512;
    public static final KernelRef TOP_K_TOP_P_THRESHOLD = KernelRef.of(Sampling.class, "topKTopPThreshold");
    public static final KernelRef SAMPLE_FROM_THRESHOLD = KernelRef.of(Sampling.class, "sampleFromThreshold");

    /** Parts a pass of {@link #topKTopPThreshold}'s search splits its interval of float bits into (4 bits a pass). */
    public static final int SEARCH_WAYS = 16;
    /** The largest work-group {@link #argmax} takes (its local arrays' capacity). */
    public static final int ARGMAX_MAX_LOCAL = 1024;
    /** Bit pattern of +infinity: above every finite non-negative float's pattern. */
    private static final int POSITIVE_INFINITY_BITS = 0x7f800000;
    private static final float FRACTION_SCALE = 16777216f; // 2^24
    private static final long FRACTION_MAX = 16777215L; // 2^24 - 1

    private Sampling() {
    }

    /**
     * out[r] = index of the largest logit of row r; the first on ties; NaN logits are ignored. One work-group a row, of
     * up to {@link #ARGMAX_MAX_LOCAL} items ({@link #argmaxLocalSize}): at batch 1 one group reads the whole vocabulary.
     */
    public static void argmax(KernelContext ctx, FloatArray logits, IntArray out, int vocab) {
        float[] values = ctx.allocateFloatLocalArray(ARGMAX_MAX_LOCAL);
        int[] indices = ctx.allocateIntLocalArray(ARGMAX_MAX_LOCAL);
        int best = argmaxRow(ctx, values, indices, logits, ctx.groupIdx * vocab, vocab);
        if (ctx.localIdx == 0) {
            out.set(ctx.groupIdx, best);
        }
    }

    /** Row r becomes softmax(logits[r] / temperatures[r]), or one-hot at its argmax when the temperature is <= 0. */
    public static void temperatureSoftmax(KernelContext ctx, FloatArray logits, FloatArray temperatures, int vocab) {
        float[] values = ctx.allocateFloatLocalArray(ARGMAX_MAX_LOCAL);
        int[] indices = ctx.allocateIntLocalArray(ARGMAX_MAX_LOCAL);
        int base = ctx.groupIdx * vocab;
        float temperature = temperatures.get(ctx.groupIdx);
        // the branch is uniform across the group (one temperature per row), so both sides may use barriers
        if (temperature > 0f) {
            Softmax.softmaxRow(ctx, values, logits, base, vocab, 1f / temperature);
        } else {
            int best = argmaxRow(ctx, values, indices, logits, base, vocab);
            for (int i = ctx.localIdx; i < vocab; i += ctx.localGroupSizeX) {
                logits.set(base + i, i == best ? 1f : 0f);
            }
        }
    }

    /**
     * threshold[r] = the smallest probability row r keeps under topK[r] (<= 0 or >= vocab: no
     * top-k) and then topP[r] (>= 1: no top-p; <= 0 keeps only the most likely tokens).
     * probs must be probabilities (each in [0, 1], summing to about 1).
     */
    public static void topKTopPThreshold(KernelContext ctx, FloatArray probs, IntArray topK, FloatArray topP, FloatArray threshold,
            int vocab) {
        int[] high = ctx.allocateIntLocalArray(GroupReduce.WAYS_INTS);
        int[] low = ctx.allocateIntLocalArray(GroupReduce.WAYS_INTS);
        long[] sums = new long[SEARCH_WAYS];
        float[] bounds = new float[SEARCH_WAYS];
        int base = ctx.groupIdx * vocab;
        int k = topK.get(ctx.groupIdx);
        float p = topP.get(ctx.groupIdx);
        // every bound below comes from group-wide sums, so all items run the same passes and meet at the same barriers
        int keepBits = 0; // +0.0f: keeps every probability
        if (k > 0 && k < vocab) {
            keepBits = largestBitsReaching(ctx, high, low, sums, bounds, probs, base, vocab, 0, k, false);
        }
        if (p < 1f) {
            // the mass kept so far: one pass whose first bound and top are both keepBits, so every probability from there on
            // counts "above" (one add each, no bound compared) and sums[1] is their mass
            bounds[1] = Float.intBitsToFloat(keepBits);
            tally(ctx, sums, bounds, bounds[1], probs, base, vocab, true);
            GroupReduce.sumWays(ctx, high, low, sums, false);
            long target = scaleByFraction(sums[1], fraction(p));
            if (target < 1L) {
                target = 1L; // at least the most likely token
            }
            keepBits = largestBitsReaching(ctx, high, low, sums, bounds, probs, base, vocab, keepBits, target, true);
        }
        if (ctx.localIdx == 0) {
            threshold.set(ctx.groupIdx, Float.intBitsToFloat(keepBits));
        }
    }

    /**
     * The largest b in [lo, +inf's bits) whose probabilities p >= float(b) count {@code need} (by mass with {@code byMass}),
     * taking it that those >= float(lo) do (else lo). Each pass splits the interval left into {@link #SEARCH_WAYS} parts
     * and counts at all their bounds in one read of the row; the count only falls as b grows, so the part whose lower
     * bound is the last to reach {@code need} holds b: some 8 passes for the 31 bits where bisection took 31.
     */
    static int largestBitsReaching(KernelContext ctx, int[] high, int[] low, long[] sums, float[] bounds, FloatArray probs, int base, int vocab,
            int from, long need, boolean byMass) {
        int lo = from;
        int hi = POSITIVE_INFINITY_BITS;
        while (hi - lo > 1) {
            int span = hi - lo;
            for (int w = 1; w < SEARCH_WAYS; w++) {
                bounds[w] = Float.intBitsToFloat(lo + (int) ((long) span * w / SEARCH_WAYS));
            }
            tally(ctx, sums, bounds, Float.intBitsToFloat(hi), probs, base, vocab, byMass);
            GroupReduce.sumWays(ctx, high, low, sums, !byMass);
            int part = 0; // the counts fall with w: the last part whose bound reaches need
            for (int w = 1; w < SEARCH_WAYS; w++) {
                if (sums[w] >= need) {
                    part = w;
                }
            }
            int next = part + 1 < SEARCH_WAYS ? lo + (int) ((long) span * (part + 1) / SEARCH_WAYS) : hi;
            lo = lo + (int) ((long) span * part / SEARCH_WAYS);
            hi = next;
        }
        return lo;
    }

    /**
     * This item's part of sums[w] = count (or mass) of the row's p >= bounds[w], w = 1 .. {@link #SEARCH_WAYS} - 1 (ascending
     * bounds, all below {@code top}): a p below bounds[1] counts nowhere and one at or above {@code top} everywhere, so
     * only those between are compared with each bound (after the first passes, few). NaN counts nowhere. Four runs of
     * 4 in flight an item ({@link GroupReduce#loadFourRuns}), as {@link #argmaxRow} reads.
     */
    static void tally(KernelContext ctx, long[] sums, float[] bounds, float top, FloatArray probs, int base, int vocab, boolean byMass) {
        int lid = ctx.localIdx;
        int local = ctx.localGroupSizeX;
        for (int w = 0; w < SEARCH_WAYS; w++) {
            sums[w] = 0L;
        }
        long above = 0L;
        float first = bounds[1];
        if (vocab % 4 == 0 && base % 4 == 0) {
            float[] run = new float[16];
            int runs = vocab / 4;
            for (int j = lid; j < runs; j += 4 * local) {
                GroupReduce.loadFourRuns(probs, base, j, local, runs, run);
                for (int e = 0; e < 16; e++) {
                    if (j + (e / 4) * local < runs) {
                        above = tallyOne(run[e], sums, bounds, first, top, byMass, above);
                    }
                }
            }
        } else {
            for (int i = lid; i < vocab; i += local) {
                above = tallyOne(probs.get(base + i), sums, bounds, first, top, byMass, above);
            }
        }
        for (int w = 1; w < SEARCH_WAYS; w++) {
            sums[w] += above;
        }
    }

    /**
     * out[r] = the smallest index i whose cumulative kept mass (tokens with probs >= threshold[r],
     * in index order) exceeds uniforms[r] (in [0, 1)) times the total kept mass. Each work-item
     * scans one contiguous chunk of the row; the item whose chunk holds the crossing finds it.
     */
    public static void sampleFromThreshold(KernelContext ctx, FloatArray probs, FloatArray threshold, FloatArray uniforms, IntArray out,
            int vocab) {
        int[] high = ctx.allocateIntLocalArray(GroupReduce.MAX_LOCAL);
        int[] low = ctx.allocateIntLocalArray(GroupReduce.MAX_LOCAL);
        float[] values = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        int row = ctx.groupIdx;
        int lid = ctx.localIdx;
        int base = row * vocab;
        float tau = threshold.get(row);
        int chunk = (vocab + ctx.localGroupSizeX - 1) / ctx.localGroupSizeX;
        int start = KMath.min(lid * chunk, vocab);
        int end = KMath.min(start + chunk, vocab);
        long own = 0L;
        for (int i = start; i < end; i++) {
            float p = probs.get(base + i);
            own += p >= tau ? GroupReduce.mass(p) : 0L;
        }
        high[lid] = (int) (own >>> 32);
        low[lid] = (int) own;
        ctx.localBarrier();
        long before = 0L;
        long total = 0L;
        for (int j = 0; j < ctx.localGroupSizeX; j++) {
            long m = GroupReduce.joinLong(high[j], low[j]);
            before += j < lid ? m : 0L;
            total += m;
        }
        ctx.localBarrier();
        long target = scaleByFraction(total, fraction(uniforms.get(row))); // in [0, total) when total > 0
        if (total > 0L) {
            if (before <= target && target < before + own) {
                long running = before;
                int chosen = end - 1;
                for (int i = start; i < end; i++) {
                    float p = probs.get(base + i);
                    running += p >= tau ? GroupReduce.mass(p) : 0L;
                    if (running > target) {
                        chosen = i;
                        break;
                    }
                }
                out.set(row, chosen);
            }
        } else {
            // nothing kept carries mass (a threshold above every probability): fall back to the argmax
            int best = argmaxRow(ctx, values, high, probs, base, vocab);
            if (lid == 0) {
                out.set(row, best);
            }
        }
    }

    /** Index of the largest value of x[base .. base+n), the first on ties, NaN ignored (0 if all are NaN). */
    static int argmaxRow(KernelContext ctx, float[] values, int[] indices, FloatArray x, int base, int n) {
        int lid = ctx.localIdx;
        int local = ctx.localGroupSizeX;
        float best = Float.NEGATIVE_INFINITY;
        int bestIndex = -1;
        // ascending indices: a later equal value never replaces an earlier one
        if (n % 4 == 0 && base % 4 == 0) {
            // runs of 4 (16-byte loads), four runs' loads issued before any comparison (128k logits on an H100: 19.5 us
            // with two runs an item, 10.7 with four and 1,024 items). An item's runs ascend (j, j + local, ...)
            float[] run = new float[16];
            int runs = n / 4;
            for (int j = lid; j < runs; j += 4 * local) {
                GroupReduce.loadFourRuns(x, base, j, local, runs, run);
                for (int e = 0; e < 16; e++) {
                    int jr = j + (e / 4) * local;
                    float v = run[e];
                    if (v != v) {
                        v = Float.NEGATIVE_INFINITY;
                    }
                    if (jr < runs && (bestIndex < 0 || v > best)) {
                        best = v;
                        bestIndex = 4 * jr + e % 4;
                    }
                }
            }
        } else {
            for (int i = lid; i < n; i += local) {
                float v = x.get(base + i);
                if (v != v) {
                    v = Float.NEGATIVE_INFINITY;
                }
                if (bestIndex < 0 || v > best) {
                    best = v;
                    bestIndex = i;
                }
            }
        }
        return GroupReduce.argmax(ctx, values, indices, best, bestIndex);
    }

    /** One probability v into {@link #tally}'s sums; returns {@code above} with v's weight added where v >= top. */
    private static long tallyOne(float v, long[] sums, float[] bounds, float first, float top, boolean byMass, long above) {
        if (v >= first) { // false for NaN
            long weight = byMass ? GroupReduce.mass(v) : 1L;
            if (v >= top) {
                return above + weight;
            }
            for (int w = 1; w < SEARCH_WAYS; w++) {
                sums[w] += v >= bounds[w] ? weight : 0L;
            }
        }
        return above;
    }

    /**
     * f in [0, 1) as an integer fraction of 2^24 (truncated; NaN and negatives as 0, 1 and above as 1 - 2^-24). Public, as
     * {@link #scaleByFraction} and {@link GroupReduce#mass}, for the JVM's override of {@link #topKTopPThreshold}.
     */
    public static long fraction(float f) {
        float clamped = f > 0f ? KMath.min(f, 1f) : 0f;
        long units = (long) (clamped * FRACTION_SCALE);
        return units < FRACTION_MAX ? units : FRACTION_MAX;
    }

    /** floor(value * fraction / 2^24) without overflow for value < 2^62. */
    public static long scaleByFraction(long value, long fraction) {
        return (value >> 24) * fraction + (((value & 0xffffffL) * fraction) >> 24);
    }

    // ---- host launchers -----------------------------------------------------------

    /** out [rows] = argmax of each row of logits [rows, vocab]. */
    public static void launchArgmax(Device device, DeviceBuffer out, DeviceBuffer logits, int rows, int vocab) {
        checkRows(logits, rows, vocab);
        Shapes.atLeast(out, rows, "out");
        device.launch(ARGMAX, Grid.groups(rows, argmaxLocalSize(device)), logits, out, vocab);
    }

    /** logits [rows, vocab] -> probabilities at temperatures [rows] (one-hot rows where a temperature is <= 0). */
    public static void launchTemperatureSoftmax(Device device, DeviceBuffer logits, DeviceBuffer temperatures, int rows, int vocab) {
        checkRows(logits, rows, vocab);
        Shapes.atLeast(temperatures, rows, "temperatures");
        device.launch(TEMPERATURE_SOFTMAX, Grid.groups(rows, softmaxLocalSize(device)), logits, temperatures, vocab);
    }

    /** threshold [rows] for probabilities [rows, vocab] under per-row topK [rows] (int) and topP [rows]. */
    public static void launchTopKTopPThreshold(Device device, DeviceBuffer threshold, DeviceBuffer probs, DeviceBuffer topK,
            DeviceBuffer topP, int rows, int vocab) {
        checkRows(probs, rows, vocab);
        Shapes.atLeast(topK, rows, "topK");
        Shapes.atLeast(topP, rows, "topP");
        Shapes.atLeast(threshold, rows, "threshold");
        if (vocab >= 1 << 24) {
            throw new IllegalArgumentException("the top-k / top-p threshold counts in floats: a vocabulary under 2^24, not " + vocab);
        }
        device.launch(TOP_K_TOP_P_THRESHOLD, Grid.groups(rows, thresholdLocalSize(device)), probs, topK, topP, threshold, vocab);
    }

    /** out [rows] = one token id per row of probs [rows, vocab] among those >= threshold [rows], driven by uniforms [rows] in [0, 1). */
    public static void launchSampleFromThreshold(Device device, DeviceBuffer out, DeviceBuffer probs, DeviceBuffer threshold,
            DeviceBuffer uniforms, int rows, int vocab) {
        checkRows(probs, rows, vocab);
        Shapes.atLeast(threshold, rows, "threshold");
        Shapes.atLeast(uniforms, rows, "uniforms");
        Shapes.atLeast(out, rows, "out");
        device.launch(SAMPLE_FROM_THRESHOLD, grid(device, rows), probs, threshold, uniforms, out, vocab);
    }

    /**
     * The three sampling steps in order: logits [rows, vocab] are overwritten by the
     * probabilities, threshold [rows] is scratch, out [rows] receives the ids.
     */
    public static void launchSample(Device device, DeviceBuffer out, DeviceBuffer logits, DeviceBuffer temperatures, DeviceBuffer topK,
            DeviceBuffer topP, DeviceBuffer uniforms, DeviceBuffer threshold, int rows, int vocab) {
        launchTemperatureSoftmax(device, logits, temperatures, rows, vocab);
        launchTopKTopPThreshold(device, threshold, logits, topK, topP, rows, vocab);
        launchSampleFromThreshold(device, out, logits, threshold, uniforms, rows, vocab);
    }

    /**
     * {@link #argmax}'s work-group size: tuning {@code sampling.argmax_local} (at most {@link #ARGMAX_MAX_LOCAL}), else the
     * row kernels' {@link GroupReduce#rowLocalSize}. A batch-1 step's argmax is one group over the whole vocabulary, bound
     * by the loads one group keeps in flight.
     */
    static int argmaxLocalSize(Device device) {
        int local = Tuning.get(device, "sampling.argmax_local", GroupReduce.rowLocalSize(device));
        Shapes.localSize(local, ARGMAX_MAX_LOCAL, "argmax");
        return local;
    }

    /**
     * {@link #temperatureSoftmax}'s work-group size: tuning {@code sampling.softmax_local} (at most {@link #ARGMAX_MAX_LOCAL}),
     * else the row kernels' {@link GroupReduce#rowLocalSize}. At batch 1 one group reads the vocabulary three times.
     */
    static int softmaxLocalSize(Device device) {
        int local = Tuning.get(device, "sampling.softmax_local", GroupReduce.rowLocalSize(device));
        Shapes.localSize(local, ARGMAX_MAX_LOCAL, "temperature softmax");
        return local;
    }

    /**
     * {@link #topKTopPThreshold}'s work-group size: tuning {@code sampling.threshold_local} (at most {@link #THRESHOLD_MAX_LOCAL}),
     * else the row kernels' {@link GroupReduce#rowLocalSize}. At batch 1 one group reads the vocabulary some 17 times.
     */
    public static int thresholdLocalSize(Device device) {
        int local = Tuning.get(device, "sampling.threshold_local", GroupReduce.rowLocalSize(device));
        Shapes.localSize(local, THRESHOLD_MAX_LOCAL, "top-k / top-p threshold");
        return local;
    }

    private static Grid grid(Device device, int rows) {
        return Grid.groups(rows, GroupReduce.rowLocalSize(device));
    }

    private static void checkRows(DeviceBuffer rowsBuffer, int rows, int vocab) {
        Shapes.positive(rows, "rows");
        Shapes.positive(vocab, "vocab");
        Shapes.intIndexable((long) rows * vocab, "the logits");
        Shapes.atLeast(rowsBuffer, (long) rows * vocab, "the logits");
    }
}
