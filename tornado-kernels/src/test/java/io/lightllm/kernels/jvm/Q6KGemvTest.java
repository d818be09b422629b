package io.lightllm.kernels.jvm;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.lightllm.kernels.QuantFormat;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Q6KGemv}'s integer products exactly, as {@code Q4KGemvTest} checks Q4_K's: whole-number activations whose
 * largest magnitude in each super-block is 127 (their int8 codes are the values, scale 1) against Q6_K blocks with d =
 * 1, random int8 scales (-20..20) and random 6-bit codes, so that every weight is sc (q - 32); every sum stays a whole
 * number below 2^24 and must equal sum sc (q - 32) x computed here in longs. A code bit from the wrong qh pair, a
 * scale from the wrong run or half, or a plane meeting the wrong activations fails it.
 */
class Q6KGemvTest {
    @Test
    void integerInputsGiveTheExactIntegerProduct() {
        assumeTrue(Q6KGemv.available(), "256-bit vectors");
        check(false);
    }

    /** The float path for machines where {@link Q6KGemv} does not run ({@link VectorQuantMatmul}'s streamed GGUF rows): exact too. */
    @Test
    void floatPathGivesTheExactIntegerProduct() {
        assumeTrue(VectorQuantMatmul.streamsGguf(QuantFormat.Q6_K), "8- or 16-lane vectors");
        check(true);
    }

    private static void check(boolean floatPath) {
        int k = 512, n = 37; // two super-blocks; rows past a multiple of four
        int blocks = k / 256;
        long rowBytes = (long) blocks * Q6KGemv.BLOCK_BYTES;
        Random random = new Random(17);
        long[][] weights = new long[n][k];
        MemorySegment w = Arena.ofAuto().allocate(n * rowBytes, 64);
        for (int row = 0; row < n; row++) {
            for (int s = 0; s < blocks; s++) {
                long at = row * rowBytes + (long) Q6KGemv.BLOCK_BYTES * s;
                w.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), at + 208, Float.floatToFloat16(1f));
                int[] scale = new int[16];
                for (int u = 0; u < 16; u++) {
                    scale[u] = random.nextInt(41) - 20;
                    w.set(ValueLayout.JAVA_BYTE, at + 192 + u, (byte) scale[u]);
                }
                // dequantize_row_q6_K: element 128h + 32r + l is nibble r / 2 of ql[64h + 32 (r % 2) + l] with bits 2r,
                // 2r + 1 of qh[32h + l] above it, less 32, times scale 8h + 2r + l / 16
                for (int h = 0; h < 2; h++) {
                    for (int l = 0; l < 32; l++) {
                        int[] q = new int[4];
                        for (int r = 0; r < 4; r++) {
                            q[r] = random.nextInt(64);
                            weights[row][256 * s + 128 * h + 32 * r + l] = (long) scale[8 * h + 2 * r + l / 16] * (q[r] - 32);
                        }
                        w.set(ValueLayout.JAVA_BYTE, at + 64 * h + l, (byte) (q[0] & 15 | (q[2] & 15) << 4));
                        w.set(ValueLayout.JAVA_BYTE, at + 64 * h + 32 + l, (byte) (q[1] & 15 | (q[3] & 15) << 4));
                        w.set(ValueLayout.JAVA_BYTE, at + 128 + 32 * h + l, (byte) (q[0] >> 4 | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6));
                    }
                }
            }
        }
        Q4KGemvTest.assertExactProducts(weights, n, k, random, floatPath
                ? (device, out, x, m) -> VectorQuantMatmul.streamGguf(device, out, x, w, QuantFormat.Q6_K, null, m, n, k, rowBytes)
                : (device, out, x, m) -> Q6KGemv.multiply(device, out, x, w, null, m, n, k));
    }
}
