package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.lightllm.kernels.QuantFormat;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Q4KGemv}'s integer products exactly, as {@code Int4GemvTest} checks int4's: whole-number activations whose
 * largest magnitude in each super-block is 127 (so their int8 codes are the values, scale 1) against Q4_K blocks with d
 * = dmin = 1, random 6-bit scales and minimums and random codes, so that every weight is sc q - m; every sum stays a
 * whole number below 2^24, exact in f32 in any order, and must equal sum (sc q - m) x computed here in longs. The
 * activations' rounding bound that QuantMatmulTest checks would not see a slip of one in a lane (a pair product's low
 * half, a plane meeting the wrong activation, a scale taken from the wrong sub-block), which this catches.
 */
class Q4KGemvTest {
    @Test
    void integerInputsGiveTheExactIntegerProduct() {
        assumeTrue(Q4KGemv.available(), "256-bit vectors");
        check(false);
    }

    /** The same over Q5_K blocks: Q4_K's with a fifth code bit from qh (bit 2c or 2c + 1 of qh[l] for byte l of chunk c). */
    @Test
    void fiveBitCodesGiveTheExactIntegerProduct() {
        assumeTrue(Q4KGemv.available(), "256-bit vectors");
        check(true);
    }

    /**
     * The float path for machines where {@link Q4KGemv} does not run ({@link VectorQuantMatmul}'s streamed GGUF rows, vectors
     * of 8 or 16 lanes): every weight, activation, product and sum a whole number below 2^24, so it too must be exact.
     */
    @Test
    void floatPathGivesTheExactIntegerProduct() {
        check(false, true);
        check(true, true);
    }

    private static void check(boolean fiveBits) {
        check(fiveBits, false);
    }

    private static void check(boolean fiveBits, boolean floatPath) {
        int k = 512, n = 37; // two super-blocks; rows past a multiple of four (a run's last rows repeat the last one)
        int blocks = k / 256, blockBytes = fiveBits ? Q4KGemv.Q5K_BLOCK_BYTES : Q4KGemv.BLOCK_BYTES, codesAt = fiveBits ? 48 : 16;
        long rowBytes = (long) blocks * blockBytes;
        Random random = new Random(13);
        ValueLayout.OfShort f16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        long[][] weights = new long[n][k];
        MemorySegment w = Arena.ofAuto().allocate(n * rowBytes, 64);
        for (int row = 0; row < n; row++) {
            for (int s = 0; s < blocks; s++) {
                long at = row * rowBytes + (long) blockBytes * s;
                w.set(f16, at, Float.floatToFloat16(1f));
                w.set(f16, at + 2, Float.floatToFloat16(1f));
                int[] scale = new int[8], min = new int[8];
                for (int j = 0; j < 8; j++) {
                    scale[j] = random.nextInt(64);
                    min[j] = random.nextInt(64);
                }
                // get_scale_min_k4's packing: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums),
                // 4-7 in the nibbles of bytes 8-11 with their top two bits in the top bits of bytes 0-7
                for (int j = 0; j < 4; j++) {
                    w.set(ValueLayout.JAVA_BYTE, at + 4 + j, (byte) (scale[j] | (scale[j + 4] >> 4) << 6));
                    w.set(ValueLayout.JAVA_BYTE, at + 8 + j, (byte) (min[j] | (min[j + 4] >> 4) << 6));
                    w.set(ValueLayout.JAVA_BYTE, at + 12 + j, (byte) (scale[j + 4] & 15 | (min[j + 4] & 15) << 4));
                }
                int[] fifth = new int[32];
                for (int c = 0; c < 4; c++) {
                    for (int l = 0; l < 32; l++) { // byte l of chunk c: element 64c + l (low nibble), 64c + 32 + l (high)
                        int lo = random.nextInt(16), hi = random.nextInt(16);
                        int loBit = fiveBits ? random.nextInt(2) : 0, hiBit = fiveBits ? random.nextInt(2) : 0;
                        fifth[l] |= loBit << 2 * c | hiBit << 2 * c + 1;
                        w.set(ValueLayout.JAVA_BYTE, at + codesAt + 32 * c + l, (byte) (lo | hi << 4));
                        weights[row][256 * s + 64 * c + l] = (long) scale[2 * c] * (lo + 16 * loBit) - min[2 * c];
                        weights[row][256 * s + 64 * c + 32 + l] = (long) scale[2 * c + 1] * (hi + 16 * hiBit) - min[2 * c + 1];
                    }
                }
                for (int l = 0; fiveBits && l < 32; l++) {
                    w.set(ValueLayout.JAVA_BYTE, at + 16 + l, (byte) fifth[l]);
                }
            }
        }
        if (floatPath) {
            QuantFormat format = fiveBits ? QuantFormat.Q5_K : QuantFormat.Q4_K;
            assumeTrue(VectorQuantMatmul.streamsGguf(format), "8- or 16-lane vectors");
            assertExactProducts(weights, n, k, random, (device, out, x, m) -> VectorQuantMatmul.streamGguf(device, out, x, w, format, null, m, n, k,
                    rowBytes));
        } else {
            assertExactProducts(weights, n, k, random, (device, out, x, m) -> Q4KGemv.multiply(device, out, x, w, null, m, n, k, fiveBits));
        }
    }

    /** A GEMV of m rows of whole-number activations into out. */
    interface Gemv {
        void multiply(JvmDevice device, FloatArray out, float[] x, int m);
    }

    /**
     * At batch 1 and 3: activations whole numbers in -20..20, one of each super-block of 256 +-127 (so their int8 codes
     * are the values, scale 1); the GEMV's outputs must equal sum w x over the integer weights, computed in longs.
     */
    static void assertExactProducts(long[][] weights, int n, int k, Random random, Gemv gemv) {
        for (int m : new int[] {1, 3}) {
            float[] x = new float[m * k];
            for (int i = 0; i < x.length; i++) {
                x[i] = i % 256 == 101 ? (i % 3 == 0 ? -127 : 127) : random.nextInt(41) - 20;
            }
            FloatArray out = FloatArray.allocate(m * n);
            try (JvmDevice device = new JvmDevice(2)) {
                gemv.multiply(device, out, x, m);
            }
            for (int b = 0; b < m; b++) {
                for (int row = 0; row < n; row++) {
                    long expected = 0;
                    for (int i = 0; i < k; i++) {
                        expected += weights[row][i] * (long) x[b * k + i];
                    }
                    assertEquals(expected, out.get(b * n + row), 0f, "m " + m + ", batch row " + b + ", weight row " + row);
                }
            }
        }
    }
}
