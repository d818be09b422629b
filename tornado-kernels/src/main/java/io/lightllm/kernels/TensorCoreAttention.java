package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;

/**
 * Token attention on tensor cores (f16 MMA, f32 accumulators), for KV pools of f16 or int8 codes:
 * the kernels {@link Attention}'s launchers pick where the device's tuning asks for them. Both
 * keep a warp's queries in registers as MMA fragments, score 16 keys per MMA step, and keep the
 * softmax online (FlashAttention-2): running row max and sum per query, the output rescaled as the
 * max grows, scores in exp2's domain (queries pre-scaled by log2 e).
 *
 * <ul>
 *   <li><b>Decode</b> (flash-decoding): one warp per (request, KV head, up to 16 of its query heads,
 *       split of the context). The query heads that share a KV head are the rows of the MMA, so each
 *       key and value is read once for all of them (GQA, MQA). Keys and values go from the pool
 *       straight into registers, 16 bytes a load, no local memory: a lane reads the 16-byte chunks
 *       that its fragments need once the head dimension is permuted (a dot product does not care
 *       about the order of its terms, and the output is written back in the true order).</li>
 *   <li><b>Prefill</b> (FlashAttention-2): a work-group of four warps per (request, KV head, tile of
 *       64 query rows, each row a (token, query head) pair of the KV head's group), 64 keys a step
 *       through two local tiles that asynchronous copies fill; K's tile loads while P V of the
 *       last step runs, V's while Q K^T runs. Causal, with an optional cached prefix: queries are
 *       the new tokens, keys are the prefix and the new tokens.</li>
 * </ul>
 *
 * <p>The head dimension must be a constant for the fragment arrays to stay in registers, so each
 * kernel has an entry point per supported head dimension (64, 128) over one body.
 */
public final class TensorCoreAttention {
    /** Query heads of one KV head a decode warp serves: the MMA's 16 rows. */
    public static final int DECODE_ROWS = 16;
    /** Keys a decode warp takes per step: one k16 step of P V. */
    public static final int DECODE_STEP = 16;
    /** Query rows ((token, head) pairs) of a prefill work-group: 16 per warp. */
    public static final int PREFILL_ROWS = 64;
    /** Keys per prefill step. */
    public static final int PREFILL_KEYS = 64;
    /** Work-items of a prefill work-group: four warps. */
    public static final int PREFILL_LOCAL = 128;
    /** Largest head dimension (the fragment arrays are sized for it). */
    static final int MAX_DIM = 128;
    /** Ints per row of a prefill K/V tile: 128 halves and 8 of padding, so that ldmatrix's 8 rows fall on distinct banks. */
    private static final int TILE_STRIDE = MAX_DIM / 2 + 4;

    private static final float LOG2E = 1.4426950408889634f;
    private static final float LN2 = 0.6931471805599453f;
    private static final float NEG_INF = Float.NEGATIVE_INFINITY;

    private TensorCoreAttention() {
    }

    /** Whether these kernels serve a head dimension. */
    public static boolean supportsHeadDim(int headDim) {
        return headDim == 64 || headDim == 128;
    }

    // ---- decode ------------------------------------------------------------------------------------

    public static void decodeD64(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, FloatArray q,
            NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales, boolean int8, IntArray reqToToken,
            IntArray reqRows, IntArray seqLen, FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen,
            int splits, int splitLen, boolean direct) {
        decode(ctx, partialAcc, partialMax, partialSum, q, kPool, vPool, kScales, vScales, int8, reqToToken, reqRows, seqLen, alibiSlopes,
                useAlibi, scale, qHeads, kvHeads, maxLen, splits, splitLen, direct, 64);
    }

    public static void decodeD128(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, FloatArray q,
            NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales, boolean int8, IntArray reqToToken,
            IntArray reqRows, IntArray seqLen, FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen,
            int splits, int splitLen, boolean direct) {
        decode(ctx, partialAcc, partialMax, partialSum, q, kPool, vPool, kScales, vScales, int8, reqToToken, reqRows, seqLen, alibiSlopes,
                useAlibi, scale, qHeads, kvHeads, maxLen, splits, splitLen, direct, 128);
    }

    /**
     * One warp (a work-group of 32) per unit {@code ((b * kvHeads + kvHead) * chunks + chunk) * splits + split},
     * chunks = ceil((qHeads / kvHeads) / 16). Writes what {@link Attention#decodeAttentionPartial}
     * writes for each of its query heads (split max, sum of exp, unnormalised accumulator), for
     * {@link Attention#decodeAttentionMerge} to merge; with {@code direct} (one split) the normalised
     * output itself, into {@code partialAcc} as [batch, qHeads, headDim].
     *
     * <p>Fragments: query heads are the A rows (row g and g + 8 of lane (g, t)); keys kb + 8j + g
     * are the B columns of score tile j; a k16 step's B pairs (2t.., 2t + 8..) are the words of one
     * 16-byte chunk of the key row, chunk 4 jj + t feeding steps 2 jj and 2 jj + 1, and the queries are
     * packed the same way. For P V the keys are the k dimension (2t, 2t + 1, 2t + 8, 2t + 9) and
     * column g of n tile nt is dimension 8 (g + 8 (nt / 8)) + nt % 8: lane (g, t) reads chunk
     * g + 8 h of each of its four value rows.
     */
    private static void decode(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax, FloatArray partialSum, FloatArray q,
            NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales, boolean int8, IntArray reqToToken,
            IntArray reqRows, IntArray seqLen, FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen,
            int splits, int splitLen, boolean direct, int headDim) {
        int[] qf = new int[MAX_DIM / 16 * 4];
        int[] kf = new int[2 * (MAX_DIM / 16) * 2];
        int[] vf = new int[MAX_DIM / 8 * 2];
        float[] o = new float[MAX_DIM / 8 * 4];
        float[] s = new float[8];
        int[] pf = new int[4];
        float[] x = new float[8];
        float[] y = new float[8];
        int lane = ctx.laneId();
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
        int start = split * splitLen;
        if (start < len) { // the same for the whole warp
            int end = Math.min(len, start + splitLen);
            int tableRow = reqRows.get(b) * maxLen;
            int rows = Math.min(DECODE_ROWS, group - chunk * DECODE_ROWS);
            int head0 = kvHead * group + chunk * DECODE_ROWS;
            float slopeLo = useAlibi && g < rows ? alibiSlopes.get(head0 + g) * LOG2E : 0f;
            float slopeHi = useAlibi && g + 8 < rows ? alibiSlopes.get(head0 + g + 8) * LOG2E : 0f;
            float qScale = scale * LOG2E;
            for (int jj = 0; jj < headDim / 32; jj++) {
                for (int half = 0; half < 2; half++) {
                    int row = g + 8 * half;
                    if (row < rows) {
                        q.getFloats((b * qHeads + head0 + row) * headDim + (4 * jj + t) * 8, x, 0, 8);
                    } else {
                        clear(x, 8);
                    }
                    for (int hs = 0; hs < 2; hs++) {
                        int st = 2 * jj + hs;
                        qf[st * 4 + half] = KMath.packHalf2(x[4 * hs] * qScale, x[4 * hs + 1] * qScale);
                        qf[st * 4 + half + 2] = KMath.packHalf2(x[4 * hs + 2] * qScale, x[4 * hs + 3] * qScale);
                    }
                }
            }
            float mLo = NEG_INF;
            float mHi = NEG_INF;
            float lLo = 0f;
            float lHi = 0f;
            for (int kb = start; kb < end; kb += DECODE_STEP) {
                // keys past the split's end read the last key (finite values) and are masked below
                for (int j = 0; j < 2; j++) {
                    int base = (reqToToken.get(tableRow + Math.min(kb + 8 * j + g, end - 1)) * kvHeads + kvHead) * headDim;
                    for (int jj = 0; jj < headDim / 32; jj++) {
                        kPool.getFloats(base + (4 * jj + t) * 8, x, 0, 8);
                        int at = (j * (headDim / 16) + 2 * jj) * 2;
                        kf[at] = KMath.packHalf2(x[0], x[1]);
                        kf[at + 1] = KMath.packHalf2(x[2], x[3]);
                        kf[at + 2] = KMath.packHalf2(x[4], x[5]);
                        kf[at + 3] = KMath.packHalf2(x[6], x[7]);
                    }
                }
                for (int kk = 0; kk < 2; kk++) {
                    int key = kb + 8 * kk + 2 * t;
                    int baseLo = (reqToToken.get(tableRow + Math.min(key, end - 1)) * kvHeads + kvHead) * headDim;
                    int baseHi = (reqToToken.get(tableRow + Math.min(key + 1, end - 1)) * kvHeads + kvHead) * headDim;
                    for (int h = 0; h < headDim / 64; h++) {
                        vPool.getFloats(baseLo + (g + 8 * h) * 8, x, 0, 8);
                        vPool.getFloats(baseHi + (g + 8 * h) * 8, y, 0, 8);
                        for (int i = 0; i < 8; i++) {
                            vf[(8 * h + i) * 2 + kk] = KMath.packHalf2(x[i], y[i]);
                        }
                    }
                }
                clear(s, 8);
                for (int j = 0; j < 2; j++) {
                    for (int st = 0; st < headDim / 16; st++) {
                        ctx.mmaF16(s, 4 * j, qf, 4 * st, kf, (j * (headDim / 16) + st) * 2);
                    }
                }
                float maxLo = NEG_INF;
                float maxHi = NEG_INF;
                for (int i = 0; i < 8; i++) {
                    int key = kb + 8 * (i / 4) + 2 * t + i % 2;
                    float v = s[i];
                    if (int8) {
                        v *= kScales.get(reqToToken.get(tableRow + Math.min(key, end - 1)) * kvHeads + kvHead);
                    }
                    v = key < end ? v + (i % 4 < 2 ? slopeLo : slopeHi) * (key - (len - 1)) : NEG_INF;
                    s[i] = v;
                    if (i % 4 < 2) {
                        maxLo = KMath.max(maxLo, v);
                    } else {
                        maxHi = KMath.max(maxHi, v);
                    }
                }
                maxLo = quadMax(ctx, maxLo);
                maxHi = quadMax(ctx, maxHi);
                float newLo = KMath.max(mLo, maxLo);
                float newHi = KMath.max(mHi, maxHi);
                float corrLo = mLo == NEG_INF ? 0f : KMath.exp2(mLo - newLo);
                float corrHi = mHi == NEG_INF ? 0f : KMath.exp2(mHi - newHi);
                mLo = newLo;
                mHi = newHi;
                float sumLo = 0f;
                float sumHi = 0f;
                for (int i = 0; i < 8; i++) {
                    boolean lo = i % 4 < 2;
                    float p = s[i] == NEG_INF ? 0f : KMath.exp2(s[i] - (lo ? newLo : newHi));
                    if (lo) {
                        sumLo += p;
                    } else {
                        sumHi += p;
                    }
                    if (int8) {
                        // the value scale weighs the value rows, not the softmax sum
                        int key = kb + 8 * (i / 4) + 2 * t + i % 2;
                        p *= vScales.get(reqToToken.get(tableRow + Math.min(key, end - 1)) * kvHeads + kvHead);
                    }
                    s[i] = p;
                }
                lLo = lLo * corrLo + sumLo;
                lHi = lHi * corrHi + sumHi;
                pf[0] = KMath.packHalf2(s[0], s[1]);
                pf[1] = KMath.packHalf2(s[2], s[3]);
                pf[2] = KMath.packHalf2(s[4], s[5]);
                pf[3] = KMath.packHalf2(s[6], s[7]);
                for (int nt = 0; nt < headDim / 8; nt++) {
                    o[4 * nt] *= corrLo;
                    o[4 * nt + 1] *= corrLo;
                    o[4 * nt + 2] *= corrHi;
                    o[4 * nt + 3] *= corrHi;
                    ctx.mmaF16(o, 4 * nt, pf, 0, vf, 2 * nt);
                }
            }
            lLo = quadSum(ctx, lLo);
            lHi = quadSum(ctx, lHi);
            for (int nt = 0; nt < headDim / 8; nt++) {
                for (int e = 0; e < 4; e++) {
                    int row = g + 8 * (e / 2);
                    if (row < rows) {
                        int d = 8 * (2 * t + e % 2 + 8 * (nt / 8)) + nt % 8;
                        int bh = b * qHeads + head0 + row;
                        if (direct) {
                            partialAcc.set(bh * headDim + d, o[4 * nt + e] / (e < 2 ? lLo : lHi));
                        } else {
                            partialAcc.set((bh * splits + split) * headDim + d, o[4 * nt + e]);
                        }
                    }
                }
            }
            if (!direct && t == 0) {
                // the merge works in natural logarithms: m ln 2
                if (g < rows) {
                    int part = (b * qHeads + head0 + g) * splits + split;
                    partialMax.set(part, mLo * LN2);
                    partialSum.set(part, lLo);
                }
                if (g + 8 < rows) {
                    int part = (b * qHeads + head0 + g + 8) * splits + split;
                    partialMax.set(part, mHi * LN2);
                    partialSum.set(part, lHi);
                }
            }
        }
    }

    // ---- prefill -----------------------------------------------------------------------------------

    public static void prefillD64(KernelContext ctx, FloatArray out, FloatArray q, NativeArray kPool, NativeArray vPool, FloatArray kScales,
            FloatArray vScales, boolean int8, IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix,
            FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int rowTiles) {
        prefill(ctx, out, q, kPool, vPool, kScales, vScales, int8, reqToToken, reqRows, bStart, bLen, bPrefix, alibiSlopes, useAlibi, scale,
                qHeads, kvHeads, maxLen, rowTiles, 64);
    }

    public static void prefillD128(KernelContext ctx, FloatArray out, FloatArray q, NativeArray kPool, NativeArray vPool, FloatArray kScales,
            FloatArray vScales, boolean int8, IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix,
            FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int rowTiles) {
        prefill(ctx, out, q, kPool, vPool, kScales, vScales, int8, reqToToken, reqRows, bStart, bLen, bPrefix, alibiSlopes, useAlibi, scale,
                qHeads, kvHeads, maxLen, rowTiles, 128);
    }

    /**
     * One work-group of {@link #PREFILL_LOCAL} per (request b, KV head, tile of {@link #PREFILL_ROWS}
     * rows), group index {@code (b * kvHeads + kvHead) * rowTiles + tile}. Row r of request b's
     * KV head is new token r / group (packed row bStart[b] + r / group of q and out, position
     * bPrefix[b] + r / group) and query head kvHead * group + r % group; it attends to keys 0 up
     * to its position, read from the pool through reqToToken (the new tokens' k/v must be there).
     * With an int8 pool the tiles hold the dequantised values (code times scale) in f16.
     */
    private static void prefill(KernelContext ctx, FloatArray out, FloatArray q, NativeArray kPool, NativeArray vPool, FloatArray kScales,
            FloatArray vScales, boolean int8, IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix,
            FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int maxLen, int rowTiles, int headDim) {
        int[] kTile = ctx.allocateIntLocalArray(PREFILL_KEYS * TILE_STRIDE);
        int[] vTile = ctx.allocateIntLocalArray(PREFILL_KEYS * TILE_STRIDE);
        int[] qf = new int[MAX_DIM / 16 * 4];
        int[] bf = new int[4];
        int[] pf = new int[4];
        float[] o = new float[MAX_DIM / 8 * 4];
        float[] s = new float[PREFILL_KEYS / 8 * 4];
        float[] x = new float[8];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int g = lane / 4;
        int t = lane % 4;
        int group = qHeads / kvHeads;
        int tile = ctx.groupIdx % rowTiles;
        int kvHead = (ctx.groupIdx / rowTiles) % kvHeads;
        int b = ctx.groupIdx / (rowTiles * kvHeads);
        int pairs = bLen.get(b) * group;
        int flat0 = tile * PREFILL_ROWS;
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
            int keyEnd = prefix + (Math.min(flat0 + PREFILL_ROWS, pairs) - 1) / group + 1;
            int firstPos = prefix + flat0 / group; // keys up to here are visible to every row of the tile
            float slopeLo = useAlibi && validLo ? alibiSlopes.get(headLo) * LOG2E : 0f;
            float slopeHi = useAlibi && validHi ? alibiSlopes.get(headHi) * LOG2E : 0f;
            float qScale = scale * LOG2E;
            int qLo = ((first + rowLo / group) * qHeads + headLo) * headDim;
            int qHi = ((first + rowHi / group) * qHeads + headHi) * headDim;
            for (int st = 0; st < headDim / 16; st++) {
                int c = 16 * st + 2 * t;
                qf[st * 4] = validLo ? KMath.packHalf2(q.get(qLo + c) * qScale, q.get(qLo + c + 1) * qScale) : 0;
                qf[st * 4 + 1] = validHi ? KMath.packHalf2(q.get(qHi + c) * qScale, q.get(qHi + c + 1) * qScale) : 0;
                qf[st * 4 + 2] = validLo ? KMath.packHalf2(q.get(qLo + c + 8) * qScale, q.get(qLo + c + 9) * qScale) : 0;
                qf[st * 4 + 3] = validHi ? KMath.packHalf2(q.get(qHi + c + 8) * qScale, q.get(qHi + c + 9) * qScale) : 0;
            }
            float mLo = NEG_INF;
            float mHi = NEG_INF;
            float lLo = 0f;
            float lHi = 0f;
            int steps = (keyEnd + PREFILL_KEYS - 1) / PREFILL_KEYS;
            loadTile(ctx, kTile, kPool, kScales, int8, reqToToken, tableRow, kvHeads, kvHead, 0, keyEnd, headDim, stride, x);
            ctx.copyAsyncCommit();
            for (int step = 0; step < steps; step++) {
                int kb = step * PREFILL_KEYS;
                ctx.copyAsyncWait(0);
                ctx.localBarrier(); // K is in; every warp is done with the last step's V
                loadTile(ctx, vTile, vPool, vScales, int8, reqToToken, tableRow, kvHeads, kvHead, kb, keyEnd, headDim, stride, x);
                ctx.copyAsyncCommit();
                clear(s, PREFILL_KEYS / 8 * 4);
                for (int j = 0; j < PREFILL_KEYS / 8; j++) {
                    for (int st2 = 0; st2 < headDim / 32; st2++) {
                        ctx.loadMatrixB(bf, 0, kTile, 8 * j * stride + 16 * st2, stride);
                        ctx.mmaF16(s, 4 * j, qf, 8 * st2, bf, 0);
                        ctx.mmaF16(s, 4 * j, qf, 8 * st2 + 4, bf, 2);
                    }
                }
                boolean masks = kb + PREFILL_KEYS - 1 > firstPos;
                float maxLo = NEG_INF;
                float maxHi = NEG_INF;
                for (int i = 0; i < PREFILL_KEYS / 8 * 4; i++) {
                    boolean lo = i % 4 < 2;
                    int key = kb + 8 * (i / 4) + 2 * t + i % 2;
                    int pos = lo ? posLo : posHi;
                    float v = s[i] + (lo ? slopeLo : slopeHi) * (key - pos);
                    if (masks && (key > pos || key >= keyEnd)) {
                        v = NEG_INF;
                    }
                    s[i] = v;
                    if (lo) {
                        maxLo = KMath.max(maxLo, v);
                    } else {
                        maxHi = KMath.max(maxHi, v);
                    }
                }
                maxLo = quadMax(ctx, maxLo);
                maxHi = quadMax(ctx, maxHi);
                float newLo = KMath.max(mLo, maxLo);
                float newHi = KMath.max(mHi, maxHi);
                float corrLo = mLo == NEG_INF ? 0f : KMath.exp2(mLo - newLo);
                float corrHi = mHi == NEG_INF ? 0f : KMath.exp2(mHi - newHi);
                mLo = newLo;
                mHi = newHi;
                float sumLo = 0f;
                float sumHi = 0f;
                for (int i = 0; i < PREFILL_KEYS / 8 * 4; i++) {
                    boolean lo = i % 4 < 2;
                    float p = s[i] == NEG_INF ? 0f : KMath.exp2(s[i] - (lo ? newLo : newHi));
                    if (lo) {
                        sumLo += p;
                    } else {
                        sumHi += p;
                    }
                    s[i] = p;
                }
                lLo = lLo * corrLo + sumLo;
                lHi = lHi * corrHi + sumHi;
                for (int nt = 0; nt < headDim / 8; nt++) {
                    o[4 * nt] *= corrLo;
                    o[4 * nt + 1] *= corrLo;
                    o[4 * nt + 2] *= corrHi;
                    o[4 * nt + 3] *= corrHi;
                }
                ctx.copyAsyncWait(0);
                ctx.localBarrier(); // V is in; every warp is done with K
                if (step + 1 < steps) {
                    loadTile(ctx, kTile, kPool, kScales, int8, reqToToken, tableRow, kvHeads, kvHead, kb + PREFILL_KEYS, keyEnd, headDim,
                            stride, x);
                }
                ctx.copyAsyncCommit();
                for (int kk = 0; kk < PREFILL_KEYS / 16; kk++) {
                    // the scores of n tiles 2kk and 2kk + 1 are the A fragment of P for keys 16kk..16kk + 15
                    pf[0] = KMath.packHalf2(s[8 * kk], s[8 * kk + 1]);
                    pf[1] = KMath.packHalf2(s[8 * kk + 2], s[8 * kk + 3]);
                    pf[2] = KMath.packHalf2(s[8 * kk + 4], s[8 * kk + 5]);
                    pf[3] = KMath.packHalf2(s[8 * kk + 6], s[8 * kk + 7]);
                    for (int nt2 = 0; nt2 < headDim / 16; nt2++) {
                        ctx.loadMatrixBTransposed(bf, 0, vTile, 16 * kk * stride + 8 * nt2, stride);
                        ctx.mmaF16(o, 8 * nt2, pf, 0, bf, 0);
                        ctx.mmaF16(o, 8 * nt2 + 4, pf, 0, bf, 2);
                    }
                }
            }
            lLo = quadSum(ctx, lLo);
            lHi = quadSum(ctx, lHi);
            int outLo = ((first + rowLo / group) * qHeads + headLo) * headDim;
            int outHi = ((first + rowHi / group) * qHeads + headHi) * headDim;
            for (int nt = 0; nt < headDim / 8; nt++) {
                int d = 8 * nt + 2 * t;
                if (validLo) {
                    out.set(outLo + d, o[4 * nt] / lLo);
                    out.set(outLo + d + 1, o[4 * nt + 1] / lLo);
                }
                if (validHi) {
                    out.set(outHi + d, o[4 * nt + 2] / lHi);
                    out.set(outHi + d + 1, o[4 * nt + 3] / lHi);
                }
            }
        }
    }

    /**
     * Fills {@code tile} with keys {@code kb..kb + 63} of one KV head, a row per key and 16 bytes a
     * work-item at a time: asynchronous copies of f16 rows; int8 codes are scaled and packed to f16;
     * rows past {@code keyEnd} are zero (finite, so that a masked key's zero weight stays zero).
     */
    private static void loadTile(KernelContext ctx, int[] tile, NativeArray pool, FloatArray scales, boolean int8, IntArray reqToToken,
            int tableRow, int kvHeads, int kvHead, int kb, int keyEnd, int headDim, int stride, float[] x) {
        int chunks = headDim / 8;
        for (int i = ctx.localIdx; i < PREFILL_KEYS * chunks; i += ctx.localGroupSizeX) {
            int r = i / chunks;
            int c = i % chunks;
            int at = r * stride + c * 4;
            if (kb + r < keyEnd) {
                int slot = reqToToken.get(tableRow + kb + r);
                int src = (slot * kvHeads + kvHead) * headDim + c * 8;
                if (int8) {
                    pool.getFloats(src, x, 0, 8);
                    float sc = scales.get(slot * kvHeads + kvHead);
                    tile[at] = KMath.packHalf2(x[0] * sc, x[1] * sc);
                    tile[at + 1] = KMath.packHalf2(x[2] * sc, x[3] * sc);
                    tile[at + 2] = KMath.packHalf2(x[4] * sc, x[5] * sc);
                    tile[at + 3] = KMath.packHalf2(x[6] * sc, x[7] * sc);
                } else {
                    ctx.copyAsync(tile, at, pool, src);
                }
            } else {
                tile[at] = 0;
                tile[at + 1] = 0;
                tile[at + 2] = 0;
                tile[at + 3] = 0;
            }
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    /** The max over the four lanes of a quad (the lanes that hold one row of an accumulator). */
    private static float quadMax(KernelContext ctx, float v) {
        float m = KMath.max(v, ctx.warpShuffleXor(v, 1));
        return KMath.max(m, ctx.warpShuffleXor(m, 2));
    }

    private static float quadSum(KernelContext ctx, float v) {
        float s = v + ctx.warpShuffleXor(v, 1);
        return s + ctx.warpShuffleXor(s, 2);
    }

    private static void clear(float[] a, int n) {
        for (int i = 0; i < n; i++) {
            a[i] = 0f;
        }
    }
}
