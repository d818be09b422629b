package io.lightllm.kernels.jvm;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's GEMM for prefill-sized products (m >= {@link #MIN_ROWS}) as outer products: the activations are
 * transposed once (k-major, rows padded to a multiple of 16), and a task takes a panel of up to 32 weight rows
 * (widened to f32, in L2), multiplying each element of eight of them, broadcast, with 32 activation rows at a time
 * (two vectors): 16 accumulators,
 * 2 vector loads and 8 broadcasts for 16 FMAs, no reductions. The dot-product form ({@link VectorMatmul}'s 4 x 4
 * blocks: 8 vector loads for 16 FMAs and 16 reductions per block) reached half of the FMA units' rate in L1 and
 * a third in the whole GEMM; this form ~70 % in L1.
 */
final class OuterProductGemm {
    /** Activation rows from which this form runs (below, the dot-product blocks do). */
    static final int MIN_ROWS = 32;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final int LANES = 16, GROUP = 8;
    private static final ThreadLocal<float[]> ROWS = ThreadLocal.withInitial(() -> new float[0]);

    private OuterProductGemm() {
    }

    /** Whether this form runs here: 16-float vectors and enough rows. */
    static boolean applies(int m) {
        return m >= MIN_ROWS && FloatVector.SPECIES_PREFERRED.length() == LANES;
    }

    static void multiply(JvmDevice device, FloatArray out, float[] act, VectorMatmul.RowSource source, FloatArray scales, FloatArray bias,
            int m, int n, int k) {
        int mPad = (m + LANES - 1) / LANES * LANES;
        float[] xT = transpose(device, act, m, k);
        int panel = panelRows(device, n, k);
        device.parallelFor((n + panel - 1) / panel, t -> {
            int j0 = t * panel, rows = Math.min(panel, n - j0), padded = (rows + GROUP - 1) / GROUP * GROUP;
            float[] w = ROWS.get();
            if (w.length < padded * k) {
                w = new float[padded * k];
                ROWS.set(w);
            }
            for (int r = 0; r < rows; r++) {
                source.widen(j0 + r, w, r * k);
            }
            java.util.Arrays.fill(w, rows * k, padded * k, 0f);
            float[] tile = new float[GROUP * 2 * LANES];
            // each block of 32 activation rows (its k-major columns, 128 B a step) meets every group of the panel while in L2
            for (int i0 = 0; i0 < mPad; i0 += 2 * LANES) {
                int vectors = Math.min(2, (mPad - i0) / LANES);
                for (int g = 0; g < padded; g += GROUP) {
                    if (vectors == 2) {
                        tile8x32(xT, i0 * k, w, g * k, k, tile);
                    } else {
                        tile8x16(xT, i0 * k, w, g * k, k, tile);
                    }
                    for (int r = g; r < Math.min(rows, g + GROUP); r++) {
                        float scale = scales == null ? 1f : scales.get(j0 + r), add = bias == null ? 0f : bias.get(j0 + r);
                        for (int l = 0; l < vectors * LANES && i0 + l < m; l++) {
                            out.set((i0 + l) * n + j0 + r, tile[(r - g) * 2 * LANES + l] * scale + add);
                        }
                    }
                }
            }
        });
    }

    /** Widened weight bytes a task keeps (in L2): up to 32 rows, a multiple of 8, at least four tasks a thread. */
    private static int panelRows(JvmDevice device, int n, int k) {
        int byBytes = (256 << 10) / (4 * Math.max(1, k)) / GROUP * GROUP;
        int byTasks = n / (4 * device.threads()) / GROUP * GROUP;
        return Math.max(GROUP, Math.min(32, Math.min(byBytes, byTasks)));
    }

    /**
     * The activations k-major in blocks of 32 rows, each block contiguous: xT[(b * k + kk) * 32 + l] = act[(32 b + l) * k + kk]
     * (rows past m zero), so a tile reads its block in order (a row-wide stride would touch a new page every few steps).
     */
    private static float[] transpose(JvmDevice device, float[] act, int m, int k) {
        int blocks = (m + 2 * LANES - 1) / (2 * LANES);
        float[] xT = new float[blocks * k * 2 * LANES];
        device.parallelFor(m, i -> {
            int base = i / (2 * LANES) * k * 2 * LANES + i % (2 * LANES);
            for (int kk = 0; kk < k; kk++) {
                xT[base + kk * 2 * LANES] = act[i * k + kk];
            }
        });
        return xT;
    }

    /** tile[r * 32 + l] = sum over kk of w[w0 + r * k + kk] * the block's row l at kk, for 8 weight rows and 32 activation rows. */
    private static void tile8x32(float[] xT, int x0At, float[] w, int w0, int k, float[] tile) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        FloatVector a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00, a61 = a00, a70 = a00, a71 = a00;
        int k1 = w0 + k, k2 = w0 + 2 * k, k3 = w0 + 3 * k, k4 = w0 + 4 * k, k5 = w0 + 5 * k, k6 = w0 + 6 * k, k7 = w0 + 7 * k;
        for (int kk = 0, x = x0At; kk < k; kk++, x += 2 * LANES) {
            FloatVector x0 = FloatVector.fromArray(F, xT, x), x1 = FloatVector.fromArray(F, xT, x + LANES);
            FloatVector b = FloatVector.broadcast(F, w[w0 + kk]);
            a00 = b.fma(x0, a00);
            a01 = b.fma(x1, a01);
            b = FloatVector.broadcast(F, w[k1 + kk]);
            a10 = b.fma(x0, a10);
            a11 = b.fma(x1, a11);
            b = FloatVector.broadcast(F, w[k2 + kk]);
            a20 = b.fma(x0, a20);
            a21 = b.fma(x1, a21);
            b = FloatVector.broadcast(F, w[k3 + kk]);
            a30 = b.fma(x0, a30);
            a31 = b.fma(x1, a31);
            b = FloatVector.broadcast(F, w[k4 + kk]);
            a40 = b.fma(x0, a40);
            a41 = b.fma(x1, a41);
            b = FloatVector.broadcast(F, w[k5 + kk]);
            a50 = b.fma(x0, a50);
            a51 = b.fma(x1, a51);
            b = FloatVector.broadcast(F, w[k6 + kk]);
            a60 = b.fma(x0, a60);
            a61 = b.fma(x1, a61);
            b = FloatVector.broadcast(F, w[k7 + kk]);
            a70 = b.fma(x0, a70);
            a71 = b.fma(x1, a71);
        }
        // no array of vectors: it would box them, and C2 would no longer keep them in registers
        a00.intoArray(tile, 0);
        a01.intoArray(tile, LANES);
        a10.intoArray(tile, 2 * LANES);
        a11.intoArray(tile, 3 * LANES);
        a20.intoArray(tile, 4 * LANES);
        a21.intoArray(tile, 5 * LANES);
        a30.intoArray(tile, 6 * LANES);
        a31.intoArray(tile, 7 * LANES);
        a40.intoArray(tile, 8 * LANES);
        a41.intoArray(tile, 9 * LANES);
        a50.intoArray(tile, 10 * LANES);
        a51.intoArray(tile, 11 * LANES);
        a60.intoArray(tile, 12 * LANES);
        a61.intoArray(tile, 13 * LANES);
        a70.intoArray(tile, 14 * LANES);
        a71.intoArray(tile, 15 * LANES);
    }

    /** {@link #tile8x32} for the last 16 activation rows: tile[r * 32 + l], l < 16. */
    private static void tile8x16(float[] xT, int x0At, float[] w, int w0, int k, float[] tile) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int kk = 0, x = x0At; kk < k; kk++, x += 2 * LANES) {
            FloatVector x0 = FloatVector.fromArray(F, xT, x);
            a0 = FloatVector.broadcast(F, w[w0 + kk]).fma(x0, a0);
            a1 = FloatVector.broadcast(F, w[w0 + k + kk]).fma(x0, a1);
            a2 = FloatVector.broadcast(F, w[w0 + 2 * k + kk]).fma(x0, a2);
            a3 = FloatVector.broadcast(F, w[w0 + 3 * k + kk]).fma(x0, a3);
            a4 = FloatVector.broadcast(F, w[w0 + 4 * k + kk]).fma(x0, a4);
            a5 = FloatVector.broadcast(F, w[w0 + 5 * k + kk]).fma(x0, a5);
            a6 = FloatVector.broadcast(F, w[w0 + 6 * k + kk]).fma(x0, a6);
            a7 = FloatVector.broadcast(F, w[w0 + 7 * k + kk]).fma(x0, a7);
        }
        a0.intoArray(tile, 0);
        a1.intoArray(tile, 2 * LANES);
        a2.intoArray(tile, 4 * LANES);
        a3.intoArray(tile, 6 * LANES);
        a4.intoArray(tile, 8 * LANES);
        a5.intoArray(tile, 10 * LANES);
        a6.intoArray(tile, 12 * LANES);
        a7.intoArray(tile, 14 * LANES);
    }
}
