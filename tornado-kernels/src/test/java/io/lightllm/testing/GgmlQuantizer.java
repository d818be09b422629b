package io.lightllm.testing;

import io.lightllm.kernels.QuantFormat;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * llama.cpp's reference quantisers (ggml-quants.c: quantize_row_q4_0_ref, q8_0, q4_K, q5_K, q6_K
 * with their helpers nearest_int, make_qkx2_quants, make_qx_quants), step for step in float
 * arithmetic, for tests that write GGUF files as llama-quantize does without an importance matrix.
 * Independent of the engine's decoding ({@link io.lightllm.kernels.QuantBlocks}): it writes the
 * block layouts of ggml-common.h from their definition.
 */
public final class GgmlQuantizer {
    private static final int QK_K = 256;
    private static final float GROUP_MAX_EPS = 1e-15f;

    private GgmlQuantizer() {
    }

    /** The blocks of {@code x} (a whole number of blocks) in {@code format}, little-endian as in a GGUF file. */
    public static byte[] quantize(QuantFormat format, float[] x) {
        if (x.length % format.blockSize() != 0) {
            throw new IllegalArgumentException(x.length + " values are not whole " + format + " blocks");
        }
        ByteBuffer out = ByteBuffer.allocate(x.length / format.blockSize() * format.blockBytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < x.length; at += format.blockSize()) {
            switch (format) {
                case Q4_0 -> q4_0(x, at, out);
                case Q8_0 -> q8_0(x, at, out);
                case Q4_K -> qK(x, at, out, false);
                case Q5_K -> qK(x, at, out, true);
                case Q6_K -> q6_K(x, at, out);
                case INT4 -> throw new IllegalArgumentException("int4 is the engine's format: QuantFormat.quantizeInt4");
            }
        }
        return out.array();
    }

    private static void q4_0(float[] x, int at, ByteBuffer out) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            float v = x[at + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        out.putShort(Float.floatToFloat16(d));
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(15, (byte) (int) (x[at + j] * id + 8.5f));
            int xi1 = Math.min(15, (byte) (int) (x[at + 16 + j] * id + 8.5f));
            out.put((byte) (xi0 | xi1 << 4));
        }
    }

    private static void q8_0(float[] x, int at, ByteBuffer out) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            amax = Math.max(amax, Math.abs(x[at + j]));
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        out.putShort(Float.floatToFloat16(d));
        for (int j = 0; j < 32; j++) {
            float v = x[at + j] * id;
            out.put((byte) (Math.signum(v) * Math.floor(Math.abs((double) v) + 0.5))); // roundf: halves away from zero
        }
    }

    /** quantize_row_q4_K_ref / q5_K_ref: 8 sub-blocks of 32 with 6-bit scales and minimums. */
    private static void qK(float[] x, int at, ByteBuffer out, boolean five) {
        int nmax = five ? 31 : 15;
        int[] l = new int[QK_K], laux = new int[32];
        float[] weights = new float[32], mins = new float[8], scales = new float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float sumX2 = 0;
            for (int i = 0; i < 32; i++) {
                sumX2 += x[at + 32 * j + i] * x[at + 32 * j + i];
            }
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int i = 0; i < 32; i++) {
                weights[i] = avX + Math.abs(x[at + 32 * j + i]);
            }
            float[] min = new float[1];
            scales[j] = makeQkx2Quants(32, nmax, x, at + 32 * j, weights, l, 32 * j, min, laux, five ? -0.5f : -1f, 0.1f, five ? 15 : 20);
            mins[j] = min[0];
            maxScale = Math.max(maxScale, scales[j]);
            maxMin = Math.max(maxMin, mins[j]);
        }
        float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
        float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
        int[] sc = new int[12];
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF);
            int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
            if (j < 4) {
                sc[j] = ls;
                sc[j + 4] = lm;
            } else {
                sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                sc[j - 4] |= (ls >> 4) << 6;
                sc[j] |= (lm >> 4) << 6;
            }
        }
        short d = Float.floatToFloat16(maxScale / 63.f), dmin = Float.floatToFloat16(maxMin / 63.f);
        for (int j = 0; j < 8; j++) {
            int s = j < 4 ? sc[j] & 63 : (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
            int m = j < 4 ? sc[j + 4] & 63 : (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
            float dd = Float.float16ToFloat(d) * s;
            if (dd == 0) {
                continue;
            }
            float dm = Float.float16ToFloat(dmin) * m;
            for (int i = 0; i < 32; i++) {
                l[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt((x[at + 32 * j + i] + dm) / dd)));
            }
        }
        out.putShort(d).putShort(dmin);
        for (int s : sc) {
            out.put((byte) s);
        }
        if (five) {
            byte[] qh = new byte[32], ql = new byte[128];
            int m1 = 1, m2 = 2;
            for (int n = 0, q = 0; n < QK_K; n += 64, q += 32) {
                for (int j = 0; j < 32; j++) {
                    int l1 = l[n + j], l2 = l[n + j + 32];
                    if (l1 > 15) {
                        l1 -= 16;
                        qh[j] |= (byte) m1;
                    }
                    if (l2 > 15) {
                        l2 -= 16;
                        qh[j] |= (byte) m2;
                    }
                    ql[q + j] = (byte) (l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
            }
            out.put(qh).put(ql);
        } else {
            for (int j = 0; j < QK_K; j += 64) {
                for (int i = 0; i < 32; i++) {
                    out.put((byte) (l[j + i] | (l[j + i + 32] << 4)));
                }
            }
        }
    }

    private static void q6_K(float[] x, int at, ByteBuffer out) {
        int[] l = new int[QK_K];
        float[] scales = new float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++) {
            float scale = makeQxQuants(16, 32, x, at + 16 * ib, l, 16 * ib);
            scales[ib] = scale;
            if (Math.abs(scale) > maxAbsScale) {
                maxAbsScale = Math.abs(scale);
                maxScale = scale;
            }
        }
        if (maxAbsScale < GROUP_MAX_EPS) {
            out.put(new byte[210]);
            return;
        }
        float iscale = -128.f / maxScale;
        short d = Float.floatToFloat16(1 / iscale);
        byte[] sc = new byte[16];
        for (int ib = 0; ib < 16; ib++) {
            sc[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
        }
        for (int j = 0; j < 16; j++) {
            float dd = Float.float16ToFloat(d) * sc[j];
            if (dd == 0) {
                continue;
            }
            for (int ii = 0; ii < 16; ii++) {
                l[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(x[at + 16 * j + ii] / dd))) + 32;
            }
        }
        byte[] ql = new byte[128], qh = new byte[64];
        for (int j = 0, q = 0, h = 0; j < QK_K; j += 128, q += 64, h += 32) {
            for (int i = 0; i < 32; i++) {
                int q1 = l[j + i] & 0xF, q2 = l[j + i + 32] & 0xF, q3 = l[j + i + 64] & 0xF, q4 = l[j + i + 96] & 0xF;
                ql[q + i] = (byte) (q1 | (q3 << 4));
                ql[q + i + 32] = (byte) (q2 | (q4 << 4));
                qh[h + i] = (byte) ((l[j + i] >> 4) | ((l[j + i + 32] >> 4) << 2) | ((l[j + i + 64] >> 4) << 4) | ((l[j + i + 96] >> 4) << 6));
            }
        }
        out.put(ql).put(qh).put(sc).putShort(d);
    }

    /** ggml's nearest_int: round half to even through the float's mantissa (|f| <= 4194303). */
    static int nearestInt(float f) {
        return (Float.floatToRawIntBits(f + 12582912.f) & 0x007fffff) - 0x00400000;
    }

    private static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] weights, int[] l, int lo, float[] theMin, int[] laux,
            float rmin, float rdelta, int nstep) {
        float min = x[xo], max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            min = Math.min(min, x[xo + i]);
            max = Math.max(max, x[xo + i]);
            float w = weights[i];
            sumW += w;
            sumX += w * x[xo + i];
        }
        if (min > 0) {
            min = 0;
        }
        if (max == min) {
            for (int i = 0; i < n; i++) {
                l[lo + i] = 0;
            }
            theMin[0] = -min;
            return 0.f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int li = nearestInt(iscale * (x[xo + i] - min));
            l[lo + i] = Math.max(0, Math.min(nmax, li));
            float diff = scale * l[lo + i] + min - x[xo + i];
            bestError += weights[i] * (diff * diff);
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (int i = 0; i < n; i++) {
                int li = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
                laux[i] = li;
                float w = weights[i];
                sumL += w * li;
                sumL2 += w * li * li;
                sumXl += w * li * x[xo + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXl - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - x[xo + i];
                    curError += weights[i] * (diff * diff);
                }
                if (curError < bestError) {
                    System.arraycopy(laux, 0, l, lo, n);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    /** make_qx_quants with rmse_type 1 and no importance weights (what quantize_row_q6_K_ref calls). */
    private static float makeQxQuants(int n, int nmax, float[] x, int xo, int[] l, int lo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) {
                l[lo + i] = 0;
            }
            return 0.f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int li = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
            l[lo + i] = li + nmax;
            float w = x[xo + i] * x[xo + i];
            sumlx += w * x[xo + i] * li;
            suml2 += w * li * li;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++) {
                int li = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
                float w = x[xo + i] * x[xo + i];
                sumlx += w * x[xo + i] * li;
                suml2 += w * li * li;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) {
                    l[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }
}
