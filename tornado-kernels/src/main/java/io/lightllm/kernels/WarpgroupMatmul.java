package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Grid;

/**
 * The linear layer on Hopper's warpgroup MMA ({@link KernelContext#warpgroupMmaBf16}, PTX {@code wgmma}):
 * {@code out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias[n])}, a and w bf16. A work-group of two warpgroups (256 work-items)
 * computes a 128 x 256 tile of out, each warpgroup 64 x 256 of it with one m64n256k16 instruction per 16 of k, walking k
 * in steps of 64 through {@link #STAGES} stages of local tiles (192 KB) that asynchronous copies fill three steps ahead.
 * The tiles are stored in the MMA's core matrices (8 rows of 16 bytes), so the instruction reads them straight from local
 * memory: no fragment loads, and the tensor cores take twice the rate of {@link TensorCoreMatmul}'s {@code mma.sync}
 * (which tops out near 37 % of cuBLAS at 4096³).
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
    /** Ints between 8-row bands of a tile: eight core matrices of 32 ints (k 0-63). */
    private static final int BAND = 8 * 32;
    private static final int A_STAGE = TILE_M / 8 * BAND;
    private static final int W_STAGE = TILE_N / 8 * BAND;

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
        // a group of copies is committed for every step, also past the last one, so that "all but the newest
        // STAGES - 2 groups are done" always means "this step's tiles are in"
        for (int p = 0; p < STAGES - 1; p++) {
            if (p < steps) {
                loadStage(ctx, aTile, p * A_STAGE, a, row0, m, TILE_M, k, p * STEP);
                loadStage(ctx, wTile, p * W_STAGE, w, col0, n, TILE_N, k, p * STEP);
            }
            ctx.copyAsyncCommit();
        }
        for (int step = 0; step < steps; step++) {
            int stage = step % STAGES;
            ctx.copyAsyncWait(STAGES - 2);
            ctx.warpgroupFenceLocal(); // this item's copies (and zero stores) visible to the MMAs
            ctx.localBarrier(); // everyone's; and every warpgroup has waited for its MMAs on the stage refilled next
            int ahead = step + STAGES - 1;
            if (ahead < steps) {
                loadStage(ctx, aTile, (ahead % STAGES) * A_STAGE, a, row0, m, TILE_M, k, ahead * STEP);
                loadStage(ctx, wTile, (ahead % STAGES) * W_STAGE, w, col0, n, TILE_N, k, ahead * STEP);
            }
            ctx.copyAsyncCommit();
            int aAt = stage * A_STAGE + warpgroup * (64 / 8) * BAND;
            int wAt = stage * W_STAGE;
            ctx.warpgroupArrive(acc);
            for (int s = 0; s < STEP / 16; s++) {
                ctx.warpgroupMmaBf16(acc, aTile, aAt + 2 * 32 * s, BAND, wTile, wAt + 2 * 32 * s, BAND, TILE_N);
            }
            ctx.warpgroupCommit();
            ctx.warpgroupWait(acc, 0);
        }
        store(ctx, acc, out, bias, hasBias, row0 + 64 * warpgroup, m, col0, n);
    }

    /**
     * Rows {@code first..first + rows - 1} of src (k values each), k {@code k0..k0 + 63}, into a tile in core matrices: the
     * 16-byte chunk c (k0 + 8c..) of row r at {@code at + (r / 8) * BAND + c * 32 + (r % 8) * 4}. Consecutive items take
     * consecutive 16-byte slots (conflict-free stores); chunks past the rows or k are zeros.
     */
    private static void loadStage(KernelContext ctx, int[] tile, int at, NativeArray src, int first, int limit, int rows, int k, int k0) {
        for (int j = 0; j < rows * (STEP / 8) / LOCAL; j++) {
            int q = ctx.localIdx + j * LOCAL;
            int r = (q / 64) * 8 + q % 8;
            int c = (q / 8) % 8;
            int to = at + (r / 8) * BAND + c * 32 + (r % 8) * 4;
            if (first + r < limit && k0 + 8 * c < k) {
                ctx.copyAsync(tile, to, src, (first + r) * k + k0 + 8 * c);
            } else {
                tile[to] = 0;
                tile[to + 1] = 0;
                tile[to + 2] = 0;
                tile[to + 3] = 0;
            }
        }
    }

    /** This item's accumulators (its warp's 16 rows of the warpgroup's 64, {@link KernelContext#warpgroupMmaBf16}'s layout) into out. */
    private static void store(KernelContext ctx, float[] acc, FloatArray out, FloatArray bias, boolean hasBias, int row0, int m, int col0,
            int n) {
        int lane = ctx.laneId();
        int warp = (ctx.localIdx / KernelContext.WARP_SIZE) % 4;
        for (int j = 0; j < TILE_N / 8; j++) {
            for (int e = 0; e < 4; e++) {
                int row = row0 + 16 * warp + lane / 4 + 8 * (e / 2);
                int col = col0 + 8 * j + 2 * (lane % 4) + e % 2;
                if (row < m && col < n) {
                    out.set(row * n + col, hasBias ? acc[4 * j + e] + bias.get(col) : acc[4 * j + e]);
                }
            }
        }
    }
}
