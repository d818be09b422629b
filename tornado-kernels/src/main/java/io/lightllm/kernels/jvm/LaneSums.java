package io.lightllm.kernels.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Lane sums in one fixed order. {@code FloatVector.reduceLanes(ADD)} leaves its order open and the JIT's tiers take
 * different ones (the interpreter adds lane by lane, C2 halves the vector), so one row's dot product could come out two
 * ways within a run: one prompt scored twice gave log-probabilities that differed in the seventh digit. Lane-wise adds
 * and shuffles are exact in every tier, so sums built from them are the same wherever the code runs.
 * <ul>
 *   <li>{@link #sum4}, the GEMVs' four rows at a time: halves of two vectors meet in one (two-vector shuffles), twice,
 *       so 4 x 16 lanes become 4 groups of 4 partial sums in one vector, then two butterfly steps: 8 shuffles and 6
 *       adds for four sums, fewer than four reductions take;</li>
 *   <li>{@link #sum}, one vector: a butterfly (lane i meets lane i ^ half, then i ^ quarter, ...), lane 0 the sum
 *       (alone it made the 4-row bf16 GEMV ~9 % slower than reduceLanes, hence sum4 there).</li>
 * </ul>
 */
final class LaneSums {
    private static final Shuffles PREFERRED = new Shuffles(FloatVector.SPECIES_PREFERRED);
    private static final Shuffles WIDEST = new Shuffles(FloatVector.SPECIES_512);

    private LaneSums() {
    }

    /** The sum of v's lanes, in the butterfly's order (lane i meets lane i ^ half, then i ^ quarter, ...). */
    static float sum(FloatVector v) {
        Shuffles s = of(v.species());
        v = v.add(v.rearrange(s.xorHalf()));
        v = s.xorQuarter() == null ? v : v.add(v.rearrange(s.xorQuarter()));
        v = s.xorEighth() == null ? v : v.add(v.rearrange(s.xorEighth()));
        v = s.xorSixteenth() == null ? v : v.add(v.rearrange(s.xorSixteenth()));
        return v.lane(0);
    }

    /** out[at + r] = the sum of c_r's lanes, r = 0..3, each in one fixed order. */
    static void sum4(FloatVector c0, FloatVector c1, FloatVector c2, FloatVector c3, float[] out, int at) {
        int lanes = c0.length();
        if (lanes < 4) { // a 64-bit species: two lanes
            out[at] = sum(c0);
            out[at + 1] = sum(c1);
            out[at + 2] = sum(c2);
            out[at + 3] = sum(c3);
            return;
        }
        Shuffles s = of(c0.species());
        // [c0's half sums, c1's half sums] and [c2's, c3's]
        FloatVector x01 = c0.rearrange(s.halvesLo(), c1).add(c0.rearrange(s.halvesHi(), c1));
        FloatVector x23 = c2.rearrange(s.halvesLo(), c3).add(c2.rearrange(s.halvesHi(), c3));
        // four parts of lanes / 4 partial sums: c0's, c1's, c2's, c3's; then within each part
        FloatVector y = x01.rearrange(s.quartersLo(), x23).add(x01.rearrange(s.quartersHi(), x23));
        y = s.xorEighth() == null ? y : y.add(y.rearrange(s.xorEighth()));
        y = s.xorSixteenth() == null ? y : y.add(y.rearrange(s.xorSixteenth()));
        int q = lanes / 4;
        out[at] = y.lane(0);
        out[at + 1] = y.lane(q);
        out[at + 2] = y.lane(2 * q);
        out[at + 3] = y.lane(3 * q);
    }

    /**
     * out[at + r] = the sum of the lanes of the r-th of four vectors stored in {@code lanes} from {@code from}, one after
     * the other ({@link #sum4}'s order). For sums that wait in an array: loaded here, no vector crosses a call, which
     * C2 (not inlining sum4 into a large caller) boxes: JFR's allocation samples showed a 64-byte array for each vector
     * handed over. Int4Gemv's sums: its GEMV 3-4 % faster this way (session 22). (VectorMatmul.sum4x4's 16 ran ~10 %
     * slower through this form; they take scalar adds instead.)
     */
    static void sum4(VectorSpecies<Float> species, float[] lanes, int from, float[] out, int at) {
        int n = species.length();
        sum4(FloatVector.fromArray(species, lanes, from), FloatVector.fromArray(species, lanes, from + n),
                FloatVector.fromArray(species, lanes, from + 2 * n), FloatVector.fromArray(species, lanes, from + 3 * n), out, at);
    }

    private static Shuffles of(VectorSpecies<Float> species) {
        return species == PREFERRED.species ? PREFERRED : species == WIDEST.species ? WIDEST : new Shuffles(species);
    }

    /**
     * A species' shuffles; indices from {@code lanes} on pick the second vector of a two-vector rearrange. A record:
     * C2 folds a record's fields as constants (an ordinary class's final fields it reloads), which the shuffles must be.
     */
    private record Shuffles(VectorSpecies<Float> species, VectorShuffle<Float> xorHalf, VectorShuffle<Float> xorQuarter,
            VectorShuffle<Float> xorEighth, VectorShuffle<Float> xorSixteenth, VectorShuffle<Float> halvesLo, VectorShuffle<Float> halvesHi,
            VectorShuffle<Float> quartersLo, VectorShuffle<Float> quartersHi) {
        Shuffles(VectorSpecies<Float> species) {
            this(species, xor(species, 2), xor(species, 4), xor(species, 8), xor(species, 16),
                    pick(species, false, 2), pick(species, true, 2), pick(species, false, 4), pick(species, true, 4));
        }

        /** Lane i meets lane i ^ (lanes / parts); null where that is no lane (fewer lanes than parts). */
        private static VectorShuffle<Float> xor(VectorSpecies<Float> species, int parts) {
            int d = species.length() / parts;
            return d == 0 ? null : VectorShuffle.fromOp(species, i -> i ^ d);
        }

        /**
         * Parts of {@code lanes / parts} lanes: part g of the result from part (g % (parts / 2)) * 2 (lo) or that + 1 (hi)
         * of the first vector (g < parts / 2) or of the second: halves (parts 2) give [a's half sums, b's], quarters
         * (parts 4) take each half of the two vectors' halves.
         */
        private static VectorShuffle<Float> pick(VectorSpecies<Float> species, boolean hi, int parts) {
            int lanes = species.length(), size = Math.max(1, lanes / parts), perVector = parts / 2;
            return VectorShuffle.fromOp(species, j -> {
                int g = j / size, r = j % size;
                int source = g / perVector, part = g % perVector;
                return source * lanes + part * 2 * size + (hi ? size : 0) + r;
            });
        }
    }
}
