package io.lightllm.kernels;

import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Grid;

/**
 * Prefill (context) attention on Hopper's warpgroup MMA ({@link KernelContext#warpgroupMmaF16}), FlashAttention-2's
 * algorithm with both products from local tiles, as FlashAttention-3 does: a work-group of one warpgroup takes 64
 * (token, query head) rows of one KV head (the GQA rows packed as in {@link TensorCoreAttention#prefill}); per 64 keys, S = Q Kᵀ is eight m64n64k16 MMAs from the Q tile and the K tile, the online softmax
 * runs on the accumulators in registers (the helpers of {@link TensorCoreAttention}: the layout of a warp's 16 rows is
 * mma.sync's), P goes to local memory as f16, and O += P V is four m64n128k16 MMAs with V as an n-major B (its rows as
 * the pool stores them). K and V stream through two stages of local tiles in the 128-byte swizzle, the next keys' copies
 * in flight while this step's MMAs run. Its 88 KB of tiles let two groups share an SM. (Two warpgroups a group, 128 rows
 * sharing each K/V tile, was the first form: on an H100 it ran 512 / 1,024 / 2,048 / 4,096 / 8,192 causal tokens at 101 /
 * 134 / 211 / 294 / 337 TFLOP/s where this runs 105 / 145 / 223 / 309 / 342: a short prompt's causal tiles, whose work
 * grows with their position, spread over twice the groups, two an SM.) f16 pools of head dimension 128 without ALiBi or a sliding window, on compute
 * capability 9.0 ({@link Attention#launchPrefillAttention} picks it under the tuning {@code attention.prefill_warpgroup});
 * everything else keeps {@link TensorCoreAttention}.
 */
public final class WarpgroupAttention {
    /** Rows (token, query head) of a work-group: one warpgroup's. */
    public static final int TILE_ROWS = 64;
    /** Keys per step. */
    static final int KEYS = 64;
    static final int HEAD_DIM = 128;
    static final int LOCAL = KernelContext.WARPGROUP_SIZE;
    /** Ints of a 64-row tile of 128 f16 values: two column blocks of 64 (2,048 ints each) in the 128-byte swizzle. */
    private static final int BLOCK = 64 * 32;
    private static final int ROWS_TILE = 2 * BLOCK;
    /** Ints of P for one warpgroup: 64 rows of 64 keys. */
    private static final int P_TILE = BLOCK;

    private WarpgroupAttention() {
    }

    /** A group (one warpgroup) per (request, KV head, tile of 64 rows): rowTiles = ceil(maxNewTokens * group / 64). */
    public static Grid grid(int requests, int kvHeads, int rowTiles) {
        return Grid.groups((long) requests * kvHeads * rowTiles, KernelContext.WARPGROUP_SIZE);
    }

    /**
     * The rank of the unit that group {@code g} of {@code groups} takes: g itself, except that {@code pairingWave}
     * &gt; 0 (the groups one pass over the device places, one an SM: its SMs) pairs the units of a launch whose groups all
     * run at once, two an SM: groups g and g + wave (one SM's, as the block scheduler fills SMs in order) take ranks k
     * and groups - 1 - k, a heavy unit beside a light one where units are ranked by their work.
     */
    static int rankOf(int g, int groups, int pairingWave) {
        return pairingWave > 0 && groups <= 2 * pairingWave && g >= pairingWave ? groups - 1 - (g - pairingWave) : g;
    }

    /**
     * out (f32, or the o projection's bf16 or f16: {@link Attention#prefillOutputType}) of the new tokens' rows; q f32 rows,
     * or with {@code queryOperand} (bound at the kernel refs) the f16 operand itself (the rows times scale · log2 e,
     * rounded once: what this kernel makes of f32 rows as it loads them, written by the q/k/v split instead), which goes
     * to local memory by asynchronous copies beside the first keys'.
     */
    public static void prefillF16D128(KernelContext ctx, NativeArray out, NativeArray q, NativeArray kPool, NativeArray vPool,
            IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix, float scale, int qHeads, int kvHeads, int maxLen,
            int rowTiles, boolean tileMajor, int pairingWave, boolean queryOperand) {
        int[] qTile = ctx.allocateIntLocalArray(ROWS_TILE);
        int[] kTile = ctx.allocateIntLocalArray(2 * ROWS_TILE);
        int[] vTile = ctx.allocateIntLocalArray(2 * ROWS_TILE);
        int[] pTile = ctx.allocateIntLocalArray(P_TILE);
        float[] s = new float[KEYS / 2];
        float[] o = new float[HEAD_DIM / 2];
        float[] state = new float[4];
        int[] slots = new int[KEYS * (HEAD_DIM / 8) / LOCAL];
        int lane = ctx.laneId();
        int warp = (ctx.localIdx / KernelContext.WARP_SIZE) % 4;
        int g = lane / 4;
        int t = lane % 4;
        int group = qHeads / kvHeads;
        // units ranked from the last row tile of a request, which attends to the most keys, so that no long one starts
        // last: request-major (a request's tiles, then the next's) or tile-major (every request's last tile first: heaviest
        // first across requests of one length); see Attention.PrefillOrder
        int groups = ctx.globalGroupSizeX / LOCAL;
        int rank = rankOf(ctx.groupIdx, groups, pairingWave);
        int requestHeads = groups / rowTiles; // (request, KV head) pairs of the launch
        int tile = rowTiles - 1 - (tileMajor ? rank / requestHeads : rank % rowTiles);
        int requestHead = tileMajor ? rank % requestHeads : rank / rowTiles;
        int kvHead = requestHead % kvHeads;
        int b = requestHead / kvHeads;
        int pairs = bLen.get(b) * group;
        int flat0 = tile * TILE_ROWS;
        if (flat0 < pairs) { // the same for the whole group, so every item meets the same barriers
            int prefix = bPrefix.get(b);
            int first = bStart.get(b);
            int tableRow = reqRows.get(b) * maxLen;
            int keyEnd = prefix + (Math.min(flat0 + TILE_ROWS, pairs) - 1) / group + 1;
            int firstPos = prefix + flat0 / group; // keys up to here are visible to every row of the tile
            int rowLo = flat0 + 16 * warp + g;
            int rowHi = rowLo + 8;
            int posLo = prefix + rowLo / group;
            int posHi = prefix + rowHi / group;
            if (queryOperand) {
                copyQueries(ctx, qTile, q, flat0, pairs, group, first, qHeads, kvHead); // committed with the first keys' copies
            } else {
                loadQueries(ctx, qTile, q, flat0, pairs, group, first, qHeads, kvHead, scale * TensorCoreAttention.LOG2E);
            }
            int steps = (keyEnd + KEYS - 1) / KEYS;
            // each item copies chunk c (of 16) of keys key0, key0 + 8, ..: eight consecutive items take one 128-byte half of
            // a key's row (one request of four sectors) and write one 128-byte row of a column block
            int c = ctx.localIdx % 16;
            int key0 = ctx.localIdx / 16;
            int to = WarpgroupMatmul.swizzle128((c / 8) * BLOCK + key0 * 32 + (c % 8) * 4);
            gatherSlots(slots, reqToToken, tableRow, 0, keyEnd, key0);
            loadKeys(ctx, kTile, vTile, 0, to, kPool, vPool, slots, kvHeads, kvHead, c);
            ctx.copyAsyncCommit();
            // the slots of the next step's keys are read a step before their copies are issued: a copy's address waits on
            // its slot's load, and a step's MMAs hide that load where nothing else would
            gatherSlots(slots, reqToToken, tableRow, KEYS, keyEnd, key0);
            state[TensorCoreAttention.MAX_LO] = TensorCoreAttention.NEG_INF;
            state[TensorCoreAttention.MAX_HI] = TensorCoreAttention.NEG_INF;
            for (int step = 0; step < steps; step++) {
                int kb = step * KEYS;
                int stage = (step % 2) * ROWS_TILE;
                ctx.copyAsyncWait(0);
                ctx.warpgroupFenceLocal();
                ctx.localBarrier(); // this step's K and V are in; every warp is done with the other stage
                if (step + 1 < steps) {
                    loadKeys(ctx, kTile, vTile, ((step + 1) % 2) * ROWS_TILE, to, kPool, vPool, slots, kvHeads, kvHead, c);
                    gatherSlots(slots, reqToToken, tableRow, kb + 2 * KEYS, keyEnd, key0);
                }
                ctx.copyAsyncCommit();
                for (int i = 0; i < KEYS / 2; i++) {
                    s[i] = 0f;
                }
                ctx.warpgroupArrive(s);
                for (int d = 0; d < HEAD_DIM / 16; d++) {
                    int at = (d / 4) * BLOCK + 8 * (d % 4);
                    ctx.warpgroupMmaF16(s, qTile, at, 256, kTile, stage + at, 256, KEYS);
                }
                ctx.warpgroupCommit();
                ctx.warpgroupWait(s, 0);
                boolean masks = kb + KEYS - 1 > firstPos;
                if (masks) {
                    TensorCoreAttention.maskScores(s, posLo, posHi, 0f, 0f, kb, t, keyEnd, 0, true, false);
                }
                TensorCoreAttention.softmaxStep(ctx, s, KEYS / 2, state, o, HEAD_DIM, false);
                storeProbabilities(pTile, s, warp, g, t);
                ctx.warpgroupFenceLocal();
                ctx.localBarrier(); // P of the four warps is in
                ctx.warpgroupArrive(o);
                for (int kk = 0; kk < KEYS / 16; kk++) {
                    ctx.warpgroupMmaF16NMajorB(o, pTile, 8 * kk, 256, vTile, stage + 512 * kk, 256, BLOCK, HEAD_DIM);
                }
                ctx.warpgroupCommit();
                ctx.warpgroupWait(o, 0);
            }
            TensorCoreAttention.storeRows(ctx, out, o, state,
                    rowLo < pairs ? TensorCoreAttention.packedRowAt(first, rowLo, group, qHeads, kvHead, HEAD_DIM) : -1,
                    rowHi < pairs ? TensorCoreAttention.packedRowAt(first, rowHi, group, qHeads, kvHead, HEAD_DIM) : -1, t, HEAD_DIM);
        }
    }

    /** The group's 64 rows of q (f32), times {@code scale}, into qTile as f16 in the 128-byte swizzle; rows past the request's are zeros. */
    private static void loadQueries(KernelContext ctx, int[] qTile, NativeArray q, int flat0, int pairs, int group, int first, int qHeads,
            int kvHead, float scale) {
        float[] x = new float[8];
        for (int j = 0; j < TILE_ROWS * (HEAD_DIM / 8) / LOCAL; j++) {
            int i = ctx.localIdx + j * LOCAL;
            int row = i / 16;
            int c = i % 16;
            int flat = flat0 + row;
            if (flat < pairs) {
                q.getFloats(TensorCoreAttention.packedRowAt(first, flat, group, qHeads, kvHead, HEAD_DIM) + 8 * c, x, 0, 8);
            } else {
                for (int e = 0; e < 8; e++) {
                    x[e] = 0f;
                }
            }
            int to = WarpgroupMatmul.swizzle128((c / 8) * BLOCK + row * 32 + (c % 8) * 4);
            for (int e = 0; e < 4; e++) {
                qTile[to + e] = KMath.packHalf2(x[2 * e] * scale, x[2 * e + 1] * scale);
            }
        }
    }

    /**
     * The group's 64 rows of the f16 query operand into qTile (the 128-byte swizzle) by asynchronous copies, 16 bytes each;
     * rows past the request's are zeros, stored.
     */
    private static void copyQueries(KernelContext ctx, int[] qTile, NativeArray q, int flat0, int pairs, int group, int first, int qHeads,
            int kvHead) {
        for (int j = 0; j < TILE_ROWS * (HEAD_DIM / 8) / LOCAL; j++) {
            int i = ctx.localIdx + j * LOCAL;
            int row = i / 16;
            int c = i % 16;
            int flat = flat0 + row;
            int to = WarpgroupMatmul.swizzle128((c / 8) * BLOCK + row * 32 + (c % 8) * 4);
            if (flat < pairs) {
                ctx.copyAsync(qTile, to, q, TensorCoreAttention.packedRowAt(first, flat, group, qHeads, kvHead, HEAD_DIM) + 8 * c);
            } else {
                for (int e = 0; e < 4; e++) {
                    qTile[to + e] = 0;
                }
            }
        }
    }

    /**
     * The pool slots of this item's keys key0, key0 + 8, .. of the step from kb; keys past keyEnd take the last key's slot
     * (finite values whose scores the mask sets to -inf, so their zero weights meet no NaN).
     */
    private static void gatherSlots(int[] slots, IntArray reqToToken, int tableRow, int kb, int keyEnd, int key0) {
        for (int j = 0; j < KEYS * (HEAD_DIM / 8) / LOCAL; j++) {
            slots[j] = reqToToken.get(tableRow + Math.min(kb + key0 + LOCAL / 16 * j, keyEnd - 1));
        }
    }

    /** This item's chunks of the step's K and V rows into stage {@code at} of the tiles ({@code to}: its first chunk's place). */
    private static void loadKeys(KernelContext ctx, int[] kTile, int[] vTile, int at, int to, NativeArray kPool, NativeArray vPool, int[] slots,
            int kvHeads, int kvHead, int c) {
        for (int j = 0; j < KEYS * (HEAD_DIM / 8) / LOCAL; j++) {
            int src = (slots[j] * kvHeads + kvHead) * HEAD_DIM + 8 * c;
            ctx.copyAsync(kTile, at + to + LOCAL / 16 * 32 * j, kPool, src);
            ctx.copyAsync(vTile, at + to + LOCAL / 16 * 32 * j, vPool, src);
        }
    }

    /** This item's probabilities (rows g and g + 8 of its warp, keys 8j + 2t and the next) into P as f16 pairs, swizzled. */
    private static void storeProbabilities(int[] pTile, float[] s, int warp, int g, int t) {
        for (int j = 0; j < KEYS / 8; j++) {
            int lo = (16 * warp + g) * 32 + 4 * j + t;
            pTile[WarpgroupMatmul.swizzle128(lo)] = KMath.packHalf2(s[4 * j], s[4 * j + 1]);
            pTile[WarpgroupMatmul.swizzle128(lo + 8 * 32)] = KMath.packHalf2(s[4 * j + 2], s[4 * j + 3]);
        }
    }
}
