package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;

/**
 * Token attention on tensor cores (f16 MMA, f32 accumulators), for KV pools of f16, or int8 or fp8 e4m3 codes:
 * the kernels {@link Attention}'s launchers pick where the device's tuning asks for them. Both
 * keep a warp's queries in registers as MMA fragments, score 16 keys per MMA step, and keep the
 * softmax online (FlashAttention-2): running row max and sum per query, the output rescaled as the
 * max grows, scores in exp2's domain (queries pre-scaled by log2 e).
 *
 * <ul>
 *   <li><b>Decode</b> (flash-decoding): one warp per (request, KV head, up to 16 of its query heads,
 *       split of the context). The query heads that share a KV head are the rows of the MMA, so each
 *       key and value is read once for all of them (GQA, MQA). The warp keeps its own pipeline of
 *       16-key tiles in local memory: asynchronous copies fetch two steps ahead while the tensor
 *       cores work on the third, so a warp always has loads in flight (decode is a stream of bytes).</li>
 *   <li><b>Prefill</b> (FlashAttention-2): a work-group of four warps (or eight: the "wide" entries) per
 *       (request, KV head, tile of 16 query rows a warp, each row a (token, query head) pair of the KV
 *       head's group), 64 keys a step
 *       through two local tiles that asynchronous copies fill; K's tile loads while P V of the
 *       last step runs, V's while Q K^T runs. Causal, with an optional cached prefix: queries are
 *       the new tokens, keys are the prefix and the new tokens.</li>
 * </ul>
 *
 * <p>The head dimension must be a constant for the fragment arrays to stay in registers, so each
 * kernel's refs bind it (64, 128; {@link io.lightllm.tornado.runtime.KernelRef#with}), as they bind the warps a group.
 */
public final class TensorCoreAttention {
    /** Query heads of one KV head a decode warp serves: the MMA's 16 rows. */
    public static final int DECODE_ROWS = 16;
    /** Keys a decode warp takes per step: one k16 step of P V. */
    public static final int DECODE_STEP = 16;
    /** Steps of keys a decode warp has in local tiles: two load while it works on a third (26 KB). */
    static final int DECODE_STAGES = 3;
    /**
     * Stages of an int8 or fp8 pool's tiles: a step of codes is half the bytes of an f16 step and needs
     * no f16 copies, so more steps stay in flight (4 KB a stage; 17 KB a warp at four stages still
     * lets an SM hold the 12 warps its registers allow).
     */
    static final int CODE_STAGES = 4;
    /**
     * Steps of pool slots (and, over codes, row scales) a decode warp keeps in local memory, one more than its stages of
     * tiles: a step's table entries are read {@code ring} steps before it (two before its copies start) and its scales
     * a step after its slots, so no step waits on a global load of the table or of the scales (read a step ahead in
     * registers, as before, a short split's every step waited on one or two of them).
     */
    static final int DECODE_RING = DECODE_STAGES + 1;
    static final int CODE_RING = CODE_STAGES + 1;
    /** Warps of a prefill work-group; each takes 16 query rows ((token, head) pairs). */
    public static final int PREFILL_WARPS = 4;
    /**
     * Warps of a wide prefill work-group ({@code attention.prefill_warps=8}): 128 rows share each K and
     * V tile, so a key costs half the L2 traffic a flop (64 rows at 64 keys a step pull 64 flops a byte:
     * about 2.5 TB/s at 160 TFLOP/s, and 300 would need more than the L2 gives).
     */
    public static final int PREFILL_WIDE_WARPS = 8;
    /** Keys per prefill step. */
    public static final int PREFILL_KEYS = 64;
    /** Largest head dimension (the fragment arrays are sized for it). */
    static final int MAX_DIM = 128;
    /** Ints per row of a prefill K/V tile: 128 halves and 8 of padding, so that ldmatrix's 8 rows fall on distinct banks. */
    private static final int TILE_STRIDE = MAX_DIM / 2 + 4;

    static final float LOG2E = 1.4426950408889634f;
    private static final float LN2 = 0.6931471805599453f;
    static final float NEG_INF = Float.NEGATIVE_INFINITY;

    private TensorCoreAttention() {
    }

    /** Whether these kernels serve a head dimension. */
    public static boolean supportsHeadDim(int headDim) {
        return headDim == 64 || headDim == 128;
    }

    // ---- decode ------------------------------------------------------------------------------------

    // decodeF16 and decodeCodes take the head dimension and the warps a work-group (attention.decode_warps) as parameters
    // that their kernel refs bind (Attention.decodeKernel): as constants they size the local tiles, unroll the fragment
    // loops and keep the other paths out of the registers; with four warps the warps take turns at a split's steps of 16
    // keys, each through its own tiles, and merge their rows in local memory at the end (see decode)

    /** Ints of an int8 or fp8 pool's staging tiles: raw codes of every stage (16 codes an asynchronous copy). */
    private static final int RAW_STAGE_INTS = CODE_STAGES * DECODE_STEP * MAX_DIM / 4;

    /**
     * Decode over an f16 pool: each warp's stages of K and V tiles and its ring of slots, then {@link #decode}. A kernel whose
     * refs bind {@code headDim} (64 or 128) and {@code warps} (1, 4 or 8).
     */
    public static void decodeF16(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, FloatArray q,
            NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales, IntArray reqToToken, IntArray reqRows,
            IntArray seqLen, FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int splits,
            int splitUnit, boolean direct, int window, int headDim, int warps) {
        int[] kTiles = ctx.allocateIntLocalArray(warps * DECODE_STAGES * DECODE_STEP * TILE_STRIDE);
        int[] vTiles = ctx.allocateIntLocalArray(warps * DECODE_STAGES * DECODE_STEP * TILE_STRIDE);
        int[] slotRing = ctx.allocateIntLocalArray(warps * DECODE_RING * DECODE_STEP);
        float[] noScales = ctx.allocateFloatLocalArray(4);
        decode(ctx, partialAcc, partialMax, partialSum, q, kPool, vPool, kScales, vScales, false, false, kTiles, vTiles, slotRing, noScales,
                noScales, reqToToken, reqRows, seqLen, alibiSlopes, useAlibi, scale, qHeads, kvHeads, maxLen, splits, splitUnit, direct,
                window, warps, headDim);
    }

    /**
     * Decode over an int8 or fp8 pool: each warp's stages of raw codes, its ring of slots and its row scales, then
     * {@link #decode}. A kernel whose refs bind {@code fp8}, {@code headDim} (64 or 128) and {@code warps} (1, 4 or 8).
     */
    public static void decodeCodes(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, FloatArray q,
            NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales, IntArray reqToToken, IntArray reqRows,
            IntArray seqLen, FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int splits,
            int splitUnit, boolean direct, int window, boolean fp8, int headDim, int warps) {
        int[] kRaw = ctx.allocateIntLocalArray(warps * RAW_STAGE_INTS);
        int[] vRaw = ctx.allocateIntLocalArray(warps * RAW_STAGE_INTS);
        int[] slotRing = ctx.allocateIntLocalArray(warps * CODE_RING * DECODE_STEP);
        float[] kRowScales = ctx.allocateFloatLocalArray(warps * CODE_RING * DECODE_STEP);
        float[] vRowScales = ctx.allocateFloatLocalArray(warps * CODE_RING * DECODE_STEP);
        decode(ctx, partialAcc, partialMax, partialSum, q, kPool, vPool, kScales, vScales, true, fp8, kRaw, vRaw, slotRing, kRowScales,
                vRowScales, reqToToken, reqRows, seqLen, alibiSlopes, useAlibi, scale, qHeads, kvHeads, maxLen, splits, splitUnit, direct,
                window, warps, headDim);
    }

    /**
     * One warp (a work-group of 32) per unit {@code ((b * kvHeads + kvHead) * chunks + chunk) * splits + split},
     * chunks = ceil((qHeads / kvHeads) / 16). Writes what {@link Attention#decodeAttentionPartial}
     * writes for each of its query heads (split max, sum of exp, unnormalised accumulator), for
     * {@link Attention#decodeAttentionMerge} to merge; with {@code direct} (one split) the normalised
     * output itself, into {@code partialAcc} as [batch, qHeads, headDim].
     *
     * <p>The query heads of the KV head are the A rows (g and g + 8 of lane (g, t)); the warp walks
     * its split 16 keys a step through local tiles of K and V ({@link #DECODE_STAGES} stages of f16,
     * {@link #CODE_STAGES} of codes), asynchronous copies filling the tiles all but one stage ahead while
     * the tensor cores work on the current one; the copies' pool slots, and over codes the rows' scales, come
     * from a ring in local memory filled further ahead ({@link #DECODE_RING}).
     *
     * <p>With {@code warps} > 1 (a constant of the entry) a work-group of that many warps serves the unit: warp w takes
     * steps w, w + warps, ... of the split, each warp in its own stages of the tiles, every warp making the same number
     * of trips (a step past the split's end is all masked), and at the end the warps merge their rows through local
     * memory (the tiles, done with) as the merge kernel merges splits. A short context then needs no split (and no
     * merge kernel) to keep several warps at work on it.
     */
    private static void decode(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, FloatArray q,
            NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales, boolean codes, boolean fp8, int[] kTiles, int[] vTiles,
            int[] slotRing, float[] kRowScales, float[] vRowScales, IntArray reqToToken, IntArray reqRows, IntArray seqLen, FloatArray alibiSlopes,
            boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int splits, int splitUnit, boolean direct, int window, int warps,
            int headDim) {
        int stages = codes ? CODE_STAGES : DECODE_STAGES;
        int ring = codes ? CODE_RING : DECODE_RING;
        int[] slots = new int[DECODE_STEP * (MAX_DIM / 8) / KernelContext.WARP_SIZE];
        int[] qf = new int[MAX_DIM / 16 * 4];
        int[] bf = new int[4];
        int[] pf = new int[4];
        int[] words = new int[MAX_DIM / 8];
        float[] o = new float[MAX_DIM / 8 * 4];
        float[] s = new float[8];
        float[] x = new float[8];
        float[] state = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int firstStage = warp * stages; // this warp's stages in the tiles
        int ringAt = warp * ring * DECODE_STEP; // this warp's steps in the slot ring and the row scales
        int g = lane / 4;
        int t = lane % 4;
        int group = qHeads / kvHeads;
        int chunks = (group + DECODE_ROWS - 1) / DECODE_ROWS;
        int unit = ctx.groupIdx;
        int split = unit % splits;
        int chunk = (unit / splits) % chunks;
        int kvHead = (unit / (splits * chunks)) % kvHeads;
        int b = unit / (splits * chunks * kvHeads);
        int len = seqLen.get(b);
        int splitLen = Attention.splitLength(len, splits, splitUnit);
        // with a sliding window the query sees its last `window` tokens, itself included
        int start = Math.max(split * splitLen, window > 0 ? len - window : 0);
        int end = Math.min(len, split * splitLen + splitLen);
        int rows = Math.min(DECODE_ROWS, group - chunk * DECODE_ROWS);
        int head0 = kvHead * group + chunk * DECODE_ROWS;
        if (start >= end && split * splitLen < len && !direct && warp == 0 && lane < rows) {
            // a split wholly before the window: nothing to attend to, which the merge reads as max -inf and sum 0
            int part = (b * qHeads + head0 + lane) * splits + split;
            partialMax.set(part, NEG_INF);
            partialSum.set(part, 0f);
            for (int d = 0; d < headDim; d++) {
                partialAcc.set(part * headDim + d, 0f);
            }
        }
        if (start < end) { // the same for the whole warp
            int tableRow = reqRows.get(b) * maxLen;
            int stride = headDim / 2 + 4;
            int tile = DECODE_STEP * stride;
            boolean validLo = g < rows;
            boolean validHi = g + 8 < rows;
            float slopeLo = useAlibi && validLo ? alibiSlopes.get(head0 + g) * LOG2E : 0f;
            float slopeHi = useAlibi && validHi ? alibiSlopes.get(head0 + g + 8) * LOG2E : 0f;
            loadQuery(q, qf, validLo, validHi, (b * qHeads + head0 + g) * headDim, (b * qHeads + head0 + g + 8) * headDim, t, scale * LOG2E,
                    codes, headDim);
            int rawTile = DECODE_STEP * headDim / 4;
            // the ring's first steps (lanes 0-15, a key each): the slots of steps 0 .. ring - 2 in local memory, step ring - 1's
            // in a register; each step of the loop moves them on one
            int nextSlot = -1;
            if (lane < DECODE_STEP) {
                for (int p = 0; p < ring; p++) {
                    int key = start + (p * warps + warp) * DECODE_STEP + lane;
                    int slot = key < end ? reqToToken.get(tableRow + key) : -1;
                    if (p < ring - 1) {
                        slotRing[ringAt + p * DECODE_STEP + lane] = slot;
                    } else {
                        nextSlot = slot;
                    }
                }
            }
            // the ring's first slots are in. A warp's barriers in decode are its own: each warp works in its own stages, ring and
            // scales (warps > 1 meet only in mergeWarps), so no warp waits at a step for another's copies
            ctx.warpBarrier();
            // a group of copies is committed for every step, also past the split's end, so that "all but
            // the newest stages - 2 groups are done" always means "this step's tiles are in"
            int copies = codes ? headDim / 16 : headDim / 8; // per row
            for (int p = 0; p < stages - 1; p++) {
                // every step the loop runs gets its tiles, all zero past the keys: a warp's turn past the split's end
                // (warps > 1) multiplies them by zero probabilities, which must not meet stale local memory (NaN codes)
                if (start + p * warps * DECODE_STEP < end) {
                    ringSlots(slots, slotRing, ringAt + p * DECODE_STEP, copies, lane);
                    loadDecodeStep(ctx, codes, firstStage + p, slots, kTiles, vTiles, kPool, vPool, kScales, vScales, kvHeads, kvHead, headDim,
                            stride, lane, x);
                }
                ctx.copyAsyncCommit();
            }
            // over codes, the rows' scales of steps 0 .. ring - 3 in local memory and step ring - 2's in registers, loaded
            // while the first copies are in flight (before them, every warp waited on a scale load before it started copying);
            // the loop's first barrier makes them visible
            float nextKScale = 0f;
            float nextVScale = 0f;
            if (codes && lane < DECODE_STEP) {
                for (int p = 0; p < ring - 1; p++) {
                    int slot = slotRing[ringAt + p * DECODE_STEP + lane]; // this lane's own entry
                    float ks = slot >= 0 ? kScales.get(slot * kvHeads + kvHead) : 0f;
                    float vs = slot >= 0 ? vScales.get(slot * kvHeads + kvHead) : 0f;
                    if (p < ring - 2) {
                        kRowScales[ringAt + p * DECODE_STEP + lane] = ks;
                        vRowScales[ringAt + p * DECODE_STEP + lane] = vs;
                    } else {
                        nextKScale = ks;
                        nextVScale = vs;
                    }
                }
            }
            state[MAX_LO] = NEG_INF;
            state[MAX_HI] = NEG_INF;
            for (int step = 0; start + step * warps * DECODE_STEP < end; step++) { // the same trips for every warp
                int kb = start + (step * warps + warp) * DECODE_STEP;
                int at = (firstStage + step % stages) * tile;
                if (codes) { // the wait takes a constant
                    ctx.copyAsyncWait(CODE_STAGES - 2);
                } else {
                    ctx.copyAsyncWait(DECODE_STAGES - 2);
                }
                // this step's tiles are in; every lane is done with the last step's, refilled next; the ring's last moves are in
                ctx.warpBarrier();
                if (start + (step + stages - 1) * warps * DECODE_STEP < end) { // the loop runs that step (see the prologue)
                    ringSlots(slots, slotRing, ringAt + (step + stages - 1) % ring * DECODE_STEP, copies, lane);
                    loadDecodeStep(ctx, codes, firstStage + (step + stages - 1) % stages, slots, kTiles, vTiles, kPool, vPool, kScales,
                            vScales, kvHeads, kvHead, headDim, stride, lane, x);
                }
                ctx.copyAsyncCommit();
                if (lane < DECODE_STEP) {
                    // the ring moves on: step + ring - 2's scales and step + ring - 1's slot into local memory (entries of
                    // steps the loop is done with), the latter's scales and step + ring's slot requested
                    if (codes) {
                        kRowScales[ringAt + (step + ring - 2) % ring * DECODE_STEP + lane] = nextKScale;
                        vRowScales[ringAt + (step + ring - 2) % ring * DECODE_STEP + lane] = nextVScale;
                        nextKScale = nextSlot >= 0 ? kScales.get(nextSlot * kvHeads + kvHead) : 0f;
                        nextVScale = nextSlot >= 0 ? vScales.get(nextSlot * kvHeads + kvHead) : 0f;
                    }
                    slotRing[ringAt + (step + ring - 1) % ring * DECODE_STEP + lane] = nextSlot;
                    int key = start + ((step + ring) * warps + warp) * DECODE_STEP + lane;
                    nextSlot = key < end ? reqToToken.get(tableRow + key) : -1;
                }
                int stage = firstStage + step % stages;
                int scaleAt = ringAt + step % ring * DECODE_STEP; // this step's row scales
                if (codes) {
                    scoreCodes(ctx, s, qf, bf, words, kTiles, stage * rawTile, fp8, headDim, g, t);
                } else {
                    scoreKeys(ctx, s, 2, qf, bf, kTiles, at, stride, headDim);
                }
                for (int i = 0; i < 8; i++) {
                    int row = 8 * (i / 4) + 2 * t + i % 2;
                    int key = kb + row;
                    float keyScale = codes ? kRowScales[scaleAt + row] : 1f;
                    s[i] = key < end ? s[i] * keyScale + (i % 4 < 2 ? slopeLo : slopeHi) * (key - (len - 1)) : NEG_INF;
                }
                softmaxStep(ctx, s, 8, state, o, headDim, true);
                if (codes) {
                    accumulateCodes(ctx, o, s, pf, bf, words, vTiles, stage * rawTile, vRowScales, scaleAt, fp8, headDim, g, t);
                } else {
                    accumulateValues(ctx, o, s, 1, pf, bf, vTiles, at, stride, headDim);
                }
            }
            float lLo = quadSum(ctx, state[SUM_LO]);
            float lHi = quadSum(ctx, state[SUM_HI]);
            if (warps > 1) {
                mergeWarps(ctx, partialAcc, partialMax, partialSum, kTiles, vTiles, o, state, lLo, lHi, codes, direct, warps, warp, rows, b,
                        qHeads, head0, split, splits, headDim);
            }
            for (int nt = 0; warps == 1 && nt < headDim / 8; nt++) {
                for (int e = 0; e < 4; e++) {
                    int row = g + 8 * (e / 2);
                    if (row < rows) {
                        // accumulator column 2t + e % 2 of n tile nt; from codes, columns are dims headDim / 8 apart (accumulateCodes)
                        int d = codes ? (2 * t + e % 2) * (headDim / 8) + nt : 8 * nt + 2 * t + e % 2;
                        int bh = b * qHeads + head0 + row;
                        if (direct) {
                            partialAcc.set(bh * headDim + d, o[4 * nt + e] / (e < 2 ? lLo : lHi));
                        } else {
                            partialAcc.set((bh * splits + split) * headDim + d, o[4 * nt + e]);
                        }
                    }
                }
            }
            if (warps == 1 && !direct && t == 0) {
                // the merge works in natural logarithms: m ln 2
                if (validLo) {
                    int part = (b * qHeads + head0 + g) * splits + split;
                    partialMax.set(part, state[MAX_LO] * LN2);
                    partialSum.set(part, lLo);
                }
                if (validHi) {
                    int part = (b * qHeads + head0 + g + 8) * splits + split;
                    partialMax.set(part, state[MAX_HI] * LN2);
                    partialSum.set(part, lHi);
                }
            }
        }
    }

    /**
     * The end of a decode work-group of several warps: each warp puts its rows' unnormalised sums (from {@code o}, in
     * the dims its fragments hold) in {@code kTiles} and its rows' max and sum in {@code vTiles}, as float bits (every
     * warp is done with its tiles first), and the group's items then merge each (row, dim) over the warps, in the
     * exp2 domain of the warps' maxima: the normalised output when {@code direct}, else the split's partials.
     */
    private static void mergeWarps(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, int[] kTiles,
            int[] vTiles, float[] o, float[] state, float lLo, float lHi, boolean codes, boolean direct, int warps, int warp, int rows, int b,
            int qHeads, int head0, int split, int splits, int headDim) {
        int lane = ctx.laneId();
        int g = lane / 4;
        int t = lane % 4;
        ctx.copyAsyncWait(0);
        ctx.localBarrier(); // every warp is done with the tiles
        for (int nt = 0; nt < headDim / 8; nt++) {
            for (int e = 0; e < 4; e++) {
                int row = g + 8 * (e / 2);
                if (row < rows) {
                    int d = codes ? (2 * t + e % 2) * (headDim / 8) + nt : 8 * nt + 2 * t + e % 2;
                    kTiles[(warp * DECODE_ROWS + row) * headDim + d] = Float.floatToRawIntBits(o[4 * nt + e]);
                }
            }
        }
        if (t == 0) {
            if (g < rows) {
                vTiles[2 * (warp * DECODE_ROWS + g)] = Float.floatToRawIntBits(state[MAX_LO]);
                vTiles[2 * (warp * DECODE_ROWS + g) + 1] = Float.floatToRawIntBits(lLo);
            }
            if (g + 8 < rows) {
                vTiles[2 * (warp * DECODE_ROWS + g + 8)] = Float.floatToRawIntBits(state[MAX_HI]);
                vTiles[2 * (warp * DECODE_ROWS + g + 8) + 1] = Float.floatToRawIntBits(lHi);
            }
        }
        ctx.localBarrier();
        for (int i = ctx.localIdx; i < rows * headDim; i += warps * KernelContext.WARP_SIZE) {
            int row = i / headDim;
            int d = i % headDim;
            float m = NEG_INF;
            for (int w = 0; w < warps; w++) {
                m = KMath.max(m, Float.intBitsToFloat(vTiles[2 * (w * DECODE_ROWS + row)]));
            }
            // warp 0 starts at the split's first visible key, so m is finite; a warp with no key has max -inf: weight 0
            float sum = 0f;
            float acc = 0f;
            for (int w = 0; w < warps; w++) {
                float mw = Float.intBitsToFloat(vTiles[2 * (w * DECODE_ROWS + row)]);
                float f = mw == NEG_INF ? 0f : KMath.exp2(mw - m);
                sum += Float.intBitsToFloat(vTiles[2 * (w * DECODE_ROWS + row) + 1]) * f;
                acc += Float.intBitsToFloat(kTiles[(w * DECODE_ROWS + row) * headDim + d]) * f;
            }
            int bh = b * qHeads + head0 + row;
            if (direct) {
                partialAcc.set(bh * headDim + d, acc / sum);
            } else {
                partialAcc.set((bh * splits + split) * headDim + d, acc);
                if (d == 0) {
                    partialMax.set(bh * splits + split, m * LN2); // the merge works in natural logarithms
                    partialSum.set(bh * splits + split, sum);
                }
            }
        }
    }

    // ---- prefill -----------------------------------------------------------------------------------

    /**
     * One work-group of {@code warps} warps per (request b, KV head, tile of 16 rows a warp), group index {@code (b * kvHeads + kvHead) * rowTiles + rowTiles - 1 - tile}. Row r of request b's
     * KV head is new token r / group (packed row bStart[b] + r / group of q and out, position
     * bPrefix[b] + r / group) and query head kvHead * group + r % group; it attends to keys 0 up
     * to its position, read from the pool through reqToToken (the new tokens' k/v must be there).
     * With a pool of codes (int8 or fp8) the tiles hold the dequantised values (code times scale) in f16. A kernel whose
     * refs bind {@code headDim} (64 or 128) and {@code warps} ({@link #PREFILL_WARPS} or {@link #PREFILL_WIDE_WARPS}).
     */
    public static void prefill(KernelContext ctx, FloatArray out, FloatArray q, NativeArray kPool, NativeArray vPool, FloatArray kScales,
            FloatArray vScales, boolean codes, IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix,
            FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int rowTiles, int window,
            int headDim, int warps) {
        int tileRows = 16 * warps;
        int items = KernelContext.WARP_SIZE * warps;
        int[] kTile = ctx.allocateIntLocalArray(PREFILL_KEYS * TILE_STRIDE);
        int[] vTile = ctx.allocateIntLocalArray(PREFILL_KEYS * TILE_STRIDE);
        int[] slots = new int[PREFILL_KEYS * (MAX_DIM / 8) / (KernelContext.WARP_SIZE * PREFILL_WARPS)];
        int[] qf = new int[MAX_DIM / 16 * 4];
        int[] bf = new int[4];
        int[] pf = new int[4];
        float[] o = new float[MAX_DIM / 8 * 4];
        float[] s = new float[PREFILL_KEYS / 8 * 4];
        float[] x = new float[8];
        float[] state = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int g = lane / 4;
        int t = lane % 4;
        int group = qHeads / kvHeads;
        // the last tiles of a request attend to the most keys: they go first, so that no long one starts last
        int tile = rowTiles - 1 - ctx.groupIdx % rowTiles;
        int kvHead = (ctx.groupIdx / rowTiles) % kvHeads;
        int b = ctx.groupIdx / (rowTiles * kvHeads);
        int pairs = bLen.get(b) * group;
        int flat0 = tile * tileRows;
        if (flat0 < pairs) { // the same for the whole group, so every item meets the same barriers
            int prefix = bPrefix.get(b);
            int first = bStart.get(b);
            int tableRow = reqRows.get(b) * maxLen;
            int stride = headDim / 2 + 4;
            int rowLo = flat0 + warp * 16 + g;
            int rowHi = rowLo + 8;
            boolean validLo = rowLo < pairs;
            boolean validHi = rowHi < pairs;
            int posLo = prefix + rowLo / group;
            int posHi = prefix + rowHi / group;
            int headLo = kvHead * group + rowLo % group;
            int headHi = kvHead * group + rowHi % group;
            int keyEnd = prefix + (Math.min(flat0 + tileRows, pairs) - 1) / group + 1;
            int firstPos = prefix + flat0 / group; // keys up to here are visible to every row of the tile
            // with a sliding window, keys before the first row's window are seen by no row; keys up to
            // the last row's window start are hidden from some
            int firstStep = window > 0 ? Math.max(0, firstPos - window + 1) / PREFILL_KEYS : 0;
            int windowEdge = window > 0 ? keyEnd - window : -1;
            float slopeLo = useAlibi && validLo ? alibiSlopes.get(headLo) * LOG2E : 0f;
            float slopeHi = useAlibi && validHi ? alibiSlopes.get(headHi) * LOG2E : 0f;
            loadQuery(q, qf, validLo, validHi, packedRowAt(first, rowLo, group, qHeads, kvHead, headDim),
                    packedRowAt(first, rowHi, group, qHeads, kvHead, headDim), t, scale * LOG2E, false, headDim);
            state[MAX_LO] = NEG_INF;
            state[MAX_HI] = NEG_INF;
            int steps = (keyEnd + PREFILL_KEYS - 1) / PREFILL_KEYS;
            // the slots of a step's keys serve its K and V copies; the next step's are fetched while
            // this one's scores are computed, so no copy waits on a table load
            int chunks = headDim / 8;
            gatherSlots(slots, reqToToken, tableRow, firstStep * PREFILL_KEYS, keyEnd, PREFILL_KEYS, chunks, ctx.localIdx, items);
            loadTile(ctx, kTile, 0, kPool, kScales, codes, slots, kvHeads, kvHead, PREFILL_KEYS, headDim, stride, ctx.localIdx, items, x);
            ctx.copyAsyncCommit();
            for (int step = firstStep; step < steps; step++) {
                int kb = step * PREFILL_KEYS;
                ctx.copyAsyncWait(0);
                ctx.localBarrier(); // K is in; every warp is done with the last step's V
                loadTile(ctx, vTile, 0, vPool, vScales, codes, slots, kvHeads, kvHead, PREFILL_KEYS, headDim, stride, ctx.localIdx, items,
                        x);
                ctx.copyAsyncCommit();
                gatherSlots(slots, reqToToken, tableRow, kb + PREFILL_KEYS, keyEnd, PREFILL_KEYS, chunks, ctx.localIdx, items);
                scoreKeys(ctx, s, PREFILL_KEYS / 8, qf, bf, kTile, 0, stride, headDim);
                boolean masks = kb + PREFILL_KEYS - 1 > firstPos || kb <= windowEdge;
                // most steps of a long prompt are neither on the diagonal nor at the window's edge: they skip this loop
                // (its 32 positions, compares and int-to-float conversions were a fifth of a step's instructions)
                if (masks || useAlibi) {
                    maskScores(s, posLo, posHi, slopeLo, slopeHi, kb, t, keyEnd, window, masks, useAlibi);
                }
                softmaxStep(ctx, s, PREFILL_KEYS / 8 * 4, state, o, headDim, false);
                ctx.copyAsyncWait(0);
                ctx.localBarrier(); // V is in; every warp is done with K
                if (step + 1 < steps) {
                    loadTile(ctx, kTile, 0, kPool, kScales, codes, slots, kvHeads, kvHead, PREFILL_KEYS, headDim, stride, ctx.localIdx,
                            items, x);
                }
                ctx.copyAsyncCommit();
                accumulateValues(ctx, o, s, PREFILL_KEYS / 16, pf, bf, vTile, 0, stride, headDim);
            }
            storeRows(ctx, out, o, state, validLo ? packedRowAt(first, rowLo, group, qHeads, kvHead, headDim) : -1,
                    validHi ? packedRowAt(first, rowHi, group, qHeads, kvHead, headDim) : -1, t, headDim);
        }
    }

    /**
     * Where packed prefill row {@code flat} of a KV head starts in q and out ([tokens, qHeads, headDim]): the GQA rows of a
     * work-group are (token, query head) pairs, token {@code flat / group} of the request (from {@code first}) and query head
     * {@code kvHead * group + flat % group}.
     */
    static int packedRowAt(int first, int flat, int group, int qHeads, int kvHead, int headDim) {
        return ((first + flat / group) * qHeads + kvHead * group + flat % group) * headDim;
    }

    /**
     * A warp's 16 rows of a prefill's output: this lane's accumulators of rows g (at out[outLo..], -1: a row past the
     * request's) and g + 8 (outHi), each divided by its row's sum of exponentials (the quad's partial sums in state), a pair
     * of adjacent elements a store (8 bytes of f32, 4 of a 16-bit out: a quad's stores fill whole 32-byte sectors).
     */
    static void storeRows(KernelContext ctx, NativeArray out, float[] o, float[] state, int outLo, int outHi, int t, int headDim) {
        float lLo = quadSum(ctx, state[SUM_LO]);
        float lHi = quadSum(ctx, state[SUM_HI]);
        float[] pair = new float[2];
        for (int nt = 0; nt < headDim / 8; nt++) {
            int d = 8 * nt + 2 * t;
            if (outLo >= 0) {
                pair[0] = o[4 * nt] / lLo;
                pair[1] = o[4 * nt + 1] / lLo;
                out.setFloats(outLo + d, pair, 0, 2);
            }
            if (outHi >= 0) {
                pair[0] = o[4 * nt + 2] / lHi;
                pair[1] = o[4 * nt + 3] / lHi;
                out.setFloats(outHi + d, pair, 0, 2);
            }
        }
    }

    /**
     * The causal, window and key-end masks and the ALiBi bias (in exp2's domain) of one 16-row tile's scores over the 64
     * keys from kb: element i belongs to row g (position posLo) when i % 4 < 2, else to row g + 8 (posHi).
     */
    static void maskScores(float[] s, int posLo, int posHi, float slopeLo, float slopeHi, int kb, int t, int keyEnd, int window,
            boolean masks, boolean useAlibi) {
        for (int i = 0; i < PREFILL_KEYS / 8 * 4; i++) {
            boolean lo = i % 4 < 2;
            int key = kb + 8 * (i / 4) + 2 * t + i % 2;
            int pos = lo ? posLo : posHi;
            float v = useAlibi ? s[i] + (lo ? slopeLo : slopeHi) * (key - pos) : s[i];
            if (masks && (key > pos || key >= keyEnd || (window > 0 && key <= pos - window))) {
                v = NEG_INF;
            }
            s[i] = v;
        }
    }

    /**
     * Starts a decode step's copies into stage {@code stage} of the pipeline: K and V rows as f16
     * tiles, or an int8 or fp8 pool's raw codes.
     */
    private static void loadDecodeStep(KernelContext ctx, boolean codes, int stage, int[] slots, int[] kTiles, int[] vTiles, NativeArray kPool,
            NativeArray vPool, FloatArray kScales, FloatArray vScales, int kvHeads, int kvHead, int headDim, int stride, int lane, float[] x) {
        if (codes) {
            int rawTile = DECODE_STEP * headDim / 4;
            loadRaw(ctx, kTiles, stage * rawTile, kPool, slots, kvHeads, kvHead, headDim, lane);
            loadRaw(ctx, vTiles, stage * rawTile, vPool, slots, kvHeads, kvHead, headDim, lane);
        } else {
            int tile = DECODE_STEP * stride;
            loadTile(ctx, kTiles, stage * tile, kPool, kScales, false, slots, kvHeads, kvHead, DECODE_STEP, headDim, stride, lane,
                    KernelContext.WARP_SIZE, x);
            loadTile(ctx, vTiles, stage * tile, vPool, vScales, false, slots, kvHeads, kvHead, DECODE_STEP, headDim, stride, lane,
                    KernelContext.WARP_SIZE, x);
        }
    }

    /**
     * The pool slots of the rows of a decode step this lane copies (slots[k] for its k-th copy, {@code chunks} copies a
     * row), from the warp's slot ring at {@code at} ({@link #DECODE_RING}).
     */
    private static void ringSlots(int[] slots, int[] slotRing, int at, int chunks, int lane) {
        for (int k = 0; k < DECODE_STEP * chunks / KernelContext.WARP_SIZE; k++) {
            slots[k] = slotRing[at + (lane + k * KernelContext.WARP_SIZE) / chunks];
        }
    }

    /**
     * The pool slots of the rows a work-item copies in a tile of {@code rows} keys from {@code kb}
     * ({@code item} of {@code items} taking part, {@code chunks} copies a row, rows * chunks a
     * multiple of items): slots[k] for its k-th copy, -1 past {@code keyEnd}. Gathered before any
     * copy starts, the table loads are in flight together: read inside the copy loop, each waited
     * for the last (an asynchronous copy orders the memory accesses around it), a work-item paid
     * the latency of a global load once per row, on every step.
     */
    private static void gatherSlots(int[] slots, IntArray reqToToken, int tableRow, int kb, int keyEnd, int rows, int chunks, int item,
            int items) {
        for (int k = 0; k < rows * chunks / items; k++) {
            int r = (item + k * items) / chunks;
            slots[k] = kb + r < keyEnd ? reqToToken.get(tableRow + kb + r) : -1;
        }
    }

    /**
     * Fills {@code rows} rows of a tile at {@code tile[at]} with keys {@code kb..} of one KV head, a
     * row per key, 16 bytes a work-item at a time ({@code item} of {@code items} taking part, the
     * rows' slots from {@link #gatherSlots} with {@code headDim / 8} chunks): asynchronous copies of
     * f16 rows; int8 or fp8 codes are scaled and packed to f16; rows past the keys are zero (finite, so
     * that a masked key's zero weight stays zero).
     */
    private static void loadTile(KernelContext ctx, int[] tile, int at, NativeArray pool, FloatArray scales, boolean codes, int[] slots,
            int kvHeads, int kvHead, int rows, int headDim, int stride, int item, int items, float[] x) {
        int chunks = headDim / 8;
        for (int k = 0; k < rows * chunks / items; k++) {
            int i = item + k * items;
            int r = i / chunks;
            int c = i % chunks;
            int to = at + r * stride + c * 4;
            int slot = slots[k];
            if (slot >= 0) {
                int src = (slot * kvHeads + kvHead) * headDim + c * 8;
                if (codes) {
                    pool.getFloats(src, x, 0, 8);
                    float sc = scales.get(slot * kvHeads + kvHead);
                    tile[to] = KMath.packHalf2(x[0] * sc, x[1] * sc);
                    tile[to + 1] = KMath.packHalf2(x[2] * sc, x[3] * sc);
                    tile[to + 2] = KMath.packHalf2(x[4] * sc, x[5] * sc);
                    tile[to + 3] = KMath.packHalf2(x[6] * sc, x[7] * sc);
                } else {
                    ctx.copyAsync(tile, to, pool, src);
                }
            } else {
                tile[to] = 0;
                tile[to + 1] = 0;
                tile[to + 2] = 0;
                tile[to + 3] = 0;
            }
        }
    }

    /**
     * Starts copying a decode step's 16 rows of int8 or fp8 codes, raw, into {@code raw[at..]} (16 codes an
     * asynchronous copy, rows of headDim / 4 ints, each row's 16-byte chunks placed by {@link #rawChunk};
     * the rows' slots from {@link #ringSlots} with {@code headDim / 16} chunks); rows past the keys are zero.
     */
    private static void loadRaw(KernelContext ctx, int[] raw, int at, NativeArray pool, int[] slots, int kvHeads, int kvHead, int headDim,
            int lane) {
        int chunks = headDim / 16;
        for (int k = 0; k < DECODE_STEP * chunks / KernelContext.WARP_SIZE; k++) {
            int i = lane + k * KernelContext.WARP_SIZE;
            int r = i / chunks;
            int c = i % chunks;
            int to = at + r * (headDim / 4) + rawChunk(r, c, chunks) * 4;
            int slot = slots[k];
            if (slot >= 0) {
                ctx.copyAsync(raw, to, pool, (slot * kvHeads + kvHead) * headDim + c * 16);
            } else {
                raw[to] = 0;
                raw[to + 1] = 0;
                raw[to + 2] = 0;
                raw[to + 3] = 0;
            }
        }
    }

    /**
     * Where 16-byte chunk c of row r of a code tile lies in its row ({@code chunks} a row): swizzled so that
     * the fragment reads of {@link #scoreCodes} (rows g and g + 1, chunks t) and {@link #accumulateCodes}
     * (rows 2t, chunks g) hit distinct banks in each phase of a warp's 16-byte loads at head dimension
     * 128 (64: half of them). Plain rows put the four rows 2t of a V read on the same banks.
     */
    private static int rawChunk(int r, int c, int chunks) {
        return c ^ ((r & 6 ^ (r & 1) << 2) & (chunks - 1));
    }

    /**
     * Q Kᵀ of the warp's query rows and a step's 16 keys straight from their int8 or fp8 codes: each
     * lane reads its key row's codes (row g of n tile j; chunks t, t + 4 of the row) and converts them
     * into B fragments in registers. Lane t's k-slots 2t, 2t + 1, 2t + 8, 2t + 9 of k16 step st are
     * the four codes of one word, dims 64 (st / 4) + 16 t + 4 (st % 4) + 0..3, the order
     * {@link #loadQuery} gives the query fragments (a dot product does not mind the order of its
     * terms). No f16 copy of the tile, no barrier: the old path converted every code into a local f16
     * tile first and held int8 pools to 23-34 % of the copy rate on an H100.
     */
    private static void scoreCodes(KernelContext ctx, float[] s, int[] qf, int[] bf, int[] words, int[] raw, int at, boolean fp8,
            int headDim, int g, int t) {
        clear(s, 8);
        int rowInts = headDim / 4;
        int chunks = headDim / 16;
        for (int j = 0; j < 2; j++) {
            int r = 8 * j + g;
            for (int m = 0; m < headDim / 64; m++) {
                int from = at + r * rowInts + 4 * rawChunk(r, 4 * m + t, chunks);
                words[4 * m] = raw[from];
                words[4 * m + 1] = raw[from + 1];
                words[4 * m + 2] = raw[from + 2];
                words[4 * m + 3] = raw[from + 3];
            }
            for (int st = 0; st < headDim / 16; st++) {
                bf[0] = fp8 ? KMath.e4m3x2ToHalf2(words[st], 0) : KMath.int8x2ToHalf2(words[st], 0);
                bf[1] = fp8 ? KMath.e4m3x2ToHalf2(words[st], 1) : KMath.int8x2ToHalf2(words[st], 1);
                ctx.mmaF16(s, 4 * j, qf, 4 * st, bf, 0);
            }
        }
    }

    /**
     * O += P V over a step's 16 keys straight from the values' codes. Lane (g, t) reads rows 2t, 2t + 1,
     * 2t + 8 and 2t + 9 (its B fragments' k rows), headDim / 8 codes of each from byte g headDim / 8: byte
     * j of them is column g of n tile j, dim g headDim / 8 + j; pairing each byte of one row with the same
     * byte of the next ({@link KMath#bytePerm}) gives the fragment's halves. Each value's row scale
     * multiplies its probability instead of its codes (4 products a lane, not headDim / 4), after the
     * softmax's sums have been taken. The accumulators hold dims in that order: column c of n tile nt is
     * dim c headDim / 8 + nt.
     */
    private static void accumulateCodes(KernelContext ctx, float[] o, float[] s, int[] pf, int[] bf, int[] words, int[] raw, int at,
            float[] rowScales, int scaleAt, boolean fp8, int headDim, int g, int t) {
        float sc0 = rowScales[scaleAt + 2 * t];
        float sc1 = rowScales[scaleAt + 2 * t + 1];
        float sc8 = rowScales[scaleAt + 2 * t + 8];
        float sc9 = rowScales[scaleAt + 2 * t + 9];
        pf[0] = KMath.packHalf2(s[0] * sc0, s[1] * sc1);
        pf[1] = KMath.packHalf2(s[2] * sc0, s[3] * sc1);
        pf[2] = KMath.packHalf2(s[4] * sc8, s[5] * sc9);
        pf[3] = KMath.packHalf2(s[6] * sc8, s[7] * sc9);
        int rowInts = headDim / 4;
        int chunks = headDim / 16;
        int perRow = headDim / 32; // words of a row a lane reads
        for (int i = 0; i < 4; i++) {
            int r = 2 * t + i % 2 + 8 * (i / 2);
            int word = g * perRow; // the lane's first word of the row, unswizzled
            int from = at + r * rowInts + 4 * rawChunk(r, word / 4, chunks) + word % 4;
            for (int w = 0; w < perRow; w++) {
                words[i * perRow + w] = raw[from + w];
            }
        }
        for (int w = 0; w < perRow; w++) {
            // rows 2t and 2t + 1 (k 2t, 2t + 1) and rows 2t + 8, 2t + 9 (k 2t + 8, 2t + 9), bytes 0 and 1, then 2 and 3
            int lo01 = KMath.bytePerm(words[w], words[perRow + w], 0x5140);
            int lo23 = KMath.bytePerm(words[w], words[perRow + w], 0x7362);
            int hi01 = KMath.bytePerm(words[2 * perRow + w], words[3 * perRow + w], 0x5140);
            int hi23 = KMath.bytePerm(words[2 * perRow + w], words[3 * perRow + w], 0x7362);
            for (int n = 0; n < 4; n++) {
                int lo = n < 2 ? lo01 : lo23;
                int hi = n < 2 ? hi01 : hi23;
                bf[0] = fp8 ? KMath.e4m3x2ToHalf2(lo, n % 2) : KMath.int8x2ToHalf2(lo, n % 2);
                bf[1] = fp8 ? KMath.e4m3x2ToHalf2(hi, n % 2) : KMath.int8x2ToHalf2(hi, n % 2);
                ctx.mmaF16(o, 4 * (4 * w + n), pf, 0, bf, 0);
            }
        }
    }

    /**
     * A warp's query fragments (A, rows g and g + 8 of lane (g, t)) from f32 rows at {@code lo} and
     * {@code hi} of q, scaled by {@code scale} and packed to f16; a row that is not valid is zero. The
     * k16 step st takes dims 16 st + 2t, +1, +8, +9 (as the matrix loads give K), or with {@code codes}
     * dims 64 (st / 4) + 16 t + 4 (st % 4) + 0..3 (as {@link #scoreCodes} reads the codes).
     */
    private static void loadQuery(FloatArray q, int[] qf, boolean validLo, boolean validHi, int lo, int hi, int t, float scale, boolean codes,
            int headDim) {
        for (int st = 0; st < headDim / 16; st++) {
            int c = codes ? 64 * (st / 4) + 16 * t + 4 * (st % 4) : 16 * st + 2 * t;
            int c2 = codes ? c + 2 : c + 8;
            qf[st * 4] = validLo ? KMath.packHalf2(q.get(lo + c) * scale, q.get(lo + c + 1) * scale) : 0;
            qf[st * 4 + 1] = validHi ? KMath.packHalf2(q.get(hi + c) * scale, q.get(hi + c + 1) * scale) : 0;
            qf[st * 4 + 2] = validLo ? KMath.packHalf2(q.get(lo + c2) * scale, q.get(lo + c2 + 1) * scale) : 0;
            qf[st * 4 + 3] = validHi ? KMath.packHalf2(q.get(hi + c2) * scale, q.get(hi + c2 + 1) * scale) : 0;
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    /** Where a kernel keeps its online-softmax state in a private float[4]: running max and sum of rows g and g + 8. */
    static final int MAX_LO = 0;
    static final int MAX_HI = 1;
    static final int SUM_LO = 2;
    static final int SUM_HI = 3;

    /**
     * Q Kᵀ for {@code nTiles} n8 tiles of keys (tile rows 8j.. of the K tile at {@code tile[at]}) into
     * s[4j..4j + 3], walking the head dimension 32 at a time (one matrix load feeds two MMAs).
     */
    private static void scoreKeys(KernelContext ctx, float[] s, int nTiles, int[] qf, int[] bf, int[] tile, int at, int stride, int headDim) {
        clear(s, 4 * nTiles);
        for (int j = 0; j < nTiles; j++) {
            for (int st2 = 0; st2 < headDim / 32; st2++) {
                ctx.loadMatrixB(bf, 0, tile, at + 8 * j * stride + 16 * st2, stride);
                ctx.mmaF16(s, 4 * j, qf, 8 * st2, bf, 0);
                ctx.mmaF16(s, 4 * j, qf, 8 * st2 + 4, bf, 2);
            }
        }
    }

    /**
     * One step of the online softmax (FlashAttention-2) over scores s[0..n) in exp2's domain, masked
     * ones -inf; element i belongs to row g when i % 4 < 2, else to row g + 8 (the accumulator
     * layout). Updates the running maxes and sums in {@code state}, turns s into probabilities
     * against the new maxes, and rescales the output accumulators {@code o} by how much the maxes
     * grew; with {@code skipUnmoved} (decode), not where no row's max moved (the factor is exactly 1). Prefill rescales
     * every step: the skip measured 3 % slower there at 4,096 tokens on an H100 (203.6 against 209.0 TFLOP/s, session 18).
     * A row that has seen no key yet keeps max -inf and gets nothing.
     */
    static void softmaxStep(KernelContext ctx, float[] s, int n, float[] state, float[] o, int headDim, boolean skipUnmoved) {
        float maxLo = NEG_INF;
        float maxHi = NEG_INF;
        for (int i = 0; i < n; i++) {
            if (i % 4 < 2) {
                maxLo = KMath.max(maxLo, s[i]);
            } else {
                maxHi = KMath.max(maxHi, s[i]);
            }
        }
        float oldLo = state[MAX_LO];
        float oldHi = state[MAX_HI];
        float newLo = KMath.max(oldLo, quadMax(ctx, maxLo));
        float newHi = KMath.max(oldHi, quadMax(ctx, maxHi));
        float corrLo = oldLo == NEG_INF ? 0f : KMath.exp2(oldLo - newLo);
        float corrHi = oldHi == NEG_INF ? 0f : KMath.exp2(oldHi - newHi);
        // a row with no key yet subtracts 0 instead of its max -inf, so its -inf scores give exp2(-inf) = 0 (not NaN)
        // without a test per score (FlashAttention-2's way)
        float baseLo = newLo == NEG_INF ? 0f : newLo;
        float baseHi = newHi == NEG_INF ? 0f : newHi;
        float sumLo = 0f;
        float sumHi = 0f;
        for (int i = 0; i < n; i++) {
            boolean lo = i % 4 < 2;
            float p = KMath.exp2(s[i] - (lo ? baseLo : baseHi));
            if (lo) {
                sumLo += p;
            } else {
                sumHi += p;
            }
            s[i] = p;
        }
        state[MAX_LO] = newLo;
        state[MAX_HI] = newHi;
        state[SUM_LO] = state[SUM_LO] * corrLo + sumLo;
        state[SUM_HI] = state[SUM_HI] * corrHi + sumHi;
        if (!skipUnmoved || corrLo != 1f || corrHi != 1f) { // a warp runs them while any of its rows needs them
            for (int nt = 0; nt < headDim / 8; nt++) {
                o[4 * nt] *= corrLo;
                o[4 * nt + 1] *= corrLo;
                o[4 * nt + 2] *= corrHi;
                o[4 * nt + 3] *= corrHi;
            }
        }
    }

    /**
     * O += P V over {@code kSteps} k16 steps of keys: the probabilities of n tiles 2kk and 2kk + 1 are
     * the A fragment of keys 16kk..16kk + 15, whose V rows start at {@code tile[at + 16 kk rows]}.
     */
    private static void accumulateValues(KernelContext ctx, float[] o, float[] s, int kSteps, int[] pf, int[] bf, int[] tile, int at, int stride,
            int headDim) {
        for (int kk = 0; kk < kSteps; kk++) {
            pf[0] = KMath.packHalf2(s[8 * kk], s[8 * kk + 1]);
            pf[1] = KMath.packHalf2(s[8 * kk + 2], s[8 * kk + 3]);
            pf[2] = KMath.packHalf2(s[8 * kk + 4], s[8 * kk + 5]);
            pf[3] = KMath.packHalf2(s[8 * kk + 6], s[8 * kk + 7]);
            for (int nt2 = 0; nt2 < headDim / 16; nt2++) {
                ctx.loadMatrixBTransposed(bf, 0, tile, at + 16 * kk * stride + 8 * nt2, stride);
                ctx.mmaF16(o, 8 * nt2, pf, 0, bf, 0);
                ctx.mmaF16(o, 8 * nt2 + 4, pf, 0, bf, 2);
            }
        }
    }

    /** The max over the four lanes of a quad (the lanes that hold one row of an accumulator). */
    private static float quadMax(KernelContext ctx, float v) {
        float m = KMath.max(v, ctx.warpShuffleXor(v, 1));
        return KMath.max(m, ctx.warpShuffleXor(m, 2));
    }

    static float quadSum(KernelContext ctx, float v) {
        float s = v + ctx.warpShuffleXor(v, 1);
        return s + ctx.warpShuffleXor(s, 2);
    }

    private static void clear(float[] a, int n) {
        for (int i = 0; i < n; i++) {
            a[i] = 0f;
        }
    }
}
