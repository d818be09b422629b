package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.kernels.KernelLibrary;
import io.lightllm.kernels.Sampling;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The JVM's radix selection ({@link JvmSampling}) against the portable kernel's binary searches, run on the same JVM
 * device: the same threshold bits for every top-k and top-p, over rows with ties, zeros, -0.0, NaN, +inf, negative
 * values, probabilities too small to carry fixed-point mass, and fewer eligible values than k.
 */
class JvmSamplingTest {
    private static final int VOCAB = 2000;
    private static final int[] TOP_K = {0, 1, 7, 50, 1999, 2000, 5000};
    private static final float[] TOP_P = {1f, 0.95f, 0.9f, 0.5f, 1e-3f, 0f};
    private final JvmDevice device = new JvmDevice(2);

    @AfterEach
    void close() {
        device.close();
    }

    @Test
    void radixSelectionKeepsThePortableKernelsThresholds() {
        KernelLibrary.installOverrides(device);
        assertTrue(device.hasOverride(Sampling.TOP_K_TOP_P_THRESHOLD));
        String[] kinds = {"softmax", "ties", "specials", "tiny", "mostly NaN"};
        int rows = TOP_K.length * TOP_P.length;
        for (int kind = 0; kind < kinds.length; kind++) {
            FloatArray probs = FloatArray.allocate(rows * VOCAB);
            int[] k = new int[rows];
            float[] p = new float[rows];
            for (int r = 0; r < rows; r++) {
                fillRow(probs, r * VOCAB, kind, new SplittableRandom(31L * kind + r));
                k[r] = TOP_K[r % TOP_K.length];
                p[r] = TOP_P[r / TOP_K.length];
            }
            DeviceBuffer pb = device.upload(probs), kb = device.upload(IntArray.fromArray(k)), tb = device.upload(FloatArray.fromArray(p));
            DeviceBuffer radix = device.allocate(DType.F32, rows), portable = device.allocate(DType.F32, rows);
            Grid grid = Grid.groups(rows, 1);
            device.launch(Sampling.TOP_K_TOP_P_THRESHOLD, grid, pb, kb, tb, radix, VOCAB);
            device.launchPortable(Sampling.TOP_K_TOP_P_THRESHOLD, grid, pb, kb, tb, portable, VOCAB);
            FloatArray expected = (FloatArray) device.download(portable), actual = (FloatArray) device.download(radix);
            for (int r = 0; r < rows; r++) {
                assertEquals(Float.floatToRawIntBits(expected.get(r)), Float.floatToRawIntBits(actual.get(r)),
                        kinds[kind] + " row, top-k " + k[r] + ", top-p " + p[r] + ": " + expected.get(r) + " against " + actual.get(r));
            }
        }
    }

    /**
     * {@link JvmSampling#argmax} and {@link JvmSampling#sampleFromThreshold} against the portable kernels on the same
     * device: the same index for every row of every kind above (ties, -0.0 beside 0.0, NaN, +inf, negative values, mass
     * too small to count), plus rows of -inf and NaN only (index 0), a maximum in the last element, and a row length that
     * leaves a tail past whole vectors; sampled at thresholds from the portable threshold kernel, at 0, and above every
     * value (the argmax fallback), with uniforms 0, just under 1, NaN and random.
     */
    @Test
    void argmaxAndSamplingKeepThePortableKernelsChoices() {
        KernelLibrary.installOverrides(device);
        assertTrue(device.hasOverride(Sampling.ARGMAX) && device.hasOverride(Sampling.SAMPLE_FROM_THRESHOLD));
        for (int vocab : new int[] {VOCAB, VOCAB - 3}) {
            int rows = 7 * 8;
            FloatArray probs = FloatArray.allocate(rows * vocab);
            for (int r = 0; r < rows; r++) {
                SplittableRandom random = new SplittableRandom(97L * vocab + r);
                int kind = r % 7;
                if (kind < 5) {
                    fillRow(probs, r * vocab, kind, random, vocab);
                } else {
                    for (int i = 0; i < vocab; i++) { // 5: -inf and NaN only; 6: the largest value last, ties before it
                        probs.set(r * vocab + i, kind == 5 ? (random.nextBoolean() ? Float.NaN : Float.NEGATIVE_INFINITY)
                                : i == vocab - 1 ? 2f : 0.5f * random.nextInt(3));
                    }
                }
            }
            float[] uniform = new float[rows];
            int[] topK = new int[rows];
            float[] topP = new float[rows];
            for (int r = 0; r < rows; r++) {
                int u = r / 7;
                uniform[r] = u == 0 ? 0f : u == 1 ? 0x1.fffffep-1f : u == 2 ? Float.NaN : new SplittableRandom(r).nextFloat();
                topK[r] = TOP_K[r % TOP_K.length];
                topP[r] = TOP_P[r % TOP_P.length];
            }
            DeviceBuffer pb = device.upload(probs), ub = device.upload(FloatArray.fromArray(uniform));
            Grid grid = Grid.groups(rows, 1);
            DeviceBuffer fast = device.allocate(DType.I32, rows), portable = device.allocate(DType.I32, rows);
            device.launch(Sampling.ARGMAX, grid, pb, fast, vocab);
            device.launchPortable(Sampling.ARGMAX, grid, pb, portable, vocab);
            assertSameIndices(portable, fast, "argmax, vocab " + vocab);
            DeviceBuffer thresholds = device.allocate(DType.F32, rows);
            device.launchPortable(Sampling.TOP_K_TOP_P_THRESHOLD, grid, pb, device.upload(IntArray.fromArray(topK)),
                    device.upload(FloatArray.fromArray(topP)), thresholds, vocab);
            FloatArray fixed = FloatArray.allocate(rows);
            for (float tau : new float[] {Float.NaN, 0f, 3f}) { // NaN: the kernel's thresholds
                DeviceBuffer tb = thresholds;
                if (!Float.isNaN(tau)) {
                    for (int r = 0; r < rows; r++) {
                        fixed.set(r, tau);
                    }
                    tb = device.upload(fixed);
                }
                device.launch(Sampling.SAMPLE_FROM_THRESHOLD, grid, pb, tb, ub, fast, vocab);
                device.launchPortable(Sampling.SAMPLE_FROM_THRESHOLD, grid, pb, tb, ub, portable, vocab);
                assertSameIndices(portable, fast, "sample, vocab " + vocab + ", threshold " + (Float.isNaN(tau) ? "top-k / top-p" : tau));
            }
        }
    }

    private void assertSameIndices(DeviceBuffer expected, DeviceBuffer actual, String what) {
        IntArray e = (IntArray) device.download(expected), a = (IntArray) device.download(actual);
        for (int r = 0; r < e.getSize(); r++) {
            assertEquals(e.get(r), a.get(r), what + ", row " + r);
        }
    }

    private static void fillRow(FloatArray probs, int base, int kind, SplittableRandom random) {
        fillRow(probs, base, kind, random, VOCAB);
    }

    private static void fillRow(FloatArray probs, int base, int kind, SplittableRandom random, int vocab) {
        double sum = 0;
        double[] e = new double[vocab];
        for (int i = 0; i < vocab; i++) {
            e[i] = Math.exp(random.nextDouble(-9, 9));
            sum += e[i];
        }
        for (int i = 0; i < vocab; i++) {
            float v = (float) (e[i] / sum);
            v = switch (kind) {
                case 1 -> 0.25f * (1 + random.nextInt(4)) / vocab * 2; // four distinct values: ties everywhere
                case 2 -> switch (random.nextInt(40)) {
                    case 0 -> 0f;
                    case 1 -> -0f;
                    case 2 -> Float.NaN;
                    case 3 -> -v;
                    case 4 -> Float.POSITIVE_INFINITY;
                    default -> v;
                };
                case 3 -> i % 3 == 0 ? v : (float) (v * 1e-12); // two thirds below a unit of fixed-point mass
                case 4 -> i < 20 ? v * 50 : Float.NaN; // 20 eligible values
                default -> v;
            };
            probs.set(base + i, v);
        }
    }
}
