package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/**
 * The lane sums' one order, against a scalar emulation of it: halve the lanes, adding lane i and lane i + half, until
 * one is left. Bit for bit for every species the kernels use, and over many calls (after the JIT has compiled them),
 * which is the point: reduceLanes gave one row two sums within a run.
 */
class LaneSumsTest {
    @Test
    void sumsFollowTheHalvingOrderBitForBit() {
        Random random = new Random(7);
        for (VectorSpecies<Float> species : java.util.List.of(FloatVector.SPECIES_PREFERRED, FloatVector.SPECIES_512, FloatVector.SPECIES_256,
                FloatVector.SPECIES_128)) {
            int lanes = species.length();
            float[] out = new float[4];
            for (int call = 0; call < 20_000; call++) {
                float[][] v = new float[4][lanes];
                for (float[] row : v) {
                    for (int i = 0; i < lanes; i++) {
                        // magnitudes 1e-3 .. 1e3: orders of addition give different roundings
                        row[i] = (float) ((random.nextDouble() - 0.5) * Math.pow(10, random.nextInt(7) - 3));
                    }
                }
                FloatVector[] vs = new FloatVector[4];
                for (int r = 0; r < 4; r++) {
                    vs[r] = FloatVector.fromArray(species, v[r], 0);
                }
                LaneSums.sum4(vs[0], vs[1], vs[2], vs[3], out, 0);
                for (int r = 0; r < 4; r++) {
                    float expected = halving(v[r]);
                    assertEquals(expected, LaneSums.sum(vs[r]), 0f, species + " sum, call " + call);
                    assertEquals(expected, out[r], 0f, species + " sum4 row " + r + ", call " + call);
                }
            }
        }
    }

    private static float halving(float[] lanes) {
        float[] x = lanes.clone();
        for (int n = x.length; n > 1; n /= 2) {
            for (int i = 0; i < n / 2; i++) {
                x[i] = x[i] + x[i + n / 2];
            }
        }
        return x[0];
    }
}
