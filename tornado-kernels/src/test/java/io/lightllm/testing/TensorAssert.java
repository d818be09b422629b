package io.lightllm.testing;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assertions;

/** Random test tensors and element-wise comparison with a stated tolerance. */
public final class TensorAssert {
    private TensorAssert() {
    }

    /** n uniform values in [-scale, scale) from a fixed seed. */
    public static FloatArray random(int n, float scale, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        FloatArray a = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            a.set(i, (float) ((r.nextDouble() * 2 - 1) * scale));
        }
        return a;
    }

    /** Fills any array with uniform values in [-scale, scale), rounded to its dtype. */
    public static <T extends NativeArray> T fill(T a, float scale, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < a.getSize(); i++) {
            a.setFloat(i, (float) ((r.nextDouble() * 2 - 1) * scale));
        }
        return a;
    }

    /**
     * Asserts |expected - actual| <= atol + rtol * |expected| for every element, and reports
     * the worst element when not.
     */
    public static void assertClose(NativeArray expected, NativeArray actual, float atol, float rtol, String what) {
        Assertions.assertEquals(expected.getSize(), actual.getSize(), what + ": sizes differ");
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.getSize(); i++) {
            float e = expected.getFloat(i), a = actual.getFloat(i);
            double excess = Math.abs(e - a) - (atol + rtol * Math.abs(e));
            if (Float.isNaN(a) != Float.isNaN(e) || excess > worstExcess) {
                worst = i;
                worstExcess = Float.isNaN(a) ? Double.POSITIVE_INFINITY : excess;
            }
        }
        if (worst >= 0) {
            Assertions.fail(String.format("%s: element %d is %s, expected %s (atol %g, rtol %g)", what, worst,
                    actual.getFloat(worst), expected.getFloat(worst), atol, rtol));
        }
    }
}
