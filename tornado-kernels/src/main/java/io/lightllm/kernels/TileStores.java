package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;

/**
 * The epilogue of the tensor-core GEMMs ({@link TensorCoreMatmul}, {@link QuantTensorGemm}): a warp's accumulators
 * go to a tile in local memory first, then each work-item writes four columns of a row of it. The writes are
 * coalesced 16-byte stores, or, where split k adds partial tiles, one vector reduction for four floats
 * ({@link KernelContext#atomicAdd4}); and the accumulators are indexed by constants only, so they stay in
 * registers (a 64-iteration store loop over them was not unrolled and put them on the stack).
 */
final class TileStores {
    private TileStores() {
    }

    /**
     * Columns col..col+3 of row {@code row} of out, from {@code tile[at..at+3]} (float bits): times
     * {@code scales[col + j]} when {@code scaled}, plus {@code bias[col + j]} when {@code withBias}; stored, or
     * added with {@code kSplits} > 1. With {@code gatedKind} >= 0 (an {@link Activations} code) the value in out is a
     * gate projection and is replaced by activation(gate) times the sum (a gated MLP's product; kSplits 1). Columns
     * past n and rows past m are left alone; {@code sums} is scratch of 4.
     */
    static void storeQuad(KernelContext ctx, FloatArray out, int[] tile, int at, float[] sums, boolean scaled, FloatArray scales,
            boolean withBias, FloatArray bias, int row, int col, int m, int n, int kSplits, int gatedKind) {
        for (int j = 0; j < 4; j++) {
            float v = Float.intBitsToFloat(tile[at + j]);
            sums[j] = col + j < n ? (scaled ? v * scales.get(col + j) : v) + (withBias ? bias.get(col + j) : 0f) : 0f;
            if (gatedKind >= 0 && row < m && col + j < n) {
                sums[j] = Activations.activate(out.get(row * n + col + j), gatedKind) * sums[j];
            }
        }
        boolean whole = n % 4 == 0; // rows of out start on 16 bytes
        if (row < m && whole && col < n && kSplits > 1) {
            ctx.atomicAdd4(out, row * n + col, sums[0], sums[1], sums[2], sums[3]);
        } else if (row < m && whole && col < n) {
            out.setFloats(row * n + col, sums, 0, 4);
        } else if (row < m) {
            for (int j = 0; j < 4; j++) {
                if (col + j < n && kSplits > 1) {
                    ctx.atomicAdd(out, row * n + col + j, sums[j]);
                } else if (col + j < n) {
                    out.set(row * n + col + j, sums[j]);
                }
            }
        }
    }

    /**
     * n8 blocks firstJ..firstJ + 7 of a work-item's warpgroup-MMA accumulators ({@link KernelContext#warpgroupMmaBf16}'s
     * layout: warp {@code warp}'s rows 16 warp + g and + 8) into {@code tile} as float bits, rows {@code outRow} ints apart.
     * Eight blocks a call, a constant range each, so the accumulators are indexed by constants and stay in registers.
     */
    static void stageWarpgroupColumns(int[] tile, float[] acc, int firstJ, int warp, int lane, int outRow) {
        int at = (16 * warp + lane / 4) * outRow + 2 * (lane % 4);
        for (int j = firstJ; j < firstJ + 8; j++) {
            for (int e = 0; e < 4; e++) {
                tile[at + 8 * outRow * (e / 2) + 8 * j + e % 2] = Float.floatToRawIntBits(acc[4 * j + e]);
            }
        }
    }
}
