package io.lightllm.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.GgmlQuantizer;
import io.lightllm.testing.TensorAssert;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Dequantisation of each block format against blocks built by hand from ggml-common.h's structs
 * (values computed here from the definitions), and llama.cpp's reference quantisers
 * ({@link GgmlQuantizer}) round-tripped within their error; int4's quantiser within its bound.
 */
class QuantFormatTest {
    private static final short ONE = Float.floatToFloat16(1f), HALF = Float.floatToFloat16(0.5f), QUARTER = Float.floatToFloat16(0.25f);

    private static float[] dequantize(QuantFormat f, ByteBuffer block) {
        return f.dequantize(MemorySegment.ofArray(block.array()), 1, f.blockSize()).toArray();
    }

    private static ByteBuffer block(QuantFormat f) {
        return ByteBuffer.allocate(f.blockBytes()).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void q4_0IsNibblesMinusEightTimesD() {
        // block_q4_0 {f16 d; u8 qs[16]}: element j < 16 is the low nibble of qs[j], j >= 16 the high nibble of qs[j - 16]
        ByteBuffer b = block(QuantFormat.Q4_0).putShort(HALF);
        float[] expected = new float[32];
        for (int j = 0; j < 16; j++) {
            int lo = j, hi = 15 - j;
            b.put((byte) (lo | hi << 4));
            expected[j] = (lo - 8) * 0.5f;
            expected[j + 16] = (hi - 8) * 0.5f;
        }
        assertArrayEquals(expected, dequantize(QuantFormat.Q4_0, b));
    }

    @Test
    void q8_0IsSignedBytesTimesD() {
        ByteBuffer b = block(QuantFormat.Q8_0).putShort(QUARTER);
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            byte q = (byte) (j * 37 - 128);
            b.put(q);
            expected[j] = q * 0.25f;
        }
        assertArrayEquals(expected, dequantize(QuantFormat.Q8_0, b));
    }

    /**
     * block_q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]} and block_q5_K (qh[32] before qs): sub-block s
     * (32 elements) has a 6-bit scale sc and min m, packed as get_scale_min_k4 reads them (s < 4: the low
     * 6 bits of scales[s] and scales[s + 4]; s >= 4: nibbles of scales[s + 4], top two bits in bits 6-7 of
     * scales[s - 4] and scales[s]); element = d * sc * q - dmin * m, q from 64-element chunks whose 32 bytes
     * hold the first 32 in low nibbles and the next 32 in high, plus for Q5_K bit (2 chunk + high) of qh[l] as 16.
     */
    @ParameterizedTest
    @CsvSource({"Q4_K", "Q5_K"})
    void kQuantsUnpackSixBitScalesAndMinimums(QuantFormat format) {
        boolean five = format == QuantFormat.Q5_K;
        int[] sc = new int[8], m = new int[8];
        byte[] scales = new byte[12];
        for (int s = 0; s < 8; s++) {
            sc[s] = 7 * s + 5; // up to 54: the s >= 4 values need their top bits
            m[s] = 63 - 6 * s;
            if (s < 4) {
                scales[s] = (byte) sc[s];
                scales[s + 4] = (byte) m[s];
            }
        }
        for (int s = 4; s < 8; s++) {
            scales[s + 4] = (byte) (sc[s] & 15 | (m[s] & 15) << 4);
            scales[s - 4] |= (byte) ((sc[s] >> 4) << 6);
            scales[s] |= (byte) ((m[s] >> 4) << 6);
        }
        int[] q = new int[256];
        byte[] qs = new byte[128], qh = new byte[32];
        for (int j = 0; j < 256; j++) {
            q[j] = (j * 7 + j / 32) % (five ? 32 : 16);
            int chunk = j / 64, l = j % 32, high = j % 64 / 32;
            qs[chunk * 32 + l] |= (byte) ((q[j] & 15) << 4 * high);
            if (q[j] > 15) {
                qh[l] |= (byte) (1 << (2 * chunk + high));
            }
        }
        ByteBuffer b = block(format).putShort(HALF).putShort(QUARTER).put(scales);
        if (five) {
            b.put(qh);
        }
        b.put(qs);
        float[] expected = new float[256];
        for (int j = 0; j < 256; j++) {
            expected[j] = 0.5f * sc[j / 32] * q[j] - 0.25f * m[j / 32];
        }
        assertArrayEquals(expected, dequantize(format, b));
    }

    /**
     * block_q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: per 128 elements, ql[64] and qh[32]; element
     * 32 r + l of a half (run r, l < 32) takes the low (r < 2) or high nibble of ql[l + 32 (r % 2)] and bits
     * 2r, 2r+1 of qh[l] as bits 4-5, minus 32, times d * scales[8 half + l / 16 + 2 r].
     */
    @Test
    void q6_KUnpacksSixBitCodesWithSignedScales() {
        int[] q = new int[256];
        byte[] ql = new byte[128], qh = new byte[64], scales = new byte[16];
        for (int i = 0; i < 16; i++) {
            scales[i] = (byte) (i % 2 == 0 ? 3 * i + 1 : -(2 * i));
        }
        for (int j = 0; j < 256; j++) {
            q[j] = (j * 11 + j / 64) % 64;
            int half = j / 128, r = j % 128 / 32, l = j % 32;
            ql[half * 64 + l + 32 * (r % 2)] |= (byte) ((q[j] & 15) << 4 * (r / 2));
            qh[half * 32 + l] |= (byte) ((q[j] >> 4) << 2 * r);
        }
        ByteBuffer b = block(QuantFormat.Q6_K).put(ql).put(qh).put(scales).putShort(ONE);
        float[] expected = new float[256];
        for (int j = 0; j < 256; j++) {
            int half = j / 128, r = j % 128 / 32, l = j % 32;
            expected[j] = 1f * scales[half * 8 + l / 16 + 2 * r] * (q[j] - 32);
        }
        assertArrayEquals(expected, dequantize(QuantFormat.Q6_K, b));
    }

    /**
     * A cut of whole blocks' columns (tensor parallelism's row-parallel weights) holds the same weights as those columns of
     * the dequantised matrix, in every format: an int4 row's codes and terms are cut apart, a GGUF row's blocks whole.
     */
    @Test
    void wholeBlockColumnsDequantiseToTheSameColumns() {
        int rows = 5, k = 768;
        for (QuantFormat format : QuantFormat.values()) {
            ByteArray w = QuantMatmulTest.randomBlocks(format, rows, k, 7);
            float[] all = format.dequantize(w.segment(), rows, k).toArray();
            int from = format.blockSize(), count = 2 * format.blockSize();
            ByteArray cut = format.columns(w.segment(), rows, k, from, count);
            assertEquals(rows * format.rowBytes(count), cut.getSize(), format.toString());
            float[] part = format.dequantize(cut.segment(), rows, count).toArray();
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < count; c++) {
                    assertEquals(all[r * k + from + c], part[r * count + c], 0f, format + " row " + r + " column " + (from + c));
                }
            }
        }
    }

    /** A row of one group: its 64 code bytes, then its scale (QuantBlocks' int4 layout). */
    @Test
    void int4IsNibblesOfTwoHalvesThenAnF32Scale() {
        ByteBuffer b = block(QuantFormat.INT4);
        float[] expected = new float[128];
        for (int j = 0; j < 64; j++) {
            int lo = j % 16, hi = (j * 5) % 16;
            b.put((byte) (lo | hi << 4));
            expected[j] = (lo - 8) * 0.125f;
            expected[j + 64] = (hi - 8) * 0.125f;
        }
        b.putFloat(0.125f);
        assertArrayEquals(expected, dequantize(QuantFormat.INT4, b));
    }

    @Test
    void int4WithAZeroPointIsUnsignedNibblesThenScaleAndOffset() {
        ByteBuffer b = block(QuantFormat.INT4_ZP);
        float[] expected = new float[128];
        for (int j = 0; j < 64; j++) {
            int lo = j % 16, hi = (j * 7) % 16;
            b.put((byte) (lo | hi << 4));
            expected[j] = 0.25f * lo - 2.25f;
            expected[j + 64] = 0.25f * hi - 2.25f;
        }
        b.putFloat(0.25f).putFloat(0.25f * 9); // zero point 9
        assertArrayEquals(expected, dequantize(QuantFormat.INT4_ZP, b));
    }

    /**
     * ggml's quantisers round-trip Gaussian rows within each format's error: Q8_0 within half a step d plus
     * the f16 rounding of d (|q| d 2^-11); Q4_0 within one step (d = max / -8 maps the block's extreme
     * to -8 and the opposite extreme, 8, clamps to 7); the K formats, whose scales and minimums are fitted
     * by a search, within an RMS error relative to the values' RMS of 0.12, 0.06, 0.03 (a 4-bit code
     * over ~6 sigma has a step of 0.4 sigma, RMS 0.4 / sqrt(12) = 0.12 sigma; each further bit halves
     * it; the fitted scales do better: measured Q4_K 0.073, Q5_K 0.037, Q6_K 0.018).
     */
    @ParameterizedTest
    @CsvSource({"Q8_0, 0", "Q4_0, 0", "Q4_K, 0.12", "Q5_K, 0.06", "Q6_K, 0.03"})
    void ggmlQuantisersRoundTripWithinTheirError(QuantFormat format, double relativeRms) {
        Random rnd = new Random(5);
        float[] x = new float[16 * 256];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian() * 0.02f;
        }
        byte[] blocks = GgmlQuantizer.quantize(format, x);
        assertEquals(x.length / format.blockSize() * format.blockBytes(), blocks.length);
        float[] y = format.dequantize(MemorySegment.ofArray(blocks), 16, 256).toArray();
        double err2 = 0, x2 = 0;
        for (int i = 0; i < x.length; i++) {
            err2 += (x[i] - y[i]) * (x[i] - y[i]);
            x2 += x[i] * x[i];
            if (relativeRms == 0) {
                int block = i / 32;
                float d = Math.abs(Float.float16ToFloat(ByteBuffer.wrap(blocks, block * format.blockBytes(), 2).order(ByteOrder.LITTLE_ENDIAN).getShort()));
                float bound = format == QuantFormat.Q8_0 ? d * (0.5f + 127f / 2048) : d * (1 + 8f / 2048);
                assertTrue(Math.abs(x[i] - y[i]) <= bound, format + " element " + i + ": " + x[i] + " became " + y[i] + ", step " + d);
            }
        }
        double measured = Math.sqrt(err2 / x2);
        System.out.printf("%s round trip: RMS error %.4f of the values' RMS%n", format, measured);
        assertTrue(relativeRms == 0 || measured <= relativeRms, format + " RMS error " + measured + " > " + relativeRms);
    }

    /** int4: scale = max/7 per group of 128 (a partial last group padded), |w - q s| <= s/2 plus the rounding of w / s. */
    @Test
    void int4QuantisationIsSymmetricPerGroupWithinHalfAStep() {
        int rows = 3, cols = 300; // two whole groups and a partial one of 44
        FloatArray w = TensorAssert.random(rows * cols, 2f, 9);
        for (int c = 128; c < 256; c++) {
            w.set(cols + c, 0f); // an all-zero group: scale 0
        }
        ByteArray q = QuantFormat.quantizeInt4(w, rows, cols);
        assertEquals(rows * 3 * 68, q.getSize());
        float[] y = QuantFormat.INT4.dequantize(q.segment(), rows, cols).toArray();
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g * 128 < cols; g++) {
                float max = 0;
                for (int c = g * 128; c < Math.min(cols, g * 128 + 128); c++) {
                    max = Math.max(max, Math.abs(w.get(r * cols + c)));
                }
                float s = max / 7f;
                // the layout (QuantBlocks): a row of 3 x 68 bytes holds its three groups' 64 code bytes, then their scales
                int rowAt = r * 3 * 68;
                assertEquals(s, q.segment().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
                        rowAt + 3 * 64 + 4 * g), 0f, "scale of row " + r + " group " + g);
                for (int c = g * 128; c < Math.min(cols, g * 128 + 128); c++) {
                    float error = Math.abs(w.get(r * cols + c) - y[r * cols + c]);
                    assertTrue(error <= s / 2 + max * 0x1p-22f, "element " + r + "," + c + " is off by " + error + ", step " + s);
                    // element c of group g: byte 64 g + c % 64 of the row, low nibble for the group's first 64, high for the rest
                    int j = c - g * 128, bits = q.get(rowAt + 64 * g + j % 64) & 0xFF;
                    int expected = s == 0 ? 8 : (int) Math.rint(w.get(r * cols + c) / s) + 8;
                    assertEquals(expected, j < 64 ? bits & 15 : bits >> 4, "code of element " + r + "," + c);
                }
            }
        }
    }
}
