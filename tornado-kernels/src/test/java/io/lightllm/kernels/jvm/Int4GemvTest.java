package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.lightllm.kernels.QuantBlocks;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Int4Gemv}'s integer products exactly: activations that are whole numbers with a largest magnitude of 127 in
 * every group (so their int8 codes are the values themselves, scale 1) against INT4 rows of scale 1 (so every weight
 * is its code less 8): every sum is an integer below 2^24, exact in f32 in any order, and must equal sum (q - 8) x
 * computed here in longs. The activations' rounding bound that QuantMatmulTest checks is far wider than a slip of one
 * in a lane's integer sum (the 32-bit pair products' low halves, for one), which this catches.
 */
class Int4GemvTest {
    @Test
    void integerInputsGiveTheExactIntegerProduct() {
        assumeTrue(Int4Gemv.available(), "512-bit or 256-bit vectors");
        int k = 384, n = 37; // three groups; rows past a multiple of four (a run's last rows repeat the last one)
        long rowBytes = k / 128 * 68;
        Random random = new Random(11);
        for (int m : new int[] {1, 3}) {
            int[][] codes = new int[n][k];
            MemorySegment w = Arena.ofAuto().allocate(n * rowBytes, 64);
            for (int row = 0; row < n; row++) {
                for (int g = 0; g < k / 128; g++) {
                    int rowAt = Math.toIntExact(row * rowBytes);
                    w.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), QuantBlocks.int4ScaleAt(QuantBlocks.INT4, rowAt, k / 128, g), 1f);
                    for (int b = 0; b < 64; b++) { // byte b: element b in the low nibble, 64 + b in the high one
                        int lo = random.nextInt(16), hi = random.nextInt(16);
                        codes[row][128 * g + b] = lo;
                        codes[row][128 * g + 64 + b] = hi;
                        w.set(ValueLayout.JAVA_BYTE, QuantBlocks.int4CodesAt(rowAt, g) + b, (byte) (lo | hi << 4));
                    }
                }
            }
            float[] x = new float[m * k];
            for (int i = 0; i < x.length; i++) {
                x[i] = i % 128 == 37 ? (i % 3 == 0 ? -127 : 127) : random.nextInt(255) - 127;
            }
            FloatArray out = FloatArray.allocate(m * n);
            try (JvmDevice device = new JvmDevice(2)) {
                Int4Gemv.multiply(device, out, x, w, false, null, m, n, k, rowBytes);
            }
            for (int b = 0; b < m; b++) {
                for (int row = 0; row < n; row++) {
                    long expected = 0;
                    for (int i = 0; i < k; i++) {
                        expected += (long) (codes[row][i] - 8) * (long) x[b * k + i];
                    }
                    assertEquals(expected, out.get(b * n + row), 0f, "m " + m + ", batch row " + b + ", weight row " + row);
                }
            }
        }
    }

    /**
     * The activations' two forms, the 512-bit vectors' and the lane-at-a-time one that 256-bit machines take, give the
     * same codes, scales and code sums (whichever this machine runs in {@link Int4Gemv#multiply}); random groups, one all
     * zeros, one with halves exactly between two codes.
     */
    @Test
    void bothQuantisationsGiveTheSameActivations() {
        int m = 2, k = 512;
        Random random = new Random(12);
        float[] x = new float[m * k];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian() * (1 + i / 128);
        }
        java.util.Arrays.fill(x, 128, 256, 0f);
        for (int i = 256; i < 384; i++) {
            x[i] = i == 256 ? 127f : (i % 7) + 0.5f; // scale 1: codes 0.5, 1.5, .. round half to even
        }
        Int4Gemv.Activations vector = Int4Gemv.quantizeVector(x, m, k), scalar = Int4Gemv.quantizeScalar(x, m, k);
        org.junit.jupiter.api.Assertions.assertArrayEquals(vector.pairs(), scalar.pairs(), "pairs");
        org.junit.jupiter.api.Assertions.assertArrayEquals(vector.scales(), scalar.scales(), "scales");
        org.junit.jupiter.api.Assertions.assertArrayEquals(vector.codeSums(), scalar.codeSums(), "code sums");
    }
}
