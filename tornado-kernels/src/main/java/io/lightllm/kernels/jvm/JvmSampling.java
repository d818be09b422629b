package io.lightllm.kernels.jvm;

import io.lightllm.kernels.GroupReduce;
import io.lightllm.kernels.Sampling;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Sampling#topKTopPThreshold} on the JVM by radix selection: the same thresholds, from one read of the row and
 * a few passes over its keys, where the portable kernel's binary searches over the float bits read the row some 31
 * times each (one thread a row on the JVM). 128k probabilities at top-k 50 and top-p 0.9, this machine's 2 cores
 * (2026-12-07, `bench kernels --device jvm`): batch 1 6.0 -> 1.2-1.5 ms, batch 8 25.1-25.6 -> 5.5-7.0 ms.
 *
 * <p>The kernel keeps the largest b in [0, +inf's bits) for which count(p >= float(b)) >= k, then the largest b from
 * there for which the fixed-point mass ({@link GroupReduce#mass}) of the p >= float(b) reaches its target. Both
 * counts change only at a probability, so b is a probability's key: its bits (0 for -0.0, capped below +inf's; NaN
 * and negative values never count). The k-th largest key, and the key where the mass from the top first reaches
 * the target, are found digit by digit (11, 11 and 9 bits): a histogram of the keys that share the digits found so far.
 */
final class JvmSampling {
    private static final int BELOW_INFINITY = Float.floatToRawIntBits(Float.POSITIVE_INFINITY) - 1;
    private static final int[] SHIFTS = {20, 9, 0};
    private static final int[] WIDTHS = {11, 11, 9};

    private JvmSampling() {
    }

    /**
     * {@link Sampling#argmax} (arguments logits, out, vocab; a row a work-group): each row's largest value, the first on
     * ties, NaN as -inf (so a row of NaN and -inf gives 0), as the kernel's {@code argmaxRow}, in two vector passes over
     * the row (its maximum, then the first lane equal to it). The portable kernel ran one item a row on the JVM, element
     * by element: 214 us for 128k logits on this machine's 2 cores (2026-12-08, `bench kernels --device jvm`).
     */
    static void argmax(JvmDevice device, int rows, Object[] args) {
        FloatArray logits = (FloatArray) args[0];
        IntArray out = (IntArray) args[1];
        int vocab = (Integer) args[2];
        device.parallelFor(rows, r -> out.set(r, argmaxRow(logits.segment(), (long) r * vocab, vocab)));
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** The index of x[base ..]'s largest of n values, the first on ties, NaN as -inf (0 when none is above -inf). */
    static int argmaxRow(MemorySegment x, long base, int n) {
        FloatVector most = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int bound = F.loopBound(n);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector v = FloatVector.fromMemorySegment(F, x, 4 * (base + i), ByteOrder.nativeOrder());
            most = most.max(v.blend(Float.NEGATIVE_INFINITY, v.test(VectorOperators.IS_NAN)));
        }
        float best = most.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            float v = x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i);
            best = v > best ? v : best; // false for NaN
        }
        if (best == Float.NEGATIVE_INFINITY) {
            return 0; // every value is -inf or NaN, which count as -inf: the first
        }
        for (i = 0; i < bound; i += F.length()) {
            VectorMask<Float> at = FloatVector.fromMemorySegment(F, x, 4 * (base + i), ByteOrder.nativeOrder()).eq(best);
            if (at.anyTrue()) {
                return i + at.firstTrue();
            }
        }
        for (; i < n; i++) {
            if (x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i) == best) {
                return i;
            }
        }
        throw new IllegalStateException("the maximum " + best + " is in the row");
    }

    /**
     * {@link Sampling#sampleFromThreshold} (arguments probs, threshold, uniforms, out, vocab; a row a work-group): the kept
     * probabilities' fixed-point masses ({@link GroupReduce#mass}) added up, then the first index at which the running
     * mass passes the uniform's share of it ({@link Sampling#scaleByFraction}), or the argmax where nothing kept has mass:
     * the kernel's choice exactly (its sums are integers, so their order does not matter), in one thread a row.
     */
    static void sampleFromThreshold(JvmDevice device, int rows, Object[] args) {
        FloatArray probs = (FloatArray) args[0], threshold = (FloatArray) args[1], uniforms = (FloatArray) args[2];
        IntArray out = (IntArray) args[3];
        int vocab = (Integer) args[4];
        device.parallelFor(rows, r -> out.set(r, sampleRow(probs.segment(), (long) r * vocab, vocab, threshold.get(r), uniforms.get(r))));
    }

    private static int sampleRow(MemorySegment probs, long base, int vocab, float tau, float uniform) {
        long total = keptMass(probs, base, vocab, tau, Long.MAX_VALUE);
        if (total <= 0L) {
            return argmaxRow(probs, base, vocab);
        }
        long target = Sampling.scaleByFraction(total, Sampling.fraction(uniform)); // in [0, total)
        return (int) -keptMass(probs, base, vocab, tau, target) - 1;
    }

    /**
     * The mass of x[base ..]'s n values at or above tau, or where it passes {@code target} on the way, -1 - the index at
     * which it does. A threshold from top-k or top-p keeps a few values: vectors of values all under it are passed over
     * with one comparison (the scalar loop over every value took 0.9 ms for 128k of them on this machine's cores).
     */
    private static long keptMass(MemorySegment x, long base, int n, float tau, long target) {
        long running = 0L;
        int bound = F.loopBound(n);
        int i = 0;
        for (; i < bound; i += F.length()) {
            VectorMask<Float> kept = FloatVector.fromMemorySegment(F, x, 4 * (base + i), ByteOrder.nativeOrder()).compare(VectorOperators.GE, tau);
            for (int j = kept.firstTrue(); j < F.length(); j++) { // firstTrue is the length where none is set
                if (kept.laneIsSet(j)) {
                    running += GroupReduce.mass(x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i + j));
                    if (running > target) {
                        return -1L - (i + j);
                    }
                }
            }
        }
        for (; i < n; i++) {
            float p = x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i);
            running += p >= tau ? GroupReduce.mass(p) : 0L; // false for NaN
            if (running > target) {
                return -1L - i;
            }
        }
        if (target != Long.MAX_VALUE) {
            throw new IllegalStateException("the running mass never passes " + target + " of its total");
        }
        return running;
    }

    /** Arguments as the kernel's: probs, topK, topP, threshold, vocab; a row a work-group of the grid's {@code rows}. */
    static void threshold(JvmDevice device, int rows, Object[] args) {
        FloatArray probs = (FloatArray) args[0], topP = (FloatArray) args[2], threshold = (FloatArray) args[3];
        IntArray topK = (IntArray) args[1];
        int vocab = (Integer) args[4];
        device.parallelFor(rows, r -> threshold.set(r, rowThreshold(probs, r * vocab, vocab, topK.get(r), topP.get(r))));
    }

    private static float rowThreshold(FloatArray probs, int base, int vocab, int k, float p) {
        boolean topK = k > 0 && k < vocab;
        if (!topK && p >= 1f) {
            return 0f;
        }
        // the eligible values' keys (and masses), read from the row once
        int[] keys = new int[vocab];
        long[] masses = p < 1f ? new long[vocab] : null;
        int n = 0;
        for (int i = 0; i < vocab; i++) {
            float v = probs.get(base + i);
            if (v >= 0f) { // false for NaN
                keys[n] = v == 0f ? 0 : Math.min(Float.floatToRawIntBits(v), BELOW_INFINITY);
                if (masses != null) {
                    masses[n] = GroupReduce.mass(v);
                }
                n++;
            }
        }
        int keepBits = topK ? select(keys, null, n, k) : 0;
        if (p < 1f) {
            long kept = 0L;
            for (int i = 0; i < n; i++) {
                kept += keys[i] >= keepBits ? masses[i] : 0L;
            }
            long target = Math.max(1L, Sampling.scaleByFraction(kept, Sampling.fraction(p)));
            // the keys below keepBits hold no more than kept: where kept < target the kernel keeps keepBits
            keepBits = kept < target ? keepBits : Math.max(keepBits, select(keys, masses, n, target));
        }
        return Float.intBitsToFloat(keepBits);
    }

    /**
     * The largest key whose keys at or above it count {@code need} (by mass where {@code masses} is given, else one
     * each); 0 when all n count less. After each digit only the keys that share the digits found so far go on (the
     * caller's arrays are left as they are).
     */
    private static int select(int[] keys, long[] masses, int n, long need) {
        int prefix = 0;
        for (int pass = 0; pass < SHIFTS.length; pass++) {
            int shift = SHIFTS[pass], buckets = 1 << WIDTHS[pass];
            long[] histogram = new long[buckets];
            for (int i = 0; i < n; i++) {
                histogram[(keys[i] >>> shift) & (buckets - 1)] += masses == null ? 1L : masses[i];
            }
            int digit = buckets - 1;
            while (digit >= 0 && histogram[digit] < need) {
                need -= histogram[digit];
                digit--;
            }
            if (digit < 0) {
                return 0; // only in the first pass: the row counts less than need
            }
            prefix |= digit << shift;
            // only the chosen bucket's keys go on: copied out of the caller's arrays after the first digit, in place after that
            int[] nextKeys = pass == 0 ? new int[n] : keys;
            long[] nextMasses = masses == null ? null : pass == 0 ? new long[n] : masses;
            int kept = 0;
            for (int i = 0; i < n; i++) {
                if (((keys[i] >>> shift) & (buckets - 1)) == digit) {
                    nextKeys[kept] = keys[i];
                    if (masses != null) {
                        nextMasses[kept] = masses[i];
                    }
                    kept++;
                }
            }
            keys = nextKeys;
            masses = nextMasses;
            n = kept;
        }
        return prefix;
    }
}
