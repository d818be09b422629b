package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import org.junit.jupiter.api.Test;

/**
 * A guard on the JVM GEMMs' speed that does not depend on the machine: 8 rows against 1 row of the same 2048 x 2048 bf16
 * product, each timed after the JIT has compiled it, the faster of several rounds. Eight rows read the weights once as
 * one row does and do eight times the arithmetic, so they take 2.6-3.2x one row's time (one thread, AMD EPYC with
 * AVX-512, session 18); when the 4 x 4 dot-product blocks' loop fell off C2's fast path (session 16's lane sums inlined
 * after it: 8x slower, found two sessions later by a benchmark) the ratio was 27. The bound sits between the two.
 */
class VectorMatmulSpeedTest {
    private static final int N = 2048, K = 2048;
    private static final double MOST = 10;

    @Test
    void eightRowsCostNoMoreThanTenTimesOneRow() {
        try (JvmDevice device = new JvmDevice(1)) {
            NativeArray w = NativeArray.allocate(DType.BF16, (long) N * K);
            for (int i = 0; i < N * K; i += 7) {
                w.setFloat(i, (i % 13) * 0.01f);
            }
            double one = fastest(device, w, 1), eight = fastest(device, w, 8);
            assertTrue(eight <= MOST * one, String.format("8 rows took %.0f us, %.1fx one row's %.0f us (at most %.0fx)", eight / 1e3,
                    eight / one, one / 1e3, MOST));
        }
    }

    /** Nanoseconds a product of m rows takes: the best of five rounds, after a second of warm-up (C2 compiles the loops). */
    private static double fastest(JvmDevice device, NativeArray w, int m) {
        FloatArray a = FloatArray.allocate(m * K), out = FloatArray.allocate(m * N);
        for (int i = 0; i < m * K; i++) {
            a.set(i, (i % 17) * 0.1f);
        }
        long warm = System.nanoTime() + 1_000_000_000L;
        while (System.nanoTime() < warm) {
            VectorMatmul.multiply(device, out, a, w, null, null, m, N, K);
        }
        double best = Double.MAX_VALUE;
        for (int round = 0; round < 5; round++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < 10; i++) {
                VectorMatmul.multiply(device, out, a, w, null, null, m, N, K);
            }
            best = Math.min(best, (System.nanoTime() - t0) / 10.0);
        }
        return best;
    }
}
