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

    private static void fillRow(FloatArray probs, int base, int kind, SplittableRandom random) {
        double sum = 0;
        double[] e = new double[VOCAB];
        for (int i = 0; i < VOCAB; i++) {
            e[i] = Math.exp(random.nextDouble(-9, 9));
            sum += e[i];
        }
        for (int i = 0; i < VOCAB; i++) {
            float v = (float) (e[i] / sum);
            v = switch (kind) {
                case 1 -> 0.25f * (1 + random.nextInt(4)) / VOCAB * 2; // four distinct values: ties everywhere
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
