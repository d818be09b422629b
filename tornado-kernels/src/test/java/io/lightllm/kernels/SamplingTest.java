package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.LOCAL_SIZES;
import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class SamplingTest {
    /** Vocabulary sizes: smaller than a work-group, not a power of two, and Qwen2's 152064. */
    private static final int[] VOCABS = {3, 1000, 152064};
    // per-row sampling parameters: no filter, top-k, top-p, both, k = 1, and p = 0 (only the most likely)
    private static final int[] TOP_K = {0, 50, 0, 40, 1, Integer.MAX_VALUE};
    private static final float[] TOP_P = {1f, 1f, 0.9f, 0.8f, 0.5f, 0f};
    private static final int ROWS = TOP_K.length;
    // Thresholds and samples are compared exactly. The kernels only compare probabilities and add
    // them in exact fixed point: each mass is floored to units of 2^-48, so a sum of up to 152064
    // of them is low by under 6e-10 of the row. topP and u enter floored to multiples of 2^-24,
    // which lowers a target by at most 2^-24 = 6e-8 of the total. Both errors only lower values,
    // so the kernels pick what the double-precision reference picks when the target lies more
    // than 1e-7 of the total above the cumulative mass before the chosen token, and more than
    // 1e-9 below the mass through it. The references assert that the test data keeps these margins.
    private static final double MIN_MARGIN_BELOW = 1e-7;
    private static final double MIN_MARGIN_ABOVE = 1e-9;

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void argmaxTakesTheFirstLargestAndIgnoresNaN(String id) {
        Device dev = device(id);
        for (int vocab : VOCABS) {
            FloatArray logits = random(ROWS * vocab, 10f, vocab);
            logits.set(0, Float.NaN); // row 0 starts with NaN
            logits.set(vocab + vocab - 1, 50f); // row 1: a tie between the last and ...
            logits.set(vocab + vocab / 2, 50f); // ... the middle (the middle wins)
            for (int i = 0; i < vocab; i++) {
                logits.set(2 * vocab + i, Float.NEGATIVE_INFINITY); // row 2: all -inf
                logits.set(3 * vocab + i, Float.NaN); // row 3: all NaN
            }
            int[] expected = new int[ROWS];
            for (int r = 0; r < ROWS; r++) {
                expected[r] = referenceArgmax(logits, r * vocab, vocab);
            }
            for (int local : LOCAL_SIZES) {
                assertArrayEquals(expected, argmax(dev, Grid.groups(ROWS, local), logits, vocab), "argmax vocab " + vocab + " local " + local);
            }
            // the widest group it takes (CUDA's batch-1 argmax): most items' runs lie past a short row. On the JVM and where the
            // launcher takes it; not on OpenCL (64 items there): PoCL 5 crashes running its cached build of this kernel at 1,024
            // items (the first, freshly compiled run passes)
            if (isJvm(dev) || Sampling.argmaxLocalSize(dev) == Sampling.ARGMAX_MAX_LOCAL) {
                assertArrayEquals(expected, argmax(dev, Grid.groups(ROWS, Sampling.ARGMAX_MAX_LOCAL), logits, vocab), "argmax vocab " + vocab
                        + " local " + Sampling.ARGMAX_MAX_LOCAL);
            }
            assertArrayEquals(expected, argmax(dev, null, logits, vocab), "launchArgmax vocab " + vocab);
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void temperatureSoftmaxScalesRowsAndMakesGreedyRowsOneHot(String id) {
        Device dev = device(id);
        float[] temperatures = {1f, 0.7f, 0f, 2f, -1f, 1.3f};
        for (int vocab : VOCABS) {
            FloatArray logits = random(ROWS * vocab, 10f, 3 + vocab);
            FloatArray expected = FloatArray.allocate(ROWS * vocab);
            for (int r = 0; r < ROWS; r++) {
                double t = temperatures[r];
                if (t <= 0) {
                    expected.set(r * vocab + referenceArgmax(logits, r * vocab, vocab), 1f);
                    continue;
                }
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int i = 0; i < vocab; i++) {
                    max = Math.max(max, logits.get(r * vocab + i) / t);
                }
                for (int i = 0; i < vocab; i++) {
                    sum += Math.exp(logits.get(r * vocab + i) / t - max);
                }
                for (int i = 0; i < vocab; i++) {
                    expected.set(r * vocab + i, (float) (Math.exp(logits.get(r * vocab + i) / t - max) / sum));
                }
            }
            // The kernel sums the row with compensation (a few ulps for any length, plus log2(local)
            // tree additions); the argument x * (1 / t) - max, |x / t - max| <= 29, carries two
            // roundings: 2 * 29 * 2^-24 = 3.5e-6 relative on exp; exp itself a few ulps. 1e-5 bounds it.
            FloatArray launched = temperatureSoftmax(dev, null, logits, temperatures, vocab);
            assertClose(expected, launched, 1e-30f, 1e-5f, "temperatureSoftmax vocab " + vocab);
            for (int local : LOCAL_SIZES) {
                assertClose(expected, temperatureSoftmax(dev, Grid.groups(ROWS, local), logits, temperatures, vocab), 1e-30f, 1e-5f,
                        "temperatureSoftmax vocab " + vocab + " local " + local);
            }
            if (isJvm(dev)) { // CUDA's group (sampling.softmax_local): an item's four runs end past the row at every vocabulary here
                assertClose(expected, temperatureSoftmax(dev, Grid.groups(ROWS, 1024), logits, temperatures, vocab), 1e-30f, 1e-5f,
                        "temperatureSoftmax vocab " + vocab + " local 1024");
            }
            if (!isJvm(dev)) {
                assertClose(temperatureSoftmax(TestDevices.jvm(), null, logits, temperatures, vocab), launched, 1e-30f, 2e-5f,
                        "temperatureSoftmax " + id + " vs jvm");
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void thresholdsAreTheExactTopKThenTopPCutoffs(String id) {
        Device dev = device(id);
        for (int vocab : VOCABS) {
            FloatArray probs = probabilities(vocab, 17 + vocab);
            float[] expected = new float[ROWS];
            for (int r = 0; r < ROWS; r++) {
                expected[r] = referenceThreshold(probs, r * vocab, vocab, TOP_K[r], TOP_P[r]);
            }
            for (int local : LOCAL_SIZES) {
                assertArrayEquals(expected, threshold(dev, Grid.groups(ROWS, local), probs, vocab), "threshold vocab " + vocab + " local " + local);
            }
            assertArrayEquals(expected, threshold(dev, null, probs, vocab), "launchTopKTopPThreshold vocab " + vocab);
        }
    }

    /**
     * The threshold's search at its largest work-group, 512 items (CUDA's), on the JVM: sub-groups of one item (the
     * sub-groups' sums meet in local memory in 8 rounds of 64) and, with the tuning jvm.sub_groups=32, of a warp (their
     * sums by shuffles, one round of 16, as on CUDA). The launcher refuses a larger group (its registers would not fit).
     */
    @Test
    void thresholdsInWideGroupsWithAndWithoutWarpSubGroups() {
        Device jvm = TestDevices.jvm();
        for (int vocab : new int[] {1000, 152064}) {
            FloatArray probs = probabilities(vocab, 19 + vocab);
            float[] expected = new float[ROWS];
            for (int r = 0; r < ROWS; r++) {
                expected[r] = referenceThreshold(probs, r * vocab, vocab, TOP_K[r], TOP_P[r]);
            }
            assertArrayEquals(expected, threshold(jvm, Grid.groups(ROWS, 512), probs, vocab), "threshold vocab " + vocab + " local 512");
            io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.sub_groups", "32"),
                    () -> assertArrayEquals(expected, threshold(jvm, Grid.groups(ROWS, 512), probs, vocab),
                            "threshold vocab " + vocab + " local 512, sub-groups of 32"));
        }
        io.lightllm.testing.TestProperties.with(java.util.Map.of("lightllm.tuning.jvm.sampling.threshold_local", "1024"),
                () -> assertThrows(IllegalArgumentException.class, () -> threshold(jvm, null, probabilities(8, 3), 8)));
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void tiesAtTheThresholdAreAllKept(String id) {
        Device dev = device(id);
        int vocab = 6;
        // two tokens of 0.3 and four of 0.1: top-k 1 and top-p 0.5 both stop inside the 0.3 pair;
        // top-k 3 stops inside the 0.1s
        FloatArray probs = FloatArray.fromArray(0.1f, 0.3f, 0.1f, 0.1f, 0.3f, 0.1f);
        DeviceBuffer threshold = dev.allocate(DType.F32, 3);
        Sampling.launchTopKTopPThreshold(dev, threshold, copyOfRows(dev, probs, 3), copyOf(dev, IntArray.fromArray(1, 0, 3)),
                copyOf(dev, FloatArray.fromArray(1f, 0.5f, 1f)), 3, vocab);
        assertArrayEquals(new float[] {0.3f, 0.3f, 0.1f}, ((FloatArray) dev.download(threshold)).toArray(), "thresholds with ties");
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void samplingInvertsTheCumulativeKeptMass(String id) {
        Device dev = device(id);
        for (int vocab : VOCABS) {
            FloatArray probs = probabilities(vocab, 23 + vocab);
            float[] thresholds = new float[ROWS];
            for (int r = 0; r < ROWS; r++) {
                thresholds[r] = referenceThreshold(probs, r * vocab, vocab, TOP_K[r], TOP_P[r]);
            }
            // 0 picks the first kept token, 0.99999994 (the largest float below 1) the last one
            for (float[] uniforms : new float[][] {{0.37f, 0.01f, 0.99f, 0.5f, 0.2f, 0.73f}, {0f, 0.99999994f, 0f, 0.99999994f, 0f, 0.6f}}) {
                int[] expected = new int[ROWS];
                for (int r = 0; r < ROWS; r++) {
                    expected[r] = referenceSample(probs, r * vocab, vocab, thresholds[r], uniforms[r]);
                }
                for (int local : LOCAL_SIZES) {
                    assertArrayEquals(expected, sample(dev, Grid.groups(ROWS, local), probs, thresholds, uniforms, vocab),
                            "sample vocab " + vocab + " local " + local + " u " + Arrays.toString(uniforms));
                }
                assertArrayEquals(expected, sample(dev, null, probs, thresholds, uniforms, vocab), "launchSampleFromThreshold vocab " + vocab);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void theThreeStepsTogetherFollowTheReferencePipeline(String id) {
        Device dev = device(id);
        int vocab = 1000;
        float[] temperatures = {0.8f, 1f, 0f, 1.2f, 0.5f, 1f};
        float[] uniforms = {0.42f, 0.9f, 0.3f, 0.05f, 0.66f, 0.5f};
        FloatArray logits = random(ROWS * vocab, 8f, 99);
        DeviceBuffer lb = copyOf(dev, logits), out = dev.allocate(DType.I32, ROWS), threshold = dev.allocate(DType.F32, ROWS);
        Sampling.launchSample(dev, out, lb, copyOf(dev, FloatArray.fromArray(temperatures)), copyOf(dev, IntArray.fromArray(TOP_K)),
                copyOf(dev, FloatArray.fromArray(TOP_P)), copyOf(dev, FloatArray.fromArray(uniforms)), threshold, ROWS, vocab);
        // the steps are checked one by one above; here the chain must hand the device's own
        // probabilities from step to step: thresholds and ids follow from them exactly
        FloatArray probs = (FloatArray) dev.download(lb);
        int[] ids = ((IntArray) dev.download(out)).toArray();
        for (int r = 0; r < ROWS; r++) {
            float t = referenceThreshold(probs, r * vocab, vocab, TOP_K[r], TOP_P[r]);
            assertEquals(t, ((FloatArray) dev.download(threshold)).get(r), "threshold of row " + r);
            assertEquals(referenceSample(probs, r * vocab, vocab, t, uniforms[r]), ids[r], "id of row " + r);
        }
        assertEquals(referenceArgmax(logits, 2 * vocab, vocab), ids[2], "the greedy row takes the argmax");
    }

    @Test
    void compilesToCuda() {
        assertCompilesToCuda(Sampling.ARGMAX);
        assertCompilesToCuda(Sampling.TEMPERATURE_SOFTMAX);
        assertCompilesToCuda(Sampling.TOP_K_TOP_P_THRESHOLD);
        assertCompilesToCuda(Sampling.SAMPLE_FROM_THRESHOLD);
    }

    // ---- runs -------------------------------------------------------------------------

    private static int[] argmax(Device dev, Grid grid, FloatArray logits, int vocab) {
        DeviceBuffer lb = copyOf(dev, logits), out = dev.allocate(DType.I32, ROWS);
        if (grid == null) {
            Sampling.launchArgmax(dev, out, lb, ROWS, vocab);
        } else {
            dev.launch(Sampling.ARGMAX, grid, lb, out, vocab);
        }
        return ((IntArray) dev.download(out)).toArray();
    }

    private static FloatArray temperatureSoftmax(Device dev, Grid grid, FloatArray logits, float[] temperatures, int vocab) {
        DeviceBuffer lb = copyOf(dev, logits), tb = copyOf(dev, FloatArray.fromArray(temperatures));
        if (grid == null) {
            Sampling.launchTemperatureSoftmax(dev, lb, tb, ROWS, vocab);
        } else {
            dev.launch(Sampling.TEMPERATURE_SOFTMAX, grid, lb, tb, vocab);
        }
        return (FloatArray) dev.download(lb);
    }

    private static float[] threshold(Device dev, Grid grid, FloatArray probs, int vocab) {
        DeviceBuffer pb = copyOf(dev, probs), kb = copyOf(dev, IntArray.fromArray(TOP_K)), tpb = copyOf(dev, FloatArray.fromArray(TOP_P));
        DeviceBuffer out = dev.allocate(DType.F32, ROWS);
        if (grid == null) {
            Sampling.launchTopKTopPThreshold(dev, out, pb, kb, tpb, ROWS, vocab);
        } else {
            dev.launch(Sampling.TOP_K_TOP_P_THRESHOLD, grid, pb, kb, tpb, out, vocab);
        }
        return ((FloatArray) dev.download(out)).toArray();
    }

    private static int[] sample(Device dev, Grid grid, FloatArray probs, float[] thresholds, float[] uniforms, int vocab) {
        DeviceBuffer pb = copyOf(dev, probs), tb = copyOf(dev, FloatArray.fromArray(thresholds)), ub = copyOf(dev, FloatArray.fromArray(uniforms));
        DeviceBuffer out = dev.allocate(DType.I32, ROWS);
        if (grid == null) {
            Sampling.launchSampleFromThreshold(dev, out, pb, tb, ub, ROWS, vocab);
        } else {
            dev.launch(Sampling.SAMPLE_FROM_THRESHOLD, grid, pb, tb, ub, out, vocab);
        }
        return ((IntArray) dev.download(out)).toArray();
    }

    private static DeviceBuffer copyOfRows(Device dev, FloatArray row, int rows) {
        FloatArray all = FloatArray.allocate(rows * row.getSize());
        for (int i = 0; i < all.getSize(); i++) {
            all.set(i, row.get(i % row.getSize()));
        }
        return copyOf(dev, all);
    }

    /** Rows of softmax(random logits), computed in double and rounded: a realistic spread from 1e-9 to 0.5. */
    private static FloatArray probabilities(int vocab, long seed) {
        FloatArray logits = random(ROWS * vocab, 9f, seed);
        FloatArray probs = FloatArray.allocate(ROWS * vocab);
        for (int r = 0; r < ROWS; r++) {
            double sum = 0;
            for (int i = 0; i < vocab; i++) {
                sum += Math.exp(logits.get(r * vocab + i));
            }
            for (int i = 0; i < vocab; i++) {
                probs.set(r * vocab + i, (float) (Math.exp(logits.get(r * vocab + i)) / sum));
            }
        }
        return probs;
    }

    // ---- scalar references -----------------------------------------------------------

    private static int referenceArgmax(FloatArray x, int base, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            float v = x.get(base + i), b = x.get(base + best);
            if (!Float.isNaN(v) && (Float.isNaN(b) || v > b)) {
                best = i;
            }
        }
        return best;
    }

    /**
     * Sort the row descending; top-k keeps values >= the k-th; top-p then keeps the shortest
     * prefix of those whose sum (in double) reaches topP times their total. The threshold is the
     * last kept value; equal values after it are kept too.
     */
    private static float referenceThreshold(FloatArray probs, int base, int n, int k, float topP) {
        float[] sorted = new float[n];
        for (int i = 0; i < n; i++) {
            sorted[i] = probs.get(base + i);
        }
        Arrays.sort(sorted);
        reverse(sorted);
        int kept = k > 0 && k < n ? k : n;
        float threshold = k > 0 && k < n ? sorted[k - 1] : 0f;
        while (kept < n && sorted[kept] == threshold) {
            kept++;
        }
        if (topP < 1f) {
            double total = 0;
            for (int i = 0; i < kept; i++) {
                total += sorted[i];
            }
            double target = Math.max(topP, 0) * total;
            double cumulative = 0;
            int m = 0;
            while (m < kept && (cumulative < target || m == 0)) {
                cumulative += sorted[m++];
            }
            double before = cumulative - sorted[m - 1];
            if (topP > 0) {
                assertMargins(m > 1 ? (target - before) / total : Double.POSITIVE_INFINITY, (cumulative - target) / total, "top-p");
            }
            threshold = sorted[m - 1];
        }
        return threshold;
    }

    /** The first kept index (probs >= threshold, in index order) whose cumulative mass (double) exceeds u times the kept total. */
    private static int referenceSample(FloatArray probs, int base, int n, float threshold, float u) {
        double total = 0;
        for (int i = 0; i < n; i++) {
            float p = probs.get(base + i);
            total += p >= threshold ? p : 0;
        }
        double target = u * total, cumulative = 0;
        int last = -1;
        for (int i = 0; i < n; i++) {
            float p = probs.get(base + i);
            if (p >= threshold) {
                if (cumulative + p > target) {
                    // only a boundary with kept mass on its other side can be crossed the wrong way
                    double below = cumulative > 0 ? (target - cumulative) / total : Double.POSITIVE_INFINITY;
                    boolean massAfter = total - (cumulative + p) > 1e-12 * total;
                    assertMargins(below, massAfter ? (cumulative + p - target) / total : Double.POSITIVE_INFINITY, "sampling");
                    return i;
                }
                cumulative += p;
                last = i;
            }
        }
        return last;
    }

    private static void assertMargins(double below, double above, String what) {
        assertTrue(below > MIN_MARGIN_BELOW && above > MIN_MARGIN_ABOVE,
                "test data too close to a " + what + " boundary: margins " + below + " below, " + above + " above");
    }

    private static void reverse(float[] a) {
        for (int i = 0, j = a.length - 1; i < j; i++, j--) {
            float t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    private static void assertArrayEquals(int[] expected, int[] actual, String what) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual, what);
    }

    private static void assertArrayEquals(float[] expected, float[] actual, String what) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual, what);
    }
}
