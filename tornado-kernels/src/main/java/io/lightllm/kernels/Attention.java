package io.lightllm.kernels;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * LightLLM's token attention over a KV pool. Keys and values of every request live in the pool
 * k/v [slots, kvHeads, headDim] (f32 or f16: declared {@code NativeArray}); the table
 * reqToToken [batch, maxLen] gives the pool slot of each token of each request. Queries
 * and outputs are f32 [rows, qHeads, headDim]; qHeads is a multiple of kvHeads (GQA, MQA), and
 * query head h reads kv head h / (qHeads / kvHeads).
 *
 * <p>Scores are {@code scale * q·k}, plus, with ALiBi (BLOOM),
 * {@code slope[h] * (keyPos - queryPos)}; positions count from the request's first token.
 *
 * <ul>
 *   <li>Decode (one new token per request, at position seqLen - 1): flash-decoding. Stage 1
 *       splits each request's tokens into chunks of {@code splitLen} and computes, per
 *       (request, head, split), the split's max score, sum of exp and exp-weighted sum of v;
 *       stage 2 merges the splits.</li>
 *   <li>Prefill (packed rows of new tokens, after {@code bPrefix} cached ones): FlashAttention,
 *       blocks of {@link #BLOCK_Q} queries against blocks of {@link #BLOCK_K} keys with an
 *       online softmax, causal; never materialises the full score matrix.</li>
 * </ul>
 */
public final class Attention {
    /** Largest head dimension (the local accumulators hold this many floats per query). */
    public static final int MAX_HEAD_DIM = 256;
    /** Largest work-group (the local arrays of the decode kernel hold one entry per work-item). */
    public static final int MAX_LOCAL = 256;
    /** Queries per prefill work-group. */
    public static final int BLOCK_Q = 16;
    /** Keys per prefill step. */
    public static final int BLOCK_K = 16;
    /** The decode launcher never splits a request into more chunks than this (bounds the scratch). */
    public static final int MAX_SPLITS = 32;

    private static final float NEG_INF = Float.NEGATIVE_INFINITY;

    public static final KernelRef DECODE_PARTIAL = KernelRef.of(Attention.class, "decodeAttentionPartial");
    public static final KernelRef DECODE_MERGE = KernelRef.of(Attention.class, "decodeAttentionMerge");
    public static final KernelRef PREFILL = KernelRef.of(Attention.class, "prefillAttention");

    private Attention() {
    }

    // ---- decode --------------------------------------------------------------------------

    /**
     * Stage 1 of decode attention: one work-group per (request b, query head, split), group
     * index {@code (b * qHeads + head) * splits + split}. The group walks its split's tokens
     * in blocks of the local size: each work-item scores one token of the block, the group
     * reduces the block's max and sum of exp, and the items, one per head dimension (strided),
     * fold the block's weighted values into a local accumulator rescaled by the online
     * softmax. Writes, at the group's index, the split's max, sum of exp and unnormalised
     * accumulator (max -inf, sum 0 for an empty split). Local size: any power of two up to
     * {@link #MAX_LOCAL}.
     */
    public static void decodeAttentionPartial(KernelContext ctx, FloatArray partialAcc, FloatArray partialMax,
            FloatArray partialSum, FloatArray q, NativeArray kPool, NativeArray vPool, FloatArray kScales, FloatArray vScales,
            boolean int8, IntArray reqToToken, IntArray reqRows, IntArray seqLen,
            FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int headDim, int maxLen,
            int splits, int splitLen) {
        float[] qLocal = ctx.allocateFloatLocalArray(MAX_HEAD_DIM);
        float[] acc = ctx.allocateFloatLocalArray(MAX_HEAD_DIM);
        float[] probs = ctx.allocateFloatLocalArray(MAX_LOCAL);
        float[] reduce = ctx.allocateFloatLocalArray(MAX_LOCAL);
        int[] slots = ctx.allocateIntLocalArray(MAX_LOCAL);
        int lid = ctx.localIdx;
        int size = ctx.localGroupSizeX;
        int part = ctx.groupIdx;
        int split = part % splits;
        int head = (part / splits) % qHeads;
        int b = part / (splits * qHeads);
        int kvHead = head / (qHeads / kvHeads);
        int len = seqLen.get(b);
        int start = split * splitLen;
        int end = Math.min(len, start + splitLen);
        float slope = useAlibi ? alibiSlopes.get(head) : 0f;
        int qBase = (b * qHeads + head) * headDim;
        for (int d = lid; d < headDim; d += size) {
            qLocal[d] = q.get(qBase + d) * scale;
            acc[d] = 0f;
        }
        float runMax = NEG_INF;
        float runSum = 0f;
        ctx.localBarrier();
        for (int t0 = start; t0 < end; t0 += size) {
            int t = t0 + lid;
            float s = NEG_INF;
            if (t < end) {
                int slot = reqToToken.get(reqRows.get(b) * maxLen + t);
                slots[lid] = slot;
                int kBase = (slot * kvHeads + kvHead) * headDim;
                // four independent sums: a GPU thread then has four loads in flight, not one chain
                float dot0 = 0f;
                float dot1 = 0f;
                float dot2 = 0f;
                float dot3 = 0f;
                int d = 0;
                for (; d + 3 < headDim; d += 4) {
                    dot0 += qLocal[d] * kPool.getFloat(kBase + d);
                    dot1 += qLocal[d + 1] * kPool.getFloat(kBase + d + 1);
                    dot2 += qLocal[d + 2] * kPool.getFloat(kBase + d + 2);
                    dot3 += qLocal[d + 3] * kPool.getFloat(kBase + d + 3);
                }
                for (; d < headDim; d++) {
                    dot0 += qLocal[d] * kPool.getFloat(kBase + d);
                }
                // an int8 pool holds codes with one scale per token and head: scale the dot once
                float kScale = int8 ? kScales.get(slot * kvHeads + kvHead) : 1f;
                s = ((dot0 + dot1) + (dot2 + dot3)) * kScale + slope * (t - (len - 1));
            }
            // block max (the block has at least one token, so it is finite)
            reduce[lid] = s;
            for (int stride = size / 2; stride > 0; stride >>= 1) {
                ctx.localBarrier();
                if (lid < stride) {
                    reduce[lid] = KMath.max(reduce[lid], reduce[lid + stride]);
                }
            }
            ctx.localBarrier();
            float newMax = KMath.max(runMax, reduce[0]);
            ctx.localBarrier();
            float p = t < end ? KMath.exp(s - newMax) : 0f;
            // the value weights carry the int8 value scale; the softmax sum does not
            probs[lid] = int8 && t < end ? p * vScales.get(slots[lid] * kvHeads + kvHead) : p;
            reduce[lid] = p;
            for (int stride = size / 2; stride > 0; stride >>= 1) {
                ctx.localBarrier();
                if (lid < stride) {
                    reduce[lid] = reduce[lid] + reduce[lid + stride];
                }
            }
            ctx.localBarrier();
            float correction = KMath.exp(runMax - newMax); // exp(-inf) = 0 on the first block
            runSum = runSum * correction + reduce[0];
            runMax = newMax;
            int count = Math.min(size, end - t0);
            for (int d = lid; d < headDim; d += size) {
                float a0 = 0f;
                float a1 = 0f;
                int j = 0;
                for (; j + 1 < count; j += 2) {
                    a0 += probs[j] * vPool.getFloat((slots[j] * kvHeads + kvHead) * headDim + d);
                    a1 += probs[j + 1] * vPool.getFloat((slots[j + 1] * kvHeads + kvHead) * headDim + d);
                }
                if (j < count) {
                    a0 += probs[j] * vPool.getFloat((slots[j] * kvHeads + kvHead) * headDim + d);
                }
                acc[d] = acc[d] * correction + (a0 + a1);
            }
            ctx.localBarrier(); // probs, slots and reduce are rewritten by the next block
        }
        if (lid == 0) {
            partialMax.set(part, runMax);
            partialSum.set(part, runSum);
        }
        for (int d = lid; d < headDim; d += size) {
            partialAcc.set(part * headDim + d, acc[d]);
        }
    }

    /**
     * Stage 2 of decode attention: per (request, head, dimension), merges the request's
     * non-empty splits, {@code out = sum(acc_s * exp(max_s - M)) / sum(sum_s * exp(max_s - M))}
     * with M the largest split max.
     */
    public static void decodeAttentionMerge(FloatArray out, FloatArray partialAcc, FloatArray partialMax,
            FloatArray partialSum, IntArray seqLen, int batch, int qHeads, int headDim, int splits, int splitLen) {
        for (@Parallel int bh = 0; bh < batch * qHeads; bh++) {
            for (@Parallel int d = 0; d < headDim; d++) {
                int len = seqLen.get(bh / qHeads);
                int used = Math.min(splits, (len + splitLen - 1) / splitLen);
                float m = NEG_INF;
                for (int s = 0; s < used; s++) {
                    m = KMath.max(m, partialMax.get(bh * splits + s));
                }
                float total = 0f;
                float acc = 0f;
                for (int s = 0; s < used; s++) {
                    float w = KMath.exp(partialMax.get(bh * splits + s) - m);
                    total += partialSum.get(bh * splits + s) * w;
                    acc += partialAcc.get((bh * splits + s) * headDim + d) * w;
                }
                out.set(bh * headDim + d, total > 0f ? acc / total : 0f);
            }
        }
    }

    // ---- prefill -------------------------------------------------------------------------

    /**
     * Prefill attention: one work-group per (request b, query head, block of
     * {@link #BLOCK_Q} new tokens), group index {@code (b * qHeads + head) * qBlocks + block}.
     * Request b has {@code bLen[b]} new tokens at packed rows {@code bStart[b]...} of q and
     * out, at positions {@code bPrefix[b]...} of the request; keys (positions 0 up to the
     * query's, causal) are read from the pool through reqToToken, so the new tokens' k/v must
     * be in the pool already. For each block of {@link #BLOCK_K} keys the group computes the
     * scores into local memory, then per query row the online softmax update (running max,
     * sum, rescale factor), then the rescaled accumulators [BLOCK_Q, headDim] in local
     * memory. Local size: any power of two up to {@link #MAX_LOCAL}.
     */
    public static void prefillAttention(KernelContext ctx, FloatArray out, FloatArray q, NativeArray kPool, NativeArray vPool,
            FloatArray kScales, FloatArray vScales, boolean int8, IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix, FloatArray alibiSlopes, boolean useAlibi,
            float scale, int qHeads, int kvHeads, int headDim, int maxLen, int qBlocks) {
        float[] scores = ctx.allocateFloatLocalArray(BLOCK_Q * BLOCK_K);
        float[] acc = ctx.allocateFloatLocalArray(BLOCK_Q * MAX_HEAD_DIM);
        float[] rowMax = ctx.allocateFloatLocalArray(BLOCK_Q);
        float[] rowSum = ctx.allocateFloatLocalArray(BLOCK_Q);
        float[] rowRescale = ctx.allocateFloatLocalArray(BLOCK_Q);
        int[] keySlots = ctx.allocateIntLocalArray(BLOCK_K);
        float[] keyScale = ctx.allocateFloatLocalArray(BLOCK_K);
        float[] valueScale = ctx.allocateFloatLocalArray(BLOCK_K);
        int lid = ctx.localIdx;
        int size = ctx.localGroupSizeX;
        int block = ctx.groupIdx % qBlocks;
        int head = (ctx.groupIdx / qBlocks) % qHeads;
        int b = ctx.groupIdx / (qBlocks * qHeads);
        int newLen = bLen.get(b);
        int q0 = block * BLOCK_Q;
        if (q0 < newLen) { // the same for the whole group, so every item meets the same barriers
            int rows = Math.min(BLOCK_Q, newLen - q0);
            int prefix = bPrefix.get(b);
            int firstRow = bStart.get(b) + q0;
            int kvHead = head / (qHeads / kvHeads);
            float slope = useAlibi ? alibiSlopes.get(head) : 0f;
            for (int i = lid; i < BLOCK_Q * headDim; i += size) {
                acc[i] = 0f;
            }
            for (int r = lid; r < BLOCK_Q; r += size) {
                rowMax[r] = NEG_INF;
                rowSum[r] = 0f;
            }
            int keyEnd = prefix + q0 + rows; // one past the last query's position
            for (int k0 = 0; k0 < keyEnd; k0 += BLOCK_K) {
                int keys = Math.min(BLOCK_K, keyEnd - k0);
                ctx.localBarrier(); // the previous block's readers of keySlots and scores are done
                for (int c = lid; c < keys; c += size) {
                    int slot = reqToToken.get(reqRows.get(b) * maxLen + k0 + c);
                    keySlots[c] = slot;
                    keyScale[c] = int8 ? kScales.get(slot * kvHeads + kvHead) : 1f;
                    valueScale[c] = int8 ? vScales.get(slot * kvHeads + kvHead) : 1f;
                }
                ctx.localBarrier();
                for (int i = lid; i < BLOCK_Q * BLOCK_K; i += size) {
                    int r = i / BLOCK_K;
                    int c = i % BLOCK_K;
                    int qPos = prefix + q0 + r;
                    int kPos = k0 + c;
                    float s = NEG_INF;
                    if (r < rows && c < keys && kPos <= qPos) {
                        int qBase = ((firstRow + r) * qHeads + head) * headDim;
                        int kBase = (keySlots[c] * kvHeads + kvHead) * headDim;
                        float dot = 0f;
                        for (int d = 0; d < headDim; d++) {
                            dot += q.get(qBase + d) * kPool.getFloat(kBase + d);
                        }
                        s = dot * keyScale[c] * scale + slope * (kPos - qPos);
                    }
                    scores[i] = s;
                }
                ctx.localBarrier();
                for (int r = lid; r < BLOCK_Q; r += size) {
                    float oldMax = rowMax[r];
                    float m = oldMax;
                    for (int c = 0; c < BLOCK_K; c++) {
                        m = KMath.max(m, scores[r * BLOCK_K + c]);
                    }
                    float sum = 0f;
                    for (int c = 0; c < BLOCK_K; c++) {
                        float s = scores[r * BLOCK_K + c];
                        float p = s == NEG_INF ? 0f : KMath.exp(s - m);
                        scores[r * BLOCK_K + c] = p;
                        sum += p;
                    }
                    // a row with no key yet (a padding row) keeps max -inf: avoid exp(-inf - -inf)
                    float rescale = oldMax == NEG_INF ? 0f : KMath.exp(oldMax - m);
                    rowRescale[r] = rescale;
                    rowSum[r] = rowSum[r] * rescale + sum;
                    rowMax[r] = m;
                }
                ctx.localBarrier();
                for (int i = lid; i < BLOCK_Q * headDim; i += size) {
                    int r = i / headDim;
                    int d = i % headDim;
                    float o = acc[i] * rowRescale[r];
                    for (int c = 0; c < keys; c++) {
                        o += scores[r * BLOCK_K + c] * valueScale[c] * vPool.getFloat((keySlots[c] * kvHeads + kvHead) * headDim + d);
                    }
                    acc[i] = o;
                }
            }
            ctx.localBarrier();
            for (int i = lid; i < rows * headDim; i += size) {
                int r = i / headDim;
                out.set((firstRow + r) * qHeads * headDim + head * headDim + i % headDim, acc[i] / rowSum[r]);
            }
        }
    }

    // ---- launchers -------------------------------------------------------------------------

    /** Scratch of decode attention's stage 1: one entry (acc: headDim floats) per (request, head, split). */
    public record DecodeScratch(DeviceBuffer acc, DeviceBuffer max, DeviceBuffer sum) implements AutoCloseable {
        public static DecodeScratch allocate(Device device, int batch, int qHeads, int headDim, int splits) {
            long parts = (long) batch * qHeads * splits;
            Shapes.intIndexable(parts * headDim, "decode attention scratch");
            return new DecodeScratch(device.allocate(DType.F32, parts * headDim), device.allocate(DType.F32, parts),
                    device.allocate(DType.F32, parts));
        }

        /** Scratch for the largest batch and context the decode launcher will be given. */
        public static DecodeScratch allocateFor(Device device, int maxBatch, int qHeads, int headDim, int maxSeqLen) {
            int splitLen = decodeSplitLen(device, maxSeqLen);
            return allocate(device, maxBatch, qHeads, headDim, (maxSeqLen + splitLen - 1) / splitLen);
        }

        @Override
        public void close() {
            acc.close();
            max.close();
            sum.close();
        }
    }

    /**
     * Tokens per split for a batch whose longest request has {@code maxSeqLen} tokens: the
     * tuning value {@code attention.split_len} (default 256), raised so that there are at
     * most {@link #MAX_SPLITS} splits.
     */
    public static int decodeSplitLen(Device device, int maxSeqLen) {
        Shapes.positive(maxSeqLen, "maxSeqLen");
        int tuned = Tuning.get(device, "attention.split_len", 256);
        Shapes.positive(tuned, "tuning attention.split_len");
        return Math.max(tuned, (maxSeqLen + MAX_SPLITS - 1) / MAX_SPLITS);
    }

    /**
     * Decode attention: out[b, h, :] = softmax over the request's seqLen[b] tokens, for the
     * query q[b, h, :] at position seqLen[b] - 1. {@code maxSeqLen} must be at least every
     * seqLen (it sizes the splits); {@code alibiSlopes} (f32 [qHeads]) may be null; {@code scratch}
     * may be null (allocated for this call) or reused across calls.
     */
    public static void launchDecodeAttention(Device device, DeviceBuffer out, DeviceBuffer q, DeviceBuffer kPool,
            DeviceBuffer vPool, DeviceBuffer kScales, DeviceBuffer vScales, DeviceBuffer reqToToken, DeviceBuffer reqRows, DeviceBuffer seqLen, DeviceBuffer alibiSlopes, DecodeScratch scratch,
            int batch, int qHeads, int kvHeads, int headDim, int maxLen, int maxSeqLen, float scale) {
        launchDecodeAttentionSplit(device, out, q, kPool, vPool, kScales, vScales, reqToToken, reqRows, seqLen, alibiSlopes, scratch, batch, qHeads,
                kvHeads, headDim, maxLen, maxSeqLen, scale, decodeSplitLen(device, maxSeqLen),
                Tuning.get(device, "attention.local", Tuning.get(device, "reduce.local", 64)));
    }

    /** {@link #launchDecodeAttention} with the split length and work-group size given (tests, tuning). */
    public static void launchDecodeAttentionSplit(Device device, DeviceBuffer out, DeviceBuffer q, DeviceBuffer kPool,
            DeviceBuffer vPool, DeviceBuffer kScales, DeviceBuffer vScales, DeviceBuffer reqToToken, DeviceBuffer reqRows, DeviceBuffer seqLen, DeviceBuffer alibiSlopes, DecodeScratch scratch,
            int batch, int qHeads, int kvHeads, int headDim, int maxLen, int maxSeqLen, float scale, int splitLen, int local) {
        checkHeads(qHeads, kvHeads, headDim, alibiSlopes);
        Shapes.positive(batch, "batch");
        Shapes.positive(maxLen, "maxLen");
        Shapes.positive(splitLen, "splitLen");
        Shapes.localSize(local, MAX_LOCAL, "decode attention");
        if (maxSeqLen > maxLen) {
            throw new IllegalArgumentException("maxSeqLen " + maxSeqLen + " exceeds the token table's row length " + maxLen);
        }
        int splits = (maxSeqLen + splitLen - 1) / splitLen;
        Shapes.atLeast(q, (long) batch * qHeads * headDim, "decode attention q");
        Shapes.atLeast(out, (long) batch * qHeads * headDim, "decode attention out");
        Shapes.atLeast(reqToToken, maxLen, "reqToToken");
        Shapes.atLeast(reqRows, batch, "reqRows");
        Shapes.atLeast(seqLen, batch, "seqLen");
        checkPool(kPool, vPool, kvHeads, headDim);
        DecodeScratch own = scratch == null ? DecodeScratch.allocate(device, batch, qHeads, headDim, splits) : null;
        DecodeScratch s = own != null ? own : scratch;
        Shapes.atLeast(s.max(), (long) batch * qHeads * splits, "decode attention scratch (max)");
        Shapes.atLeast(s.sum(), (long) batch * qHeads * splits, "decode attention scratch (sum)");
        Shapes.atLeast(s.acc(), (long) batch * qHeads * splits * headDim, "decode attention scratch (acc)");
        boolean int8 = checkScales(kPool, kScales, vScales, headDim);
        device.launch(DECODE_PARTIAL, decodeGrid(batch, qHeads, splits, local), s.acc(), s.max(), s.sum(), q, kPool, vPool,
                int8 ? kScales : q, int8 ? vScales : q, int8, reqToToken, reqRows, seqLen, alibiSlopes == null ? q : alibiSlopes, alibiSlopes != null, scale, qHeads, kvHeads, headDim,
                maxLen, splits, splitLen);
        device.launch(DECODE_MERGE, Grid.of((long) batch * qHeads, headDim), out, s.acc(), s.max(), s.sum(), seqLen, batch,
                qHeads, headDim, splits, splitLen);
        if (own != null) {
            device.synchronize();
            own.close();
        }
    }

    /** The grid of stage 1: one group of {@code local} items per (request, head, split). */
    public static Grid decodeGrid(int batch, int qHeads, int splits, int local) {
        return Grid.groups((long) batch * qHeads * splits, local);
    }

    /**
     * Prefill attention over packed new tokens: q and out [rows, qHeads, headDim] with request
     * b's bLen[b] new tokens at rows bStart[b].., after bPrefix[b] cached tokens; every token's
     * k/v (cached and new) is in the pool at reqToToken[b, position]. {@code maxNewLen} must be
     * at least every bLen; {@code alibiSlopes} may be null.
     */
    public static void launchPrefillAttention(Device device, DeviceBuffer out, DeviceBuffer q, DeviceBuffer kPool,
            DeviceBuffer vPool, DeviceBuffer kScales, DeviceBuffer vScales, DeviceBuffer reqToToken, DeviceBuffer reqRows, DeviceBuffer bStart, DeviceBuffer bLen, DeviceBuffer bPrefix,
            DeviceBuffer alibiSlopes, int batch, int rows, int qHeads, int kvHeads, int headDim, int maxLen, int maxNewLen,
            float scale) {
        launchPrefillAttentionLocal(device, out, q, kPool, vPool, kScales, vScales, reqToToken, reqRows, bStart, bLen, bPrefix, alibiSlopes, batch, rows,
                qHeads, kvHeads, headDim, maxLen, maxNewLen, scale, Tuning.get(device, "reduce.local", 64));
    }

    /** {@link #launchPrefillAttention} with the work-group size given (tests, tuning). */
    public static void launchPrefillAttentionLocal(Device device, DeviceBuffer out, DeviceBuffer q, DeviceBuffer kPool,
            DeviceBuffer vPool, DeviceBuffer kScales, DeviceBuffer vScales, DeviceBuffer reqToToken, DeviceBuffer reqRows, DeviceBuffer bStart, DeviceBuffer bLen, DeviceBuffer bPrefix,
            DeviceBuffer alibiSlopes, int batch, int rows, int qHeads, int kvHeads, int headDim, int maxLen, int maxNewLen,
            float scale, int local) {
        checkHeads(qHeads, kvHeads, headDim, alibiSlopes);
        Shapes.positive(batch, "batch");
        Shapes.positive(rows, "rows");
        Shapes.positive(maxNewLen, "maxNewLen");
        Shapes.localSize(local, MAX_LOCAL, "prefill attention");
        Shapes.atLeast(q, (long) rows * qHeads * headDim, "prefill attention q");
        Shapes.atLeast(out, (long) rows * qHeads * headDim, "prefill attention out");
        Shapes.atLeast(reqToToken, maxLen, "reqToToken");
        Shapes.atLeast(reqRows, batch, "reqRows");
        Shapes.atLeast(bStart, batch, "bStart");
        Shapes.atLeast(bLen, batch, "bLen");
        Shapes.atLeast(bPrefix, batch, "bPrefix");
        checkPool(kPool, vPool, kvHeads, headDim);
        int qBlocks = (maxNewLen + BLOCK_Q - 1) / BLOCK_Q;
        boolean int8 = checkScales(kPool, kScales, vScales, headDim);
        device.launch(PREFILL, prefillGrid(batch, qHeads, maxNewLen, local), out, q, kPool, vPool, int8 ? kScales : q,
                int8 ? vScales : q, int8, reqToToken, reqRows, bStart,
                bLen, bPrefix, alibiSlopes == null ? q : alibiSlopes, alibiSlopes != null, scale, qHeads, kvHeads, headDim, maxLen,
                qBlocks);
    }

    /** The prefill grid: one group of {@code local} items per (request, head, block of BLOCK_Q new tokens). */
    public static Grid prefillGrid(int batch, int qHeads, int maxNewLen, int local) {
        return Grid.groups((long) batch * qHeads * ((maxNewLen + BLOCK_Q - 1) / BLOCK_Q), local);
    }

    private static void checkHeads(int qHeads, int kvHeads, int headDim, DeviceBuffer alibiSlopes) {
        Shapes.positive(qHeads, "qHeads");
        Shapes.positive(kvHeads, "kvHeads");
        if (qHeads % kvHeads != 0) {
            throw new IllegalArgumentException("qHeads " + qHeads + " is not a multiple of kvHeads " + kvHeads);
        }
        if (headDim < 1 || headDim > MAX_HEAD_DIM) {
            throw new IllegalArgumentException("headDim must be 1 to " + MAX_HEAD_DIM + ", got " + headDim);
        }
        if (alibiSlopes != null) {
            Shapes.atLeast(alibiSlopes, qHeads, "ALiBi slopes");
        }
    }

    /** Whether the pool is int8, which then needs f32 scales [slots, kvHeads] for K and for V (null otherwise). */
    private static boolean checkScales(DeviceBuffer kPool, DeviceBuffer kScales, DeviceBuffer vScales, int headDim) {
        boolean int8 = kPool.dtype() == DType.I8;
        if (int8 != (kScales != null) || int8 != (vScales != null)) {
            throw new IllegalArgumentException(int8 ? "an int8 KV pool needs its key and value scales" : "scales are for int8 KV pools only");
        }
        if (int8) {
            // one scale per slot and KV head: the pool's elements over the head dimension
            Shapes.atLeast(kScales, kPool.elements() / headDim, "key scales");
            Shapes.atLeast(vScales, kPool.elements() / headDim, "value scales");
        }
        return int8;
    }

    private static void checkPool(DeviceBuffer kPool, DeviceBuffer vPool, int kvHeads, int headDim) {
        for (DeviceBuffer pool : new DeviceBuffer[] {kPool, vPool}) {
            if (pool.dtype() != DType.F32 && pool.dtype() != DType.F16 && pool.dtype() != DType.I8) {
                throw new IllegalArgumentException("KV pool must be F32, F16 or I8, got " + pool.dtype());
            }
            if (pool.elements() % ((long) kvHeads * headDim) != 0) {
                throw new IllegalArgumentException("KV pool of " + pool.elements() + " elements is not slots x " + kvHeads + " x " + headDim);
            }
        }
        Shapes.intIndexable(kPool.elements(), "KV pool");
        if (kPool.elements() != vPool.elements()) {
            throw new IllegalArgumentException("k and v pools differ in size: " + kPool.elements() + " vs " + vPool.elements());
        }
    }

    // ---- ALiBi ---------------------------------------------------------------------------

    /**
     * BLOOM's ALiBi slopes for {@code heads} heads ({@code build_alibi_tensor}): with p the
     * largest power of two not above heads, head i < p gets 2^(-8(i+1)/p); the remaining
     * heads take every other slope of the 2p sequence, 2^(-4(2j+1)/p) for j = 0, 1, ...
     */
    public static float[] alibiSlopes(int heads) {
        Shapes.positive(heads, "heads");
        int p = Integer.highestOneBit(heads);
        float[] slopes = new float[heads];
        double base = Math.pow(2, -8.0 / p);
        for (int i = 0; i < p; i++) {
            slopes[i] = (float) Math.pow(base, i + 1);
        }
        double extraBase = Math.pow(2, -4.0 / p);
        for (int j = 0; j < heads - p; j++) {
            slopes[p + j] = (float) Math.pow(extraBase, 2 * j + 1);
        }
        return slopes;
    }
}
