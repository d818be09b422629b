package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The decode attention's four-query weighted sum gives, for each query, the floats of the one-query sum: the same
 * operations in the same order. Bit for bit, at head dimensions with and without a tail past the vectors, odd and even
 * token counts, over enough calls for the JIT to compile both.
 */
class VectorAttentionTest {
    @Test
    void fourQueryWeightedSumEqualsFourSingleSumsBitForBit() {
        Random random = new Random(11);
        for (int call = 0; call < 3_000; call++) {
            int dim = new int[] {64, 20, 16, 128}[call % 4], n = 1 + random.nextInt(64), stride = 3 * dim + 5, chunk = 64;
            float[] p = values(random, 4 * chunk), rows = values(random, n * stride + dim), start = values(random, 4 * dim);
            float[] four = start.clone(), single = start.clone();
            VectorAttention.addWeightedSum4(p, chunk, rows, 2, stride, n, dim, four, 0);
            for (int r = 0; r < 4; r++) {
                VectorAttention.addWeightedSum(p, r * chunk, rows, 2, stride, n, dim, single, r * dim);
            }
            for (int i = 0; i < 4 * dim; i++) {
                assertEquals(Float.floatToIntBits(single[i]), Float.floatToIntBits(four[i]), "call " + call + ", dim " + dim + ", n " + n + ", element " + i);
            }
        }
    }

    /** Magnitudes 1e-3 .. 1e3, where orders of addition round differently. */
    private static float[] values(Random random, int size) {
        float[] v = new float[size];
        for (int i = 0; i < size; i++) {
            v[i] = (float) ((random.nextDouble() - 0.5) * Math.pow(10, random.nextInt(7) - 3));
        }
        return v;
    }
}
