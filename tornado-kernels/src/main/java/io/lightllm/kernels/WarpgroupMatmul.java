package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Grid;

/**
 * The linear layer on Hopper's warpgroup MMA ({@link KernelContext#warpgroupMmaBf16}, PTX {@code wgmma}):
 * {@code out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias[n])}, a and w bf16. A work-group of two warpgroups (256 work-items)
 * computes a 128 x 256 tile of out, each warpgroup 64 x 256 of it with one m64n256k16 instruction per 16 of k, walking k
 * in steps of 64 through {@link #STAGES} stages of local tiles (192 KB) that asynchronous copies fill two steps ahead,
 * while the MMAs of the step before still run. The tiles are stored in the 128-byte swizzle (rows of 64 k, 16-byte
 * chunks permuted within 8-row atoms), so the instruction reads them straight from local memory without bank
 * conflicts: no fragment loads, and twice the tensor-core rate of {@link TensorCoreMatmul}'s {@code mma.sync} (which tops
 * out near 37 % of cuBLAS at 4096³). 4096³ on an H100 (2026-12-06): 584 TFLOP/s, 86.6 % of cuBLAS.
 *
 * <p>Where it runs: CUDA devices of compute capability 9.0, bf16 weights and 16-bit activations, k a multiple of 8, the
 * tuning {@code matmul.tc_warpgroup} (see {@link Matmul#launchTensorCores}). Each output is one sum over k in the same
 * order whatever m, so it is batch-invariant by itself; the launcher still keeps it out under {@link BatchInvariance},
 * since small m go to the other kernel.
 */
public final class WarpgroupMatmul {
    /** Rows (of a) and columns (rows of w) of a work-group's output tile. */
    public static final int TILE_M = 128;
    public static final int TILE_N = 256;
    /** k per step: four MMAs of 16. */
    static final int STEP = 64;
    /** Work-items of a group: two warpgroups, 64 rows each. */
    public static final int LOCAL = 2 * KernelContext.WARPGROUP_SIZE;
    static final int STAGES = 4;
    /** Steps whose copies are in flight ahead of the one computed: two, so that the MMAs of the last step can still run. */
    static final int AHEAD = STAGES - 2;
    /** Ints between 8-row atoms of a tile: 8 rows of 64 k (128 bytes). */
    private static final int BAND = 8 * 32;
    private static final int A_STAGE = TILE_M / 8 * BAND;
    private static final int W_STAGE = TILE_N / 8 * BAND;
    /** 16-byte chunks a work-item copies a stage: 8 a row. */
    private static final int A_LOADS = TILE_M * (STEP / 8) / LOCAL;
    private static final int W_LOADS = TILE_N * (STEP / 8) / LOCAL;

    private WarpgroupMatmul() {
    }

    /** A group per 128 x 256 tile of out. */
    public static Grid grid(int m, int n) {
        return Grid.groups((long) ((m + TILE_M - 1) / TILE_M) * ((n + TILE_N - 1) / TILE_N), LOCAL);
    }

    public static void matmulBf16(KernelContext ctx, FloatArray out, NativeArray a, NativeArray w, FloatArray bias, boolean hasBias, int m,
            int n, int k) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * A_STAGE);
        int[] wTile = ctx.allocateIntLocalArray(STAGES * W_STAGE);
        float[] acc = new float[TILE_N / 2];
        int tilesN = (n + TILE_N - 1) / TILE_N;
        int row0 = (ctx.groupIdx / tilesN) * TILE_M;
        int col0 = (ctx.groupIdx % tilesN) * TILE_N;
        int warpgroup = ctx.localIdx / KernelContext.WARPGROUP_SIZE;
        int steps = (k + STEP - 1) / STEP;
        // each item copies chunk c of rows rBase, rBase + 32, ..: eight consecutive items take one row's eight chunks, so
        // each eighth of a warp reads 128 contiguous bytes (one request of four sectors; with a chunk of eight rows each,
        // every sector was fetched twice, half used) and writes one 128-byte row of local memory (no bank conflicts). Rows
        // past m or n read the last row instead: they only feed outputs that are not stored
        int c = ctx.localIdx % 8;
        int rBase = ctx.localIdx / 8;
        int to = swizzle128(rBase * 32 + c * 4);
        int[] aRows = new int[A_LOADS];
        int[] wRows = new int[W_LOADS];
        for (int j = 0; j < A_LOADS; j++) {
            aRows[j] = Math.min(row0 + rBase + 32 * j, m - 1) * k + 8 * c;
        }
        for (int j = 0; j < W_LOADS; j++) {
            wRows[j] = Math.min(col0 + rBase + 32 * j, n - 1) * k + 8 * c;
        }
        // copies run AHEAD steps ahead and one step's MMAs stay in flight while the next are issued: the stage a step
        // refills was last read by the MMAs of step - 2, which every warpgroup has waited for before this step's barrier.
        // A group of copies is committed for every step, also past the last one, so that "all but the newest
        // AHEAD - 1 groups are done" always means "this step's tiles are in"
        for (int p = 0; p < AHEAD; p++) {
            if (p < steps) {
                loadStage(ctx, aTile, p * A_STAGE + to, a, aRows, A_LOADS, k, p * STEP, c);
                loadStage(ctx, wTile, p * W_STAGE + to, w, wRows, W_LOADS, k, p * STEP, c);
            }
            ctx.copyAsyncCommit();
        }
        for (int step = 0; step < steps; step++) {
            int stage = step % STAGES;
            ctx.copyAsyncWait(AHEAD - 1);
            ctx.warpgroupFenceLocal(); // this item's copies (and zero stores) visible to the MMAs
            ctx.localBarrier(); // everyone's; and both warpgroups are done with the MMAs of step - 2
            int ahead = step + AHEAD;
            if (ahead < steps) {
                loadStage(ctx, aTile, (ahead % STAGES) * A_STAGE + to, a, aRows, A_LOADS, k, ahead * STEP, c);
                loadStage(ctx, wTile, (ahead % STAGES) * W_STAGE + to, w, wRows, W_LOADS, k, ahead * STEP, c);
            }
            ctx.copyAsyncCommit();
            int aAt = stage * A_STAGE + warpgroup * (64 / 8) * BAND;
            int wAt = stage * W_STAGE;
            ctx.warpgroupArrive(acc);
            for (int s = 0; s < STEP / 16; s++) {
                ctx.warpgroupMmaBf16(acc, aTile, aAt + 8 * s, BAND, wTile, wAt + 8 * s, BAND, TILE_N);
            }
            ctx.warpgroupCommit();
            ctx.warpgroupWait(acc, 1); // this step's MMAs may run on; the last step's are done
        }
        ctx.warpgroupWait(acc, 0);
        store(ctx, wTile, acc, out, bias, hasBias, row0, m, col0, n);
    }

    /**
     * This item's chunks of one stage: chunk c (k0 + 8c..) of its rows (rows[j], where they start in src, plus k0), into a tile
     * in the 128-byte swizzle ({@link KernelContext#warpgroupMmaBf16}) at {@code to + 1024 j} (its rows are 32 apart: the same
     * row within the 8-row atom, so the same swizzle). Chunks past k (the last step of a k that is not a multiple of 64) are zeros.
     */
    private static void loadStage(KernelContext ctx, int[] tile, int to, NativeArray src, int[] rows, int loads, int k, int k0, int c) {
        if (k0 + STEP <= k) {
            for (int j = 0; j < loads; j++) {
                ctx.copyAsync(tile, to + 1024 * j, src, rows[j] + k0);
            }
        } else {
            for (int j = 0; j < loads; j++) {
                if (k0 + 8 * c < k) {
                    ctx.copyAsync(tile, to + 1024 * j, src, rows[j] + k0);
                } else {
                    tile[to + 1024 * j] = 0;
                    tile[to + 1024 * j + 1] = 0;
                    tile[to + 1024 * j + 2] = 0;
                    tile[to + 1024 * j + 3] = 0;
                }
            }
        }
    }

    /**
     * The 128-byte swizzle of an int index into a tile that starts on 1024 bytes: its 16-byte chunk within the 128-byte row
     * (bits 2-4) XOR the row within its 8-row atom (bits 5-7), as Hopper's wgmma (and TMA) address such tiles.
     */
    public static int swizzle128(int i) {
        return (i & ~0x1c) | ((((i >> 2) ^ (i >> 5)) & 7) << 2);
    }

    /** Floats between rows of the output tile staged in local memory: 256 and 4 of padding (fewer bank conflicts). */
    private static final int OUT_ROW = TILE_N + 4;

    /**
     * The group's 128 x 256 outputs into out, a warpgroup's 64 rows a pass: its accumulators ({@link KernelContext#warpgroupMmaBf16}'s
     * layout) into the W stages as float bits, by constant indexes so that they stay in registers, then each work-item
     * writes four columns of a row at a time ({@link TileStores#storeQuad}: coalesced 16-byte stores, the bias added).
     */
    private static void store(KernelContext ctx, int[] tile, float[] acc, FloatArray out, FloatArray bias, boolean hasBias, int row0, int m,
            int col0, int n) {
        float[] sums = new float[4];
        int lane = ctx.laneId();
        int warpgroup = ctx.localIdx / KernelContext.WARPGROUP_SIZE;
        int warp = (ctx.localIdx / KernelContext.WARP_SIZE) % 4;
        ctx.copyAsyncWait(0);
        ctx.localBarrier(); // both warpgroups' MMAs are done reading the stages
        for (int pass = 0; pass < 2; pass++) {
            if (warpgroup == pass) {
                TileStores.stageWarpgroupColumns(tile, acc, 0, warp, lane, OUT_ROW);
                TileStores.stageWarpgroupColumns(tile, acc, 8, warp, lane, OUT_ROW);
                TileStores.stageWarpgroupColumns(tile, acc, 16, warp, lane, OUT_ROW);
                TileStores.stageWarpgroupColumns(tile, acc, 24, warp, lane, OUT_ROW);
            }
            ctx.localBarrier();
            for (int i = ctx.localIdx; i < 64 * TILE_N / 4; i += LOCAL) {
                int r = i / (TILE_N / 4);
                int c = 4 * (i % (TILE_N / 4));
                TileStores.storeQuad(ctx, out, tile, r * OUT_ROW + c, sums, false, bias, hasBias, bias, row0 + 64 * pass + r, col0 + c, m, n, 1, -1);
            }
            ctx.localBarrier();
        }
    }
}
