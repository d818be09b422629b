package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Grid;

/**
 * The linear layer on tensor cores: {@code out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias[n])} with w in
 * bf16 or f16 and a in f32 (rounded to w's type as it is loaded, as cuBLAS serving does) or in
 * w's type. A work-group of four warps computes a 128 x 128 tile of out, each warp 64 x 64 of it
 * as 4 x 8 MMA tiles (CUTLASS's usual shape for mma.sync: 16 matrix loads feed 64 MMAs a k-step, where
 * eight warps of 64 x 32 needed 12 for 32; at 4096^3 bf16 245 TFLOP/s on an H200, 37.4 % of cuBLAS, and 218.7 on
 * an H100, 32.7 %), walking k in steps of 32 through {@link #STAGES} stages of local tiles: the
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
    /** Columns of a wide tile ({@link #matmulBf16Wide}): 128 x 256, eight warps. */
    public static final int WIDE_TILE = 256;
    /** k per step. */
    public static final int STEP = 32;
    /** Work-items of a group: four warps, 2 along m by 2 along n. */
    public static final int LOCAL = 128;
    /** Work-items of a wide group: eight warps, 2 along m by 4 along n. */
    public static final int WIDE_LOCAL = 256;
    /** Ints per local tile row: 32 halves and 8 of padding, so that ldmatrix's 8 rows fall on distinct banks. */
    private static final int ROW = STEP / 2 + 4;
    private static final int STAGE = TILE * ROW;
    /** Steps of k in flight: the tiles of three steps load while the tensor cores work on a fourth (80 KB of local memory; wide: 120 KB). */
    static final int STAGES = 4;

    private TensorCoreMatmul() {
    }

    public static void matmulBf16(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias, int m,
            int n, int k, boolean aFloat, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        matmul(ctx, aTile, wTile, TILE, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, true);
    }

    public static void matmulF16(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias, int m,
            int n, int k, boolean aFloat, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        matmul(ctx, aTile, wTile, TILE, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, false);
    }

    /** Int8 weights with one scale per output column: out = (a · codesᵀ) * scales[col] (+ bias), a rounded to bf16. */
    public static void matmulInt8(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        matmul(ctx, aTile, wTile, TILE, out, a, w, true, scales, bias, hasBias, m, n, k, aFloat, kSplits, true);
    }

    /**
     * {@link #matmulBf16} on 128 x 256 tiles, eight warps of 64 x 64 ({@link #WIDE_LOCAL}; grid: {@link #grid} with
     * wide). Each k-step a tile's 32 x (128 + 256) operands feed 128 x 256 outputs, 85 flops a byte against the
     * narrow tile's 64: at 128 x 128 the GEMM moved some 3.8 TB/s from the L2 into the SMs at its 245 TFLOP/s on an
     * H200 (37 % of cuBLAS), about what the L2 gives (cuBLAS, at 656 TFLOP/s on larger tiles with Hopper's
     * multicast, moves about the same). Tuning {@code matmul.tc_wide}; off: on an H100 it ran at the narrow tiles' speed
     * (218.3 vs 218.7 TFLOP/s, session 14), so the L2 is not the narrow kernel's limit.
     */
    public static void matmulBf16Wide(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias,
            int m, int n, int k, boolean aFloat, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * WIDE_TILE * ROW);
        matmul(ctx, aTile, wTile, WIDE_TILE, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, true);
    }

    /** {@link #matmulF16} on 128 x 256 tiles ({@link #matmulBf16Wide}). */
    public static void matmulF16Wide(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias,
            int m, int n, int k, boolean aFloat, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * WIDE_TILE * ROW);
        matmul(ctx, aTile, wTile, WIDE_TILE, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, false);
    }

    /** {@link #matmulInt8} on 128 x 256 tiles ({@link #matmulBf16Wide}). */
    public static void matmulInt8Wide(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * WIDE_TILE * ROW);
        matmul(ctx, aTile, wTile, WIDE_TILE, out, a, w, true, scales, bias, hasBias, m, n, k, aFloat, kSplits, true);
    }

    /** Output tiles of out[m, n]: 128 x 128, or 128 x 256 when {@code wide}. */
    static long tiles(int m, int n, boolean wide) {
        int tileN = wide ? WIDE_TILE : TILE;
        return (long) ((m + TILE - 1) / TILE) * ((n + tileN - 1) / tileN);
    }

    /** The kernels' grid: a group ({@link #LOCAL}, or {@link #WIDE_LOCAL} when {@code wide}) per output tile and split of k. */
    public static Grid grid(int m, int n, int kSplits, boolean wide) {
        return Grid.groups(tiles(m, n, wide) * kSplits, wide ? WIDE_LOCAL : LOCAL);
    }

    /**
     * Group index {@code (tileRow * ceil(n / tileN) + tileColumn) * kSplits + split}. k must be a
     * multiple of 8 (16-byte chunks of w's rows); rows and columns past m and n are zero in the tiles
     * and not written. With {@code kSplits} > 1 (split-k: a decode-sized m has too few tiles to fill
     * the device) each group takes an even share of k's steps and adds its partial sums into
     * {@code out}, which must hold zeros; the bias comes with split 0's. {@code tileN} (a constant of the entry
     * point) is 128 or 256: the work-group's warps are 2 along m by tileN / 64 along n, each 64 x 64 of out.
     */
    private static void matmul(KernelContext ctx, int[] aTile, int[] wTile, int tileN, FloatArray out, NativeArray a, NativeArray w, boolean int8,
            FloatArray scales, FloatArray bias, boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits, boolean bf16) {
        int[] af = new int[16];
        int[] bf = new int[32];
        float[] acc = new float[128];
        float[] x = new float[8];
        float[] sums = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int warpsN = tileN / 64;
        int warpRow = (warp / warpsN) * 64;
        int warpCol = (warp % warpsN) * 64;
        int wStage = tileN * ROW;
        int tilesN = (n + tileN - 1) / tileN;
        int split = ctx.groupIdx % kSplits;
        int tileIndex = ctx.groupIdx / kSplits;
        int row0 = (tileIndex / tilesN) * TILE;
        int col0 = (tileIndex % tilesN) * tileN;
        int allSteps = (k + STEP - 1) / STEP;
        int share = (allSteps + kSplits - 1) / kSplits;
        int firstStep = split * share;
        int steps = Math.max(0, Math.min(allSteps, firstStep + share) - firstStep);
        // a group of copies is committed for every step, also past the last one, so that "all but the
        // newest STAGES - 2 groups are done" always means "this step's tiles are in"
        for (int p = 0; p < STAGES - 1; p++) {
            if (p < steps) {
                loadStage(ctx, aTile, wTile, p * STAGE, p * wStage, tileN, a, w, int8, m, n, k, row0, col0, (firstStep + p) * STEP, aFloat, bf16, x);
            }
            ctx.copyAsyncCommit();
        }
        for (int step = 0; step < steps; step++) {
            int aAt = (step % STAGES) * STAGE;
            int wAt = (step % STAGES) * wStage;
            ctx.copyAsyncWait(STAGES - 2);
            ctx.localBarrier(); // this step's tiles are in; every warp is done with the last step's stage, refilled next
            int ahead = step + STAGES - 1;
            if (ahead < steps) {
                loadStage(ctx, aTile, wTile, (ahead % STAGES) * STAGE, (ahead % STAGES) * wStage, tileN, a, w, int8, m, n, k, row0, col0,
                        (firstStep + ahead) * STEP, aFloat, bf16, x);
            }
            ctx.copyAsyncCommit();
            for (int ni = 0; ni < 8; ni++) {
                ctx.loadMatrixB(bf, 4 * ni, wTile, wAt + (warpCol + 8 * ni) * ROW, ROW);
            }
            for (int ks = 0; ks < 2; ks++) {
                for (int mi = 0; mi < 4; mi++) {
                    ctx.loadMatrixA(af, 4 * mi, aTile, aAt + (warpRow + 16 * mi) * ROW + 8 * ks, ROW);
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
        // the accumulators go through local memory (the A stages are free now), passRows rows of the tile at a time, and
        // each work-item writes four columns of a row (TileStores); a warp's 64 rows are two runs of 32 (mi 0-1, 2-3)
        ctx.copyAsyncWait(0);
        ctx.localBarrier();
        int g = lane / 4;
        int t = lane % 4;
        boolean withBias = hasBias && split == 0;
        int outRow = tileN + 4;
        int passRows = tileN == WIDE_TILE ? 32 : 64; // what fits the A stages: 64 x 132 or 32 x 260 floats of 10,240
        for (int pass = 0; pass < TILE / passRows; pass++) {
            int first = pass * passRows;
            if (warpRow / passRows == pass) {
                stageRows(aTile, acc, 0, (warpRow - first) * outRow + warpCol, outRow, g, t);
            }
            if ((warpRow + 32) / passRows == pass) {
                stageRows(aTile, acc, 2, (warpRow + 32 - first) * outRow + warpCol, outRow, g, t);
            }
            ctx.localBarrier();
            for (int i = ctx.localIdx; i < passRows * tileN / 4; i += ctx.localGroupSizeX) {
                int r = i / (tileN / 4);
                int c = 4 * (i % (tileN / 4));
                TileStores.storeQuad(ctx, out, aTile, r * outRow + c, sums, int8, scales, withBias, bias, row0 + first + r, col0 + c, m, n,
                        kSplits);
            }
            ctx.localBarrier();
        }
    }

    /**
     * A warp's accumulators of its MMA rows firstMi and firstMi + 1 (32 rows of out, a constant so that the accumulators
     * are indexed by constants and stay in registers) into tile[at..] as float bits, rows outRow ints apart.
     */
    private static void stageRows(int[] tile, float[] acc, int firstMi, int at, int outRow, int g, int t) {
        for (int mi = 0; mi < 2; mi++) {
            for (int ni = 0; ni < 8; ni++) {
                for (int h = 0; h < 2; h++) {
                    int to = at + (16 * mi + g + 8 * h) * outRow + 8 * ni + 2 * t;
                    tile[to] = Float.floatToRawIntBits(acc[4 * (8 * (firstMi + mi) + ni) + 2 * h]);
                    tile[to + 1] = Float.floatToRawIntBits(acc[4 * (8 * (firstMi + mi) + ni) + 2 * h + 1]);
                }
            }
        }
    }

    /**
     * Fills one stage: the 128 x 32 tile of a (rows row0..) at aAt and the tileN x 32 tile of w (rows col0..) at wAt,
     * from column k0, in 16-byte chunks of 8 values. 16-bit a and w go by asynchronous copy; f32 a is rounded to the
     * weights' type on the way, int8 codes widened to bf16 (exactly); chunks past m, n or k are zero.
     */
    private static void loadStage(KernelContext ctx, int[] aTile, int[] wTile, int aAt, int wAt, int tileN, NativeArray a, NativeArray w,
            boolean int8, int m, int n, int k, int row0, int col0, int k0, boolean aFloat, boolean bf16, float[] x) {
        for (int i = ctx.localIdx; i < TILE * 4; i += ctx.localGroupSizeX) {
            int r = i / 4;
            int c = i % 4;
            int at = aAt + r * ROW + 4 * c;
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
        }
        for (int i = ctx.localIdx; i < tileN * 4; i += ctx.localGroupSizeX) {
            int r = i / 4;
            int c = i % 4;
            int at = wAt + r * ROW + 4 * c;
            int kk = k0 + 8 * c;
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
