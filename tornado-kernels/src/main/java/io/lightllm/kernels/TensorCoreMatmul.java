package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
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
 * <p>One body: the weight type picks the MMA instruction, and as a constant bound by the kernels' refs it
 * keeps that choice out of the inner loop. Int8 weights (per-output-channel scales, {@link Matmul#quantizeInt8})
 * run as bf16: their codes are exact in bf16, widened as they are loaded, and the scale multiplies each
 * column's sum once in the epilogue, so the weights cross memory at one byte each.
 */
public final class TensorCoreMatmul {
    /** Rows (of a) and columns (rows of w) of a work-group's output tile. */
    public static final int TILE = 128;
    /** Columns of a wide tile ({@link #matmulHalves}): 128 x 256, eight warps. */
    public static final int WIDE_TILE = 256;
    /** k per step. */
    public static final int STEP = 32;
    /** Work-items of a group: four warps, 2 along m by 2 along n. */
    public static final int LOCAL = 128;
    /** Work-items of a wide group: eight warps, 2 along m by 4 along n. */
    public static final int WIDE_LOCAL = 256;
    /** Ints of padding a local tile row has past its depth / 2 (halves in pairs), so that ldmatrix's 8 rows fall on distinct banks. */
    private static final int ROW_PAD = 4;
    /** Steps of k in flight: the tiles of three steps load while the tensor cores work on a fourth (80 KB of local memory; wide: 120 KB). */
    static final int STAGES = 4;
    /**
     * k per step of the deep GEMM ({@link #matmulHalves}): twice the MMAs between two barriers, through
     * {@link #DEEP_STAGES} stages of 128 x 64 tiles (108 KB of local memory, still two groups a multiprocessor).
     */
    public static final int DEEP_STEP = 64;
    static final int DEEP_STAGES = 3;
    /** Most chunks of a's tile a work-item loads a stage: 128 rows of eight 16-byte chunks (k 64) over 128 items. */
    private static final int MAX_A_LOADS = TILE * (DEEP_STEP / 8) / LOCAL;

    /** Chunks of a's tile a work-item of a 128-item group loads a stage at {@code depth} (a constant of the entry): 4 or 8. */
    private static int aLoads(int depth) {
        return TILE * (depth / 8) / LOCAL;
    }

    private TensorCoreMatmul() {
    }

    /**
     * out = a · wᵀ (+ bias) for bf16 or f16 weights ({@code bf16}) on tiles of 128 x {@code tileN} (128, or 256: eight warps
     * of 64 x 64, {@link #WIDE_LOCAL}), k walked {@code depth} (32, or 64: "deep") at a time through {@code stages} stages;
     * a kernel whose refs bind the last four ({@link Matmul#MATMUL_TC_BF16} and its kin). Wide tiles: each k-step a tile's
     * 32 x (128 + 256) operands feed 128 x 256 outputs, 85 flops a byte against the narrow tile's 64 (at 128 x 128 the
     * GEMM moved some 3.8 TB/s from the L2 into the SMs at its 245 TFLOP/s on an H200; on an H100 the wide tiles ran at
     * the narrow ones' speed, 218.3 vs 218.7 TFLOP/s, session 14: tuning {@code matmul.tc_wide}, off). Deep steps: each
     * barrier and wait covers 128 MMAs a warp instead of 64 (tuning {@code matmul.tc_deep}).
     */
    public static void matmulHalves(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias, int m,
            int n, int k, boolean aFloat, int kSplits, int tileN, int depth, int stages, boolean bf16) {
        matmul(ctx, tileN, depth, stages, out, a, w, false, bias, bias, hasBias, m, n, k, aFloat, kSplits, bf16);
    }

    /**
     * Int8 weights with one scale per output column: out = (a · codesᵀ) * scales[col] (+ bias), a rounded to bf16, on tiles
     * of 128 x {@code tileN} (bound by the refs, as {@link #matmulHalves}'s).
     */
    public static void matmulInt8(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits, int tileN) {
        matmul(ctx, tileN, STEP, STAGES, out, a, w, true, scales, bias, hasBias, m, n, k, aFloat, kSplits, true);
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
    private static void matmul(KernelContext ctx, int tileN, int depth, int stages, FloatArray out, NativeArray a,
            NativeArray w, boolean int8, FloatArray scales, FloatArray bias, boolean hasBias, int m, int n, int k, boolean aFloat, int kSplits,
            boolean bf16) {
        // sized by the entry's constants (tileN, depth, stages): 80 KB of local memory, wide 120 KB, deep 108 KB
        int[] aTile = ctx.allocateIntLocalArray(stages * TILE * (depth / 2 + ROW_PAD));
        int[] wTile = ctx.allocateIntLocalArray(stages * tileN * (depth / 2 + ROW_PAD));
        int[] aRows = new int[MAX_A_LOADS];
        float[] acc = new float[128];
        int tilesN = (n + tileN - 1) / tileN;
        int split = ctx.groupIdx % kSplits;
        int tileIndex = ctx.groupIdx / kSplits;
        int row0 = (tileIndex / tilesN) * TILE;
        int col0 = (tileIndex % tilesN) * tileN;
        int allSteps = (k + depth - 1) / depth;
        int share = (allSteps + kSplits - 1) / kSplits;
        int firstStep = split * share;
        int steps = Math.max(0, Math.min(allSteps, firstStep + share) - firstStep);
        for (int j = 0; j < aLoads(depth); j++) {
            int r = (ctx.localIdx + j * ctx.localGroupSizeX) / (depth / 8);
            aRows[j] = r < TILE && row0 + r < m ? (row0 + r) * k : -1;
        }
        accumulate(ctx, aTile, wTile, tileN, depth, stages, acc, a, aRows, w, 0, k, int8, n, k, col0, firstStep, steps, aFloat, bf16);
        store(ctx, aTile, acc, tileN, out, int8, scales, hasBias && split == 0, bias, row0, m, col0, n, kSplits, -1);
    }

    /** The grid of {@link #expertMatmul}: a group per (expert, tile of 128 rows it could get, tile of 128 columns). */
    public static Grid expertGrid(int experts, int tilesPerExpert, int n) {
        return Grid.groups((long) experts * tilesPerExpert * ((n + TILE - 1) / TILE), LOCAL);
    }

    /**
     * The expert matmuls of a mixture of experts on tensor cores ({@link Moe}): for each expert e and each of its
     * sorted positions p = offsets[e] .. offsets[e] + counts[e], out[p, :] = a[row, :] · w[e]ᵀ, where expert e's row j of
     * w (k values) starts at {@code e * expertStride + j * rowStride}: stacked [E, n, k] (gate, up: n·k and k) or side by
     * side [n, E·k] (down: k and E·k, {@link Moe.Experts}); row is sorted[p] / rowDiv (the token of assignment sorted[p]: x feeding gate and up) or, with
     * rowDiv 0, p itself (the activations feeding down). With {@code gatedKind} >= 0 the epilogue reads the gate
     * projection already in out and writes activation(gate) times this product (the up projection) over it.
     * Group index {@code (e * tilesPerExpert + rowTile) * ceil(n / 128) + column tile}; a row tile past the expert's
     * count returns at once, so the grid (every token in every expert) is fixed and a decode step can be recorded.
     * a is f32, rounded to the weights' type (bf16 or f16: {@code bf16}, bound by the refs) as it is loaded.
     */
    public static void expertMatmul(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, IntArray sorted,
            IntArray counts, IntArray offsets, int rowDiv, int gatedKind, int n, int k, int expertStride, int rowStride, int tilesPerExpert,
            boolean bf16) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * TILE * (STEP / 2 + ROW_PAD));
        int[] wTile = ctx.allocateIntLocalArray(STAGES * TILE * (STEP / 2 + ROW_PAD));
        int[] aRows = new int[MAX_A_LOADS];
        float[] acc = new float[128];
        int tilesN = (n + TILE - 1) / TILE;
        int e = ctx.groupIdx / (tilesPerExpert * tilesN);
        int first = ((ctx.groupIdx / tilesN) % tilesPerExpert) * TILE;
        int col0 = (ctx.groupIdx % tilesN) * TILE;
        int count = counts.get(e);
        if (first < count) { // the same for the whole group, so every item meets the same barriers
            int offset = offsets.get(e);
            for (int j = 0; j < aLoads(STEP); j++) {
                int r = (ctx.localIdx + j * ctx.localGroupSizeX) / (STEP / 8);
                int p = offset + first + r;
                aRows[j] = r < TILE && first + r < count ? (rowDiv > 0 ? sorted.get(p) / rowDiv : p) * k : -1;
            }
            accumulate(ctx, aTile, wTile, TILE, STEP, STAGES, acc, a, aRows, w, e * expertStride, rowStride, false, n, k, col0, 0, (k + STEP - 1) / STEP,
                    true, bf16);
            store(ctx, aTile, acc, TILE, out, false, out, false, out, offset + first, offset + count, col0, n, 1, gatedKind);
        }
    }

    /**
     * The main loop: {@code steps} steps of {@code depth} (32 or 64) k from {@code firstStep} into acc through {@code stages}
     * (4 or 3) stages, a warp's 64 x 64 of the tile (2 along m by tileN / 64 along n). Row j of the rows this work-item
     * loads of a starts at a[aRows[j]] (-1: zero rows), the tile's rows of w at w[wBase + (col0 + r) * k].
     */
    private static void accumulate(KernelContext ctx, int[] aTile, int[] wTile, int tileN, int depth, int stages, float[] acc, NativeArray a,
            int[] aRows, NativeArray w, int wBase, int wStride, boolean int8, int n, int k, int col0, int firstStep, int steps, boolean aFloat,
            boolean bf16) {
        int[] af = new int[16];
        int[] bf = new int[32];
        float[] x = new float[8];
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int warpsN = tileN / 64;
        int warpRow = (warp / warpsN) * 64;
        int warpCol = (warp % warpsN) * 64;
        int row = depth / 2 + ROW_PAD;
        int aStage = TILE * row;
        int wStage = tileN * row;
        // a group of copies is committed for every step, also past the last one, so that "all but the
        // newest stages - 2 groups are done" always means "this step's tiles are in"
        for (int p = 0; p < stages - 1; p++) {
            if (p < steps) {
                loadStage(ctx, aTile, wTile, p * aStage, p * wStage, tileN, depth, a, aRows, w, wBase, wStride, int8, n, k, col0, (firstStep + p) * depth,
                        aFloat, bf16, x);
            }
            ctx.copyAsyncCommit();
        }
        for (int step = 0; step < steps; step++) {
            int aAt = (step % stages) * aStage;
            int wAt = (step % stages) * wStage;
            if (stages == 4) { // the wait's count must be a literal
                ctx.copyAsyncWait(2);
            } else {
                ctx.copyAsyncWait(1);
            }
            ctx.localBarrier(); // this step's tiles are in; every warp is done with the last step's stage, refilled next
            int ahead = step + stages - 1;
            if (ahead < steps) {
                loadStage(ctx, aTile, wTile, (ahead % stages) * aStage, (ahead % stages) * wStage, tileN, depth, a, aRows, w, wBase, wStride, int8, n, k,
                        col0, (firstStep + ahead) * depth, aFloat, bf16, x);
            }
            ctx.copyAsyncCommit();
            for (int half = 0; half < depth / 32; half++) { // 32 k at a time: eight B fragments, then two k16 steps of A
                for (int ni = 0; ni < 8; ni++) {
                    ctx.loadMatrixB(bf, 4 * ni, wTile, wAt + (warpCol + 8 * ni) * row + 16 * half, row);
                }
                for (int ks = 0; ks < 2; ks++) {
                    for (int mi = 0; mi < 4; mi++) {
                        ctx.loadMatrixA(af, 4 * mi, aTile, aAt + (warpRow + 16 * mi) * row + 16 * half + 8 * ks, row);
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
        }
        ctx.copyAsyncWait(0);
        ctx.localBarrier();
    }

    /**
     * The epilogue: the accumulators go through local memory (the A stages are free now), passRows rows of the tile at a
     * time, and each work-item writes four columns of a row (TileStores); a warp's 64 rows are two runs of 32 (mi 0-1,
     * 2-3). Tile row r is row {@code rowBase + r} of out, written where below {@code rowEnd}.
     */
    private static void store(KernelContext ctx, int[] aTile, float[] acc, int tileN, FloatArray out, boolean int8, FloatArray scales,
            boolean withBias, FloatArray bias, int rowBase, int rowEnd, int col0, int n, int kSplits, int gatedKind) {
        float[] sums = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int warpsN = tileN / 64;
        int warpRow = (warp / warpsN) * 64;
        int warpCol = (warp % warpsN) * 64;
        int g = lane / 4;
        int t = lane % 4;
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
                TileStores.storeQuad(ctx, out, aTile, r * outRow + c, sums, int8, scales, withBias, bias, rowBase + first + r, col0 + c, rowEnd,
                        n, kSplits, gatedKind);
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
     * Fills one stage: the 128 x depth tile of a (this work-item's rows at aRows, as {@link #accumulate} says) at aAt and
     * the tileN x depth tile of w (rows col0.., from wBase) at wAt, from column k0, in 16-byte chunks of 8 values. 16-bit
     * a and w go by asynchronous copy; f32 a is rounded to the weights' type on the way, int8 codes widened to bf16
     * (exactly); chunks past the rows, n or k are zero.
     */
    private static void loadStage(KernelContext ctx, int[] aTile, int[] wTile, int aAt, int wAt, int tileN, int depth, NativeArray a, int[] aRows,
            NativeArray w, int wBase, int wStride, boolean int8, int n, int k, int col0, int k0, boolean aFloat, boolean bf16, float[] x) {
        int chunks = depth / 8;
        int row = depth / 2 + ROW_PAD;
        for (int j = 0; j < aLoads(depth); j++) {
            int i = ctx.localIdx + j * ctx.localGroupSizeX;
            int r = i / chunks;
            int c = i % chunks;
            int at = aAt + r * row + 4 * c;
            int kk = k0 + 8 * c;
            if (i < TILE * chunks && aRows[j] >= 0 && kk < k) {
                if (aFloat) {
                    a.getFloats(aRows[j] + kk, x, 0, 8);
                    for (int q = 0; q < 4; q++) {
                        aTile[at + q] = bf16 ? KMath.packBf16x2(x[2 * q], x[2 * q + 1]) : KMath.packHalf2(x[2 * q], x[2 * q + 1]);
                    }
                } else {
                    ctx.copyAsync(aTile, at, a, aRows[j] + kk);
                }
            } else if (i < TILE * chunks) {
                for (int q = 0; q < 4; q++) {
                    aTile[at + q] = 0;
                }
            }
        }
        for (int i = ctx.localIdx; i < tileN * chunks; i += ctx.localGroupSizeX) {
            int r = i / chunks;
            int c = i % chunks;
            int at = wAt + r * row + 4 * c;
            int kk = k0 + 8 * c;
            if (col0 + r < n && kk < k && int8) {
                w.getFloats(wBase + (col0 + r) * wStride + kk, x, 0, 8);
                for (int q = 0; q < 4; q++) {
                    wTile[at + q] = KMath.packBf16x2(x[2 * q], x[2 * q + 1]);
                }
            } else if (col0 + r < n && kk < k) {
                ctx.copyAsync(wTile, at, w, wBase + (col0 + r) * wStride + kk);
            } else {
                for (int q = 0; q < 4; q++) {
                    wTile[at + q] = 0;
                }
            }
        }
    }
}
