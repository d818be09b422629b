package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;

/**
 * The linear layer on tensor cores: {@code out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias[n])} with w in
 * bf16 or f16 and a in f32 (rounded to w's type as it is loaded, as cuBLAS serving does) or in
 * w's type. A work-group of four warps computes a 128 x 128 tile of out, each warp 64 x 64 of it
 * as 4 x 8 MMA tiles (CUTLASS's usual shape for mma.sync: 16 matrix loads feed 64 MMAs a k-step, where
 * eight warps of 64 x 32 needed 12 for 32; not yet timed on a GPU, the eight-warp form ran at 37.5 % of
 * cuBLAS at 4096^3 on an H100), walking k in steps of 32 through {@link #STAGES} stages of local tiles: the
 * next steps' tiles load (asynchronous copies for 16-bit a) while the tensor cores work on this one.
 *
 * <p>One body, three entry points: the weight type picks the MMA instruction, and as a constant it
 * keeps that choice out of the inner loop. Int8 weights (per-output-channel scales, {@link Matmul#quantizeInt8})
 * run as bf16: their codes are exact in bf16, widened as they are loaded, and the scale multiplies each
 * column's sum once in the epilogue, so the weights cross memory at one byte each.
 */
public final class TensorCoreMatmul {
    /** Rows (of a) and columns (rows of w) of a work-group's output tile. */
    public static final int TILE = 128;
    /** k per step. */
    public static final int STEP = 32;
    /** Work-items of a group: four warps, 2 along m by 2 along n. */
    public static final int LOCAL = 128;
    /** Ints per local tile row: 32 halves and 8 of padding, so that ldmatrix's 8 rows fall on distinct banks. */
    private static final int ROW = STEP / 2 + 4;
    private static final int STAGE = TILE * ROW;
    /** Steps of k in flight: the tiles of three steps load while the tensor cores work on a fourth (80 KB of local memory). */
    static final int STAGES = 4;
    /** Ints per row of half the output tile in local memory at the end (128 floats and 4 of padding; 64 rows fit a stage area). */
    private static final int OUT_ROW = TILE + 4;

    private TensorCoreMatmul() {
    }

    public static void matmulBf16(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias, int m,
            int n, int k, boolean aFloat, int kSplits) {
        matmul(ctx, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, true);
    }

    public static void matmulF16(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias, int m,
            int n, int k, boolean aFloat, int kSplits) {
        matmul(ctx, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, false);
    }

    /** Int8 weights with one scale per output column: out = (a · codesᵀ) * scales[col] (+ bias), a rounded to bf16. */
    public static void matmulInt8(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits) {
        matmul(ctx, out, a, w, true, scales, bias, hasBias, m, n, k, aFloat, kSplits, true);
    }

    /**
     * Group index {@code (tileRow * ceil(n / 128) + tileColumn) * kSplits + split}. k must be a
     * multiple of 8 (16-byte chunks of w's rows); rows and columns past m and n are zero in the tiles
     * and not written. With {@code kSplits} > 1 (split-k: a decode-sized m has too few tiles to fill
     * the device) each group takes an even share of k's steps and adds its partial sums into
     * {@code out}, which must hold zeros; the bias comes with split 0's.
     */
    private static void matmul(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, boolean int8, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits, boolean bf16) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] af = new int[16];
        int[] bf = new int[32];
        float[] acc = new float[128];
        float[] x = new float[8];
        float[] sums = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int warpRow = (warp / 2) * 64;
        int warpCol = (warp % 2) * 64;
        int tilesN = (n + TILE - 1) / TILE;
        int split = ctx.groupIdx % kSplits;
        int tileIndex = ctx.groupIdx / kSplits;
        int row0 = (tileIndex / tilesN) * TILE;
        int col0 = (tileIndex % tilesN) * TILE;
        int allSteps = (k + STEP - 1) / STEP;
        int share = (allSteps + kSplits - 1) / kSplits;
        int firstStep = split * share;
        int steps = Math.max(0, Math.min(allSteps, firstStep + share) - firstStep);
        // a group of copies is committed for every step, also past the last one, so that "all but the
        // newest STAGES - 2 groups are done" always means "this step's tiles are in"
        for (int p = 0; p < STAGES - 1; p++) {
            if (p < steps) {
                loadStage(ctx, aTile, wTile, p * STAGE, a, w, int8, m, n, k, row0, col0, (firstStep + p) * STEP, aFloat, bf16, x);
            }
            ctx.copyAsyncCommit();
        }
        for (int step = 0; step < steps; step++) {
            int stage = (step % STAGES) * STAGE;
            ctx.copyAsyncWait(STAGES - 2);
            ctx.localBarrier(); // this step's tiles are in; every warp is done with the last step's stage, refilled next
            int ahead = step + STAGES - 1;
            if (ahead < steps) {
                loadStage(ctx, aTile, wTile, (ahead % STAGES) * STAGE, a, w, int8, m, n, k, row0, col0, (firstStep + ahead) * STEP, aFloat,
                        bf16, x);
            }
            ctx.copyAsyncCommit();
            for (int ni = 0; ni < 8; ni++) {
                ctx.loadMatrixB(bf, 4 * ni, wTile, stage + (warpCol + 8 * ni) * ROW, ROW);
            }
            for (int ks = 0; ks < 2; ks++) {
                for (int mi = 0; mi < 4; mi++) {
                    ctx.loadMatrixA(af, 4 * mi, aTile, stage + (warpRow + 16 * mi) * ROW + 8 * ks, ROW);
                }
                for (int mi = 0; mi < 4; mi++) {
                    for (int ni = 0; ni < 8; ni++) {
                        if (bf16) {
                            ctx.mmaBf16(acc, 4 * (8 * mi + ni), af, 4 * mi, bf, 4 * ni + 2 * ks);
                        } else {
                            ctx.mmaF16(acc, 4 * (8 * mi + ni), af, 4 * mi, bf, 4 * ni + 2 * ks);
                        }
                    }
                }
            }
        }
        // the accumulators go through local memory, 64 rows at a time (the stages are free now), and each work-item
        // writes four columns of a row (TileStores)
        ctx.copyAsyncWait(0);
        ctx.localBarrier();
        int g = lane / 4;
        int t = lane % 4;
        boolean withBias = hasBias && split == 0;
        for (int half = 0; half < 2; half++) {
            if (warp / 2 == half) {
                for (int mi = 0; mi < 4; mi++) {
                    for (int ni = 0; ni < 8; ni++) {
                        for (int h = 0; h < 2; h++) {
                            int at = (16 * mi + g + 8 * h) * OUT_ROW + warpCol + 8 * ni + 2 * t;
                            aTile[at] = Float.floatToRawIntBits(acc[4 * (8 * mi + ni) + 2 * h]);
                            aTile[at + 1] = Float.floatToRawIntBits(acc[4 * (8 * mi + ni) + 2 * h + 1]);
                        }
                    }
                }
            }
            ctx.localBarrier();
            for (int i = ctx.localIdx; i < 64 * TILE / 4; i += LOCAL) {
                int r = i / (TILE / 4);
                int c = 4 * (i % (TILE / 4));
                TileStores.storeQuad(ctx, out, aTile, r * OUT_ROW + c, sums, int8, scales, withBias, bias, row0 + 64 * half + r, col0 + c, m, n,
                        kSplits);
            }
            ctx.localBarrier();
        }
    }

    /**
     * Fills one stage: the 128 x 32 tiles of a (rows row0..) and w (rows col0..) from column k0, in
     * 16-byte chunks of 8 values, two of each tile per work-item. 16-bit a and w go by asynchronous
     * copy; f32 a is rounded to the weights' type on the way, int8 codes widened to bf16 (exactly);
     * chunks past m, n or k are zero.
     */
    private static void loadStage(KernelContext ctx, int[] aTile, int[] wTile, int stage, NativeArray a, NativeArray w, boolean int8, int m,
            int n, int k, int row0, int col0, int k0, boolean aFloat, boolean bf16, float[] x) {
        for (int i = ctx.localIdx; i < TILE * 4; i += LOCAL) {
            int r = i / 4;
            int c = i % 4;
            int at = stage + r * ROW + 4 * c;
            int kk = k0 + 8 * c;
            if (row0 + r < m && kk < k) {
                if (aFloat) {
                    a.getFloats((row0 + r) * k + kk, x, 0, 8);
                    for (int j = 0; j < 4; j++) {
                        aTile[at + j] = bf16 ? KMath.packBf16x2(x[2 * j], x[2 * j + 1]) : KMath.packHalf2(x[2 * j], x[2 * j + 1]);
                    }
                } else {
                    ctx.copyAsync(aTile, at, a, (row0 + r) * k + kk);
                }
            } else {
                for (int j = 0; j < 4; j++) {
                    aTile[at + j] = 0;
                }
            }
            if (col0 + r < n && kk < k && int8) {
                w.getFloats((col0 + r) * k + kk, x, 0, 8);
                for (int j = 0; j < 4; j++) {
                    wTile[at + j] = KMath.packBf16x2(x[2 * j], x[2 * j + 1]);
                }
            } else if (col0 + r < n && kk < k) {
                ctx.copyAsync(wTile, at, w, (col0 + r) * k + kk);
            } else {
                for (int j = 0; j < 4; j++) {
                    wTile[at + j] = 0;
                }
            }
        }
    }
}
