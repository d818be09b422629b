package io.lightllm.kernels;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * LightLLM's token attention over a KV pool. Keys and values of every request live in the pool
 * k/v [slots, kvHeads, headDim] (f32, f16, or int8 or fp8 e4m3 codes with one f32 scale per slot
 * and KV head: declared {@code NativeArray}); the table
 * reqToToken [batch, maxLen] gives the pool slot of each token of each request. Queries
 * and outputs are f32 [rows, qHeads, headDim]; qHeads is a multiple of kvHeads (GQA, MQA), and
 * query head h reads kv head h / (qHeads / kvHeads).
 *
 * <p>Scores are {@code scale * q·k}, plus, with ALiBi (BLOOM),
 * {@code slope[h] * (keyPos - queryPos)}; positions count from the request's first token. With a
 * sliding window W (Mistral), a query at position p sees keys p - W + 1 .. p.
 *
 * <ul>
 *   <li>Decode (one new token per request, at position seqLen - 1): flash-decoding. Stage 1
 *       splits each request's tokens into at most {@code splits} chunks (of
 *       {@link #splitLength}: a request's own length decides, so a recorded step sized for the
 *       longest context still spreads a short one over the splits) and computes, per
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
    public static final int MAX_SPLITS = 64;

    private static final float NEG_INF = Float.NEGATIVE_INFINITY;
    /** Splits the merge reads at once (their loads in flight together). */
    static final int MERGE_RUN = 8;

    public static final KernelRef DECODE_PARTIAL = KernelRef.of(Attention.class, "decodeAttentionPartial");
    public static final KernelRef DECODE_MERGE = KernelRef.of(Attention.class, "decodeAttentionMerge");
    public static final KernelRef PREFILL = KernelRef.of(Attention.class, "prefillAttention");
    /** Warps a tensor-core decode work-group may have (eight: the tiles of a group fill 210 KB of an SM's 227 over f16). */
    private static final List<Integer> DECODE_WARPS = List.of(1, 4, 8);
    /**
     * The tensor-core decode kernels, one ref per pool (f16, int8, fp8), head dimension (64, 128) and warps a work-group
     * ({@link #DECODE_WARPS}), each binding those as constants of {@link TensorCoreAttention#decodeF16} or
     * {@link TensorCoreAttention#decodeCodes}: {@link #decodeKernel}.
     */
    private static final Map<DecodeKey, KernelRef> DECODE_TC = decodeKernels();

    /** What picks a tensor-core decode kernel: the pool's kind (F16 for any 16-bit pool), the head dimension, the warps a group. */
    private record DecodeKey(DType pool, int headDim, int warps) {
    }

    private static Map<DecodeKey, KernelRef> decodeKernels() {
        KernelRef f16 = KernelRef.of(TensorCoreAttention.class, "decodeF16");
        KernelRef codes = KernelRef.of(TensorCoreAttention.class, "decodeCodes");
        Map<DecodeKey, KernelRef> refs = new HashMap<>();
        for (DType pool : new DType[] {DType.F16, DType.I8, DType.F8_E4M3}) {
            for (int headDim : new int[] {64, 128}) {
                for (int warps : DECODE_WARPS) {
                    KernelRef ref = pool == DType.F16 ? f16 : codes.with("fp8", pool == DType.F8_E4M3);
                    refs.put(new DecodeKey(pool, headDim, warps), ref.with("headDim", headDim).with("warps", warps));
                }
            }
        }
        return Map.copyOf(refs);
    }

    /**
     * {@link #decodeKernel(DType, int, int)} as this device launches it: where the tuning
     * {@code attention.codes_groups_per_unit} is set, the one-warp kernel over int8 or fp8 codes compiled under launch bounds
     * for that many groups a compute unit. A Hopper SM's four schedulers each hold 3 of its warps up to 170 registers and 2
     * from 176: the device's NVRTC gave it 164 (12 warps an SM, session 24), nvcc 13 here 169 (8); a bound for 12 keeps it
     * at 12 whatever the compiler (166, no spills). 13 would need 128 registers (spills).
     */
    static KernelRef decodeKernel(Device device, DType pool, int headDim, int warps) {
        KernelRef ref = decodeKernel(pool, headDim, warps);
        int groups = Tuning.get(device, "attention.codes_groups_per_unit", 0);
        if (groups <= 0 || warps != 1 || !KvCache.hasScales(pool)) {
            return ref;
        }
        return BOUNDED_DECODE.computeIfAbsent(List.of(ref, groups), k -> ref.withLaunchBounds(KernelContext.WARP_SIZE, groups));
    }

    /** The bounded refs by (unbounded ref, groups a unit). */
    private static final Map<List<Object>, KernelRef> BOUNDED_DECODE = new ConcurrentHashMap<>();

    /** The tensor-core decode kernel over a pool of {@code pool} (f16 for any 16-bit pool), head dimension 64 or 128, 1, 4 or 8 warps a group. */
    public static KernelRef decodeKernel(DType pool, int headDim, int warps) {
        DType kind = pool == DType.I8 || pool == DType.F8_E4M3 ? pool : DType.F16;
        KernelRef ref = DECODE_TC.get(new DecodeKey(kind, headDim, warps));
        if (ref == null) {
            throw new IllegalArgumentException("no tensor-core decode kernel for head dimension " + headDim + " and " + warps + " warps");
        }
        return ref;
    }

    /** The warpgroup prefill (f16 pools, head dimension 128, on Hopper) over f32 query rows, and over the f16 query operand. */
    public static final KernelRef PREFILL_WARPGROUP_F16_128 = KernelRef.of(WarpgroupAttention.class, "prefillF16D128").with("queryOperand", false);
    public static final KernelRef PREFILL_WARPGROUP_QUERY_OPERAND = KernelRef.of(WarpgroupAttention.class, "prefillF16D128").with("queryOperand", true);
    /** The tensor-core prefill kernel at head dimension 64 or 128, four warps a group or eight ("wide"): its refs bind both. */
    public static final KernelRef PREFILL_TC_64 = prefillKernel(64, TensorCoreAttention.PREFILL_WARPS);
    public static final KernelRef PREFILL_TC_128 = prefillKernel(128, TensorCoreAttention.PREFILL_WARPS);
    public static final KernelRef PREFILL_TC_WIDE_64 = prefillKernel(64, TensorCoreAttention.PREFILL_WIDE_WARPS);
    public static final KernelRef PREFILL_TC_WIDE_128 = prefillKernel(128, TensorCoreAttention.PREFILL_WIDE_WARPS);

    private static KernelRef prefillKernel(int headDim, int warps) {
        return KernelRef.of(TensorCoreAttention.class, "prefill").with("headDim", headDim).with("warps", warps);
    }

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
            boolean scaled, IntArray reqToToken, IntArray reqRows, IntArray seqLen,
            FloatArray alibiSlopes, boolean useAlibi, float scale, int qHeads, int kvHeads, int headDim, int maxLen,
            int splits, int splitUnit, int window) {
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
        int splitLen = splitLength(len, splits, splitUnit);
        // with a sliding window the query sees its last `window` tokens, itself included
        int start = Math.max(split * splitLen, window > 0 ? len - window : 0);
        int end = Math.min(len, split * splitLen + splitLen);
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
                // an int8 or fp8 pool holds codes with one scale per token and head: scale the dot once
                float kScale = scaled ? kScales.get(slot * kvHeads + kvHead) : 1f;
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
            // the value weights carry the value scale of a pool with scales; the softmax sum does not
            probs[lid] = scaled && t < end ? p * vScales.get(slots[lid] * kvHeads + kvHead) : p;
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
     * with M the largest split max. One pass: the splits are read {@link #MERGE_RUN} at a time (max,
     * sum and accumulator together, their loads issued at once) and each run is added on the running
     * maximum, the sums so far rescaled when a run raises it (as the split kernels' online softmax
     * does). Up to MERGE_RUN splits are then one round of loads after the request's length; the two
     * passes before (the maxima first, then the weighted sums) took two, and a batch-64 merge of two
     * splits ran 7 us on an H100 (ncu, 2026-12-06).
     */
    public static void decodeAttentionMerge(FloatArray out, FloatArray partialAcc, FloatArray partialMax,
            FloatArray partialSum, IntArray seqLen, int batch, int qHeads, int headDim, int splits, int splitUnit) {
        for (@Parallel int bh = 0; bh < batch * qHeads; bh++) {
            for (@Parallel int d = 0; d < headDim; d++) {
                float[] maxes = new float[MERGE_RUN];
                float[] accs = new float[MERGE_RUN];
                float[] sums = new float[MERGE_RUN];
                int used = usedSplits(seqLen.get(bh / qHeads), splits, splitUnit);
                float m = NEG_INF;
                float total = 0f;
                float acc = 0f;
                for (int s0 = 0; s0 < used; s0 += MERGE_RUN) {
                    for (int j = 0; j < MERGE_RUN; j++) {
                        int part = bh * splits + s0 + j;
                        boolean in = s0 + j < used;
                        maxes[j] = in ? partialMax.get(part) : NEG_INF;
                        sums[j] = in ? partialSum.get(part) : 0f;
                        accs[j] = in ? partialAcc.get(part * headDim + d) : 0f;
                    }
                    float runMax = m;
                    for (int j = 0; j < MERGE_RUN; j++) {
                        runMax = KMath.max(runMax, maxes[j]);
                    }
                    // a split wholly before a sliding window, or past the used ones, has max -inf: weight 0; the last split
                    // always has keys, so runMax is finite from the run that holds it on
                    float rescale = m == NEG_INF ? 0f : KMath.exp(m - runMax);
                    total *= rescale;
                    acc *= rescale;
                    for (int j = 0; j < MERGE_RUN; j++) {
                        float w = maxes[j] != NEG_INF ? KMath.exp(maxes[j] - runMax) : 0f;
                        total += sums[j] * w;
                        acc += accs[j] * w;
                    }
                    m = runMax;
                }
                out.set(bh * headDim + d, total > 0f ? acc / total : 0f);
            }
        }
    }

    /**
     * Tokens per split of a request of {@code len} tokens whose decode is spread over {@code splits}
     * splits: the request fills min(splits, ceil(len / splitUnit)) of them (no split shorter than
     * about half a unit) and its tokens are shared evenly among those, rounded up to a multiple of
     * 16 where the unit is one (the tensor-core kernel's steps). The
     * decode kernels and their merge all call this, so they agree on where a request's splits fall.
     * Sharing evenly matters: rounding the length up to whole units instead gave a 160-token request
     * in two splits of 128 one split of 128 and one of 32, and the launch took as long as its longest
     * warp (8B batch 64 at 160 tokens: eight steps of 16 keys where five do).
     */
    public static int splitLength(int len, int splits, int splitUnit) {
        int used = Math.max(1, Math.min(splits, (len + splitUnit - 1) / splitUnit));
        int granule = splitUnit % 16 == 0 ? 16 : 1;
        int even = (len + used - 1) / used;
        return Math.max(1, (even + granule - 1) / granule) * granule;
    }

    /** How many of {@code splits} splits a request of {@code len} tokens fills ({@link #splitLength}): what the merge adds up. */
    public static int usedSplits(int len, int splits, int splitUnit) {
        int splitLen = splitLength(len, splits, splitUnit);
        return Math.min(splits, (len + splitLen - 1) / splitLen);
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
            FloatArray kScales, FloatArray vScales, boolean scaled, IntArray reqToToken, IntArray reqRows, IntArray bStart, IntArray bLen, IntArray bPrefix, FloatArray alibiSlopes, boolean useAlibi,
            float scale, int qHeads, int kvHeads, int headDim, int maxLen, int qBlocks, int window) {
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
            // with a sliding window, blocks wholly before the first query's window are skipped
            int keyStart = window > 0 ? Math.max(0, prefix + q0 - window + 1) / BLOCK_K * BLOCK_K : 0;
            for (int k0 = keyStart; k0 < keyEnd; k0 += BLOCK_K) {
                int keys = Math.min(BLOCK_K, keyEnd - k0);
                ctx.localBarrier(); // the previous block's readers of keySlots and scores are done
                for (int c = lid; c < keys; c += size) {
                    int slot = reqToToken.get(reqRows.get(b) * maxLen + k0 + c);
                    keySlots[c] = slot;
                    keyScale[c] = scaled ? kScales.get(slot * kvHeads + kvHead) : 1f;
                    valueScale[c] = scaled ? vScales.get(slot * kvHeads + kvHead) : 1f;
                }
                ctx.localBarrier();
                for (int i = lid; i < BLOCK_Q * BLOCK_K; i += size) {
                    int r = i / BLOCK_K;
                    int c = i % BLOCK_K;
                    int qPos = prefix + q0 + r;
                    int kPos = k0 + c;
                    float s = NEG_INF;
                    if (r < rows && c < keys && kPos <= qPos && (window == 0 || kPos > qPos - window)) {
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

    // ---- what the launchers take ------------------------------------------------------------

    /**
     * One layer of the Token Attention pool: keys and values [slots, kvHeads, headDim], f32, f16, or
     * int8 or fp8 e4m3 codes with f32 scales [slots, kvHeads] (one per token and head; null for
     * other dtypes).
     */
    public record KvView(DeviceBuffer keys, DeviceBuffer values, DeviceBuffer keyScales, DeviceBuffer valueScales) {
        public static KvView of(DeviceBuffer keys, DeviceBuffer values) {
            return new KvView(keys, values, null, null);
        }

        /** Whether the pool holds codes with scales ({@link KvCache#hasScales}): int8 or fp8. */
        public boolean scaled() {
            return KvCache.hasScales(keys.dtype());
        }

        /** The key scales, or {@code absent} where the pool has none (a kernel argument must be a buffer). */
        DeviceBuffer keyScalesOr(DeviceBuffer absent) {
            return keyScales != null ? keyScales : absent;
        }

        DeviceBuffer valueScalesOr(DeviceBuffer absent) {
            return valueScales != null ? valueScales : absent;
        }
    }

    /** The token table: reqToToken [rows, maxLen] holds the pool slot of each position of each request; requestRows [batch] each request's row. */
    public record TokenTableView(DeviceBuffer reqToToken, DeviceBuffer requestRows, int maxLen) {
    }

    /**
     * The heads: query heads (a multiple of the KV heads), KV heads, head dimension, softmax scale,
     * ALiBi slopes (f32 [qHeads], or null) and the sliding window (a query sees its last
     * {@code slidingWindow} tokens, itself included; 0: every token before it).
     */
    public record Heads(int qHeads, int kvHeads, int headDim, float scale, DeviceBuffer alibiSlopes, int slidingWindow) {
        public Heads {
            if (slidingWindow < 0) {
                throw new IllegalArgumentException("the sliding window must be >= 0 (0: none), got " + slidingWindow);
            }
        }

        public Heads(int qHeads, int kvHeads, int headDim, float scale, DeviceBuffer alibiSlopes) {
            this(qHeads, kvHeads, headDim, scale, alibiSlopes, 0);
        }

        public static Heads of(int qHeads, int kvHeads, int headDim) {
            return new Heads(qHeads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)), null);
        }

        public Heads withAlibi(DeviceBuffer slopes) {
            return new Heads(qHeads, kvHeads, headDim, scale, slopes, slidingWindow);
        }

        public Heads withSlidingWindow(int window) {
            return new Heads(qHeads, kvHeads, headDim, scale, alibiSlopes, window);
        }

        /** The ALiBi slopes, or {@code absent} without ALiBi (a kernel argument must be a buffer). */
        DeviceBuffer alibiSlopesOr(DeviceBuffer absent) {
            return alibiSlopes != null ? alibiSlopes : absent;
        }
    }

    /**
     * A decode step: one new token per request, request b's at position seqLens[b] - 1.
     * {@code maxSeqLen} is at least every seqLen (it sizes the splits; a recorded step keeps it).
     */
    public record DecodeBatch(DeviceBuffer seqLens, int requests, int maxSeqLen) {
    }

    /**
     * A prefill step: request b's newCounts[b] new tokens at packed rows starts[b].. of q and out,
     * after prefixes[b] cached tokens; {@code maxNewTokens} is at least every newCount.
     */
    public record PrefillBatch(DeviceBuffer starts, DeviceBuffer newCounts, DeviceBuffer prefixes, int requests, int rows, int maxNewTokens) {
    }

    // ---- launchers -------------------------------------------------------------------------

    /**
     * How a decode launch spreads each request over splits: {@code splits} per (request, KV head)
     * in the grid, and a request of {@code len} tokens in splits of {@link #lengthFor lengthFor(len)}
     * (its tokens shared evenly over one split a {@code splitUnit} of them, at most {@code splits}; the splits past its
     * end stay empty). Because the lengths are
     * decided on the device from each request's own length, a recorded decode step sized for the
     * longest context still spreads a short request over its warps.
     */
    public record DecodeSplits(int splits, int splitUnit, int warps) {
        /** The context at which {@link #choose} judges whether a launch fills the device. */
        static final int FILL_CONTEXT = 1024;

        public DecodeSplits {
            Shapes.positive(splits, "splits");
            Shapes.positive(splitUnit, "splitUnit");
            if (splits > MAX_SPLITS) {
                throw new IllegalArgumentException("at most " + MAX_SPLITS + " decode splits, not " + splits);
            }
            if (!DECODE_WARPS.contains(warps)) {
                throw new IllegalArgumentException("a tensor-core decode work-group has " + DECODE_WARPS + " warps, not " + warps);
            }
        }

        /** Splits of one warp a work-group (the portable kernels' only kind). */
        public DecodeSplits(int splits, int splitUnit) {
            this(splits, splitUnit, 1);
        }

        /** Tokens per split of a request of {@code len} tokens (what the kernels compute). */
        public int lengthFor(int len) {
            return splitLength(len, splits, splitUnit);
        }

        /** Splits of exactly {@code splitLen} tokens for the longest request, {@code maxSeqLen} (tests, tuning). */
        public static DecodeSplits of(int maxSeqLen, int splitLen) {
            return new DecodeSplits((maxSeqLen + splitLen - 1) / splitLen, splitLen);
        }

        /**
         * The launcher's choice for {@code requests} requests of at most {@code maxSeqLen} tokens:
         * a split unit of the tuning value {@code attention.split_len} (default 256; rounded up to whole
         * tensor-core steps of 16; a request fills one split a unit of its length, {@link Attention#splitLength}), halved down to {@code attention.min_split_len} while requests
         * of {@link #FILL_CONTEXT} tokens would give the launch fewer than two (request, KV head, split) warps a
         * compute unit (small batches), at most {@link #MAX_SPLITS}; and where the backend tunes
         * {@code attention.decode_units} (the warps that keep the device busy), only as many splits as
         * bring the launch's (request, KV head) units up to that many: a large batch fills the device
         * unsplit and skips the merge, a small one is spread wide. Under {@link BatchInvariance}
         * always {@link #MAX_SPLITS}, so that no request's splits depend on the others'.
         */
        public static DecodeSplits choose(Device device, int requests, Heads heads, int maxSeqLen) {
            return choose(device, requests, heads, maxSeqLen, null);
        }

        /**
         * {@link #choose(Device, int, Heads, int)} for a pool of {@code pool} (null: values): a pool of int8 or
         * fp8 codes takes the tuning {@code attention.decode_units_codes} where the backend has it. The tensor-core
         * kernel over codes holds 12 warps an SM (f16: 8, its tiles being larger), so 2,048 warps were 1.3 waves
         * on an H100 and 4,096 (two splits at batch 256) run 15 % faster, where f16 pools run 2-5 % slower.
         */
        public static DecodeSplits choose(Device device, int requests, Heads heads, int maxSeqLen, DType pool) {
            Shapes.positive(maxSeqLen, "maxSeqLen");
            int tuned = Tuning.get(device, "attention.split_len", 256);
            Shapes.positive(tuned, "tuning attention.split_len");
            int step = TensorCoreAttention.DECODE_STEP;
            int min = (tuned + step - 1) / step * step;
            if (BatchInvariance.enabled()) {
                // every launch MAX_SPLITS wide: a request's split length then follows its own length only
                return new DecodeSplits(MAX_SPLITS, min);
            }
            int group = heads.qHeads() / heads.kvHeads();
            long units = (long) requests * heads.kvHeads() * ((group + TensorCoreAttention.DECODE_ROWS - 1) / TensorCoreAttention.DECODE_ROWS);
            // shorter splits only for launches too small to fill the device at a 1k-token context (splits are sized for
            // the longest context a recorded step may meet; most requests are far shorter): a warp's split of a few
            // steps never overlaps its copies with its matrix work (its pipeline is 3-4 steps deep)
            int shortest = Math.max(step, Tuning.get(device, "attention.min_split_len", min) / step * step);
            while (min / 2 >= shortest && units * Math.max(1, FILL_CONTEXT / min) < 2L * device.computeUnits()) {
                min = (min / 2 + step - 1) / step * step;
            }
            int most = Math.min(MAX_SPLITS, (maxSeqLen + min - 1) / min);
            int target = Tuning.get(device, "attention.decode_units", 0);
            if (pool != null && KvCache.hasScales(pool)) {
                target = Tuning.get(device, "attention.decode_units_codes", target);
            }
            long splits = target <= 0 ? most : Math.max(1, Math.min(most, (target + units - 1) / units));
            // a launch that splits runs four warps a work-group where the tuning says so, each group taking four of these
            // splits as one (its warps share its steps); one that fills the device unsplit keeps a warp a group (an H100
            // ran batch 256 at 160 tokens in 67 us so, 76 with four). Code pools too at every batch since each warp waits
            // at its own barriers (H100, 2026-12-07: int8 batch 64 at 1k 99.9 -> 84.6 us, 4k 260 -> 239, batch 256 at 4k
            // 969 -> 883; before, when four warps met at every step, they were slower there than one)
            int warps = splits > 1 && pool != null && tensorCoresServe(device, pool, heads.headDim()) ? decodeWarps(device) : 1;
            // attention.decode_warps_whole (0: off): that many warps a group where they take a request's whole context as one
            // group, so the merge kernel is skipped, the default's would not, and the groups fill between half the SMs and all of
            // them in one pass (a group of eight an SM). H100, 2026-12-07, batch 16 at 1k (eight splits; 128 units): eight warps
            // against two groups of four and a merge, f16 32.1 -> 29.5 us, int8 20.4 -> 17.7, fp8 22.8 -> 20.0; batch 64 at 1k
            // (512 units, four passes) over int8 84.6 -> 88.4 us: not there; fewer units than half the SMs: not measured
            int whole = tunedWarps(device, "attention.decode_warps_whole", 0);
            boolean onePass = units <= device.computeUnits() && 2 * units >= device.computeUnits();
            if (warps > 1 && whole > warps && splits > warps && splits <= whole && onePass) {
                warps = whole;
            }
            return new DecodeSplits((int) ((splits + warps - 1) / warps), min * warps, warps);
        }
    }

    /** Scratch of decode attention's split stage: one entry (acc: headDim floats) per (request, query head, split). */
    public record DecodeScratch(DeviceBuffer acc, DeviceBuffer max, DeviceBuffer sum) implements AutoCloseable {
        public static DecodeScratch allocate(Device device, int batch, int qHeads, int headDim, int splits) {
            long parts = (long) batch * qHeads * splits;
            Shapes.intIndexable(parts * headDim, "decode attention scratch");
            return new DecodeScratch(device.allocate(DType.F32, parts * headDim), device.allocate(DType.F32, parts),
                    device.allocate(DType.F32, parts));
        }

        /** Scratch for every batch of up to {@code maxBatch} requests and context the decode launcher will be given. */
        public static DecodeScratch allocateFor(Device device, int maxBatch, Heads heads, int maxSeqLen) {
            long most = 1;
            for (int b = 1; b <= maxBatch; b++) {
                // the larger of a value pool's and a code pool's splits (DType.I8 stands for both code types)
                most = Math.max(most, (long) b * Math.max(DecodeSplits.choose(device, b, heads, maxSeqLen).splits(),
                        DecodeSplits.choose(device, b, heads, maxSeqLen, DType.I8).splits()));
            }
            return allocate(device, (int) most, heads.qHeads(), heads.headDim(), 1);
        }

        @Override
        public void close() {
            acc.close();
            max.close();
            sum.close();
        }
    }

    /**
     * Whether attention over {@code kv} runs on tensor cores on this device: where its tuning
     * {@code attention.tensor_cores} is 1 (CUDA), for f16, int8 and fp8 e4m3 pools and head
     * dimensions the tensor-core kernels serve; elsewhere, and for f32 pools everywhere, the
     * portable kernels run.
     */
    public static boolean usesTensorCores(Device device, KvView kv, Heads heads) {
        return tensorCoresServe(device, kv.keys().dtype(), heads.headDim());
    }

    /** Whether attention over a pool of {@code pool} runs on tensor cores here (f16, int8 and fp8 pools where they serve the head dimension). */
    static boolean tensorCoresServe(Device device, DType pool, int headDim) {
        return (pool == DType.F16 || pool == DType.I8 || pool == DType.F8_E4M3) && tensorCoresServe(device, headDim);
    }

    /** Whether this device runs attention of this head dimension on tensor cores (over f16, int8 and fp8 pools). */
    public static boolean tensorCoresServe(Device device, int headDim) {
        return Tuning.get(device, "attention.tensor_cores", 0) == 1 && TensorCoreAttention.supportsHeadDim(headDim)
                && device.supports(Feature.MMA_F16);
    }

    /**
     * The pool dtype attention runs best over here ({@code --kv-dtype auto}): f16 where tensor cores
     * serve it (half the memory, read directly by the MMA kernels), f32 elsewhere (the portable
     * kernels' exact reference, and what a CPU reads fastest).
     */
    public static DType preferredPoolDtype(Device device, int headDim) {
        return tensorCoresServe(device, headDim) ? DType.F16 : DType.F32;
    }

    /**
     * Decode attention: out[b, h, :] = softmax over request b's seqLens[b] tokens for the query
     * q[b, h, :]. {@code scratch} may be null (allocated for this call) or reused across calls.
     */
    public static void launchDecodeAttention(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            DecodeBatch batch, DecodeScratch scratch) {
        DecodeSplits splits = DecodeSplits.choose(device, batch.requests(), heads, batch.maxSeqLen(), kv.keys().dtype());
        if (usesTensorCores(device, kv, heads)) {
            launchDecodeTensorCores(device, out, q, kv, table, heads, batch, scratch, splits);
        } else {
            launchDecodePortable(device, out, q, kv, table, heads, batch, scratch, splits,
                    Tuning.get(device, "attention.local", Tuning.get(device, "reduce.local", 64)));
        }
    }

    /** Decode attention with the portable kernels, the splits and work-group size given (tests, tuning). */
    public static void launchDecodePortable(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            DecodeBatch batch, DecodeScratch scratch, DecodeSplits splits, int local) {
        Shapes.localSize(local, MAX_LOCAL, "decode attention");
        checkDecode(out, q, kv, table, heads, batch);
        if (splits.warps() != 1) {
            throw new IllegalArgumentException("the portable decode kernels take splits of one warp a group, not " + splits.warps());
        }
        int n = splits.splits();
        DecodeScratch own = scratch == null ? DecodeScratch.allocate(device, batch.requests(), heads.qHeads(), heads.headDim(), n) : null;
        DecodeScratch s = checkScratch(own != null ? own : scratch, batch, heads, n);
        DeviceBuffer dummy = q; // stands in for absent optional buffers
        BatchInvariance.launch(device, DECODE_PARTIAL, decodeGrid(batch.requests(), heads.qHeads(), n, local), s.acc(), s.max(), s.sum(), q, kv.keys(),
                kv.values(), kv.keyScalesOr(dummy), kv.valueScalesOr(dummy), kv.scaled(), table.reqToToken(),
                table.requestRows(), batch.seqLens(), heads.alibiSlopesOr(dummy), heads.alibiSlopes() != null,
                heads.scale(), heads.qHeads(), heads.kvHeads(), heads.headDim(), table.maxLen(), n, splits.splitUnit(),
                heads.slidingWindow());
        launchMerge(device, out, s, batch, heads, splits);
        closeAfterUse(device, own);
    }

    /**
     * Decode attention on tensor cores ({@link TensorCoreAttention}): a warp per (request, KV head,
     * 16 query heads, split; splits at least a multiple of 16 tokens long); with one split the warps
     * write the output directly and the merge is skipped.
     */
    public static void launchDecodeTensorCores(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            DecodeBatch batch, DecodeScratch scratch, DecodeSplits splits) {
        if (splits.splitUnit() % TensorCoreAttention.DECODE_STEP != 0) {
            throw new IllegalArgumentException("the tensor-core decode kernel takes splits of a multiple of "
                    + TensorCoreAttention.DECODE_STEP + " tokens, not " + splits.splitUnit());
        }
        checkTensorCores(kv, heads);
        checkDecode(out, q, kv, table, heads, batch);
        int n = splits.splits();
        boolean direct = n == 1;
        DecodeScratch own = scratch == null && !direct ? DecodeScratch.allocate(device, batch.requests(), heads.qHeads(), heads.headDim(), n) : null;
        DecodeScratch s = direct ? null : checkScratch(own != null ? own : scratch, batch, heads, n);
        int group = heads.qHeads() / heads.kvHeads();
        int chunks = (group + TensorCoreAttention.DECODE_ROWS - 1) / TensorCoreAttention.DECODE_ROWS;
        long groups = (long) batch.requests() * heads.kvHeads() * chunks * n;
        DeviceBuffer dummy = q;
        DType pool = kv.keys().dtype();
        int warps = splits.warps();
        KernelRef kernel = decodeKernel(device, pool, heads.headDim(), warps);
        // (the kernel's last parameters, fp8, the head dimension and the warps, come from its ref)
        device.launch(kernel, Grid.groups(groups, (long) KernelContext.WARP_SIZE * warps), direct ? out : s.acc(), direct ? dummy : s.max(),
                direct ? dummy : s.sum(), q, kv.keys(), kv.values(), kv.keyScalesOr(dummy), kv.valueScalesOr(dummy), table.reqToToken(),
                table.requestRows(), batch.seqLens(), heads.alibiSlopesOr(dummy), heads.alibiSlopes() != null, heads.scale(), heads.qHeads(),
                heads.kvHeads(), table.maxLen(), n, splits.splitUnit(), direct, heads.slidingWindow());
        if (!direct) {
            launchMerge(device, out, s, batch, heads, splits);
        }
        closeAfterUse(device, own);
    }

    /**
     * Warps in a tensor-core decode work-group of a launch that splits: the tuning {@code attention.decode_warps}, 1 (the
     * default), 4 or 8. With 4, a work-group's warps take turns at its split's steps and merge in local memory, so a request
     * needs a quarter of the splits (a short one, none: the merge kernel's launch is gone) for as many warps at work; with
     * 8 an eighth (one group an SM over f16: its tiles take 210 KB).
     */
    static int decodeWarps(Device device) {
        return tunedWarps(device, "attention.decode_warps", 1);
    }

    /** The warps a decode work-group the tuning {@code key} sets: {@code unset} where it is not set, else one of {@link #DECODE_WARPS}. */
    private static int tunedWarps(Device device, String key, int unset) {
        int warps = Tuning.get(device, key, unset);
        if (warps != unset && !DECODE_WARPS.contains(warps)) {
            throw new IllegalArgumentException("tuning " + key + " is one of " + DECODE_WARPS + ", not " + warps);
        }
        return warps;
    }

    private static void launchMerge(Device device, DeviceBuffer out, DecodeScratch s, DecodeBatch batch, Heads heads, DecodeSplits splits) {
        device.launch(DECODE_MERGE, Grid.of((long) batch.requests() * heads.qHeads(), heads.headDim()), out, s.acc(), s.max(), s.sum(),
                batch.seqLens(), batch.requests(), heads.qHeads(), heads.headDim(), splits.splits(), splits.splitUnit());
    }

    /** Checks a decode launch's buffers and shapes. */
    private static void checkDecode(DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads, DecodeBatch batch) {
        checkHeads(heads);
        Shapes.positive(batch.requests(), "batch");
        Shapes.positive(table.maxLen(), "maxLen");
        if (batch.maxSeqLen() > table.maxLen()) {
            throw new IllegalArgumentException("maxSeqLen " + batch.maxSeqLen() + " exceeds the token table's row length " + table.maxLen());
        }
        long elements = (long) batch.requests() * heads.qHeads() * heads.headDim();
        Shapes.atLeast(q, elements, "decode attention q");
        Shapes.atLeast(out, elements, "decode attention out");
        checkTable(table, batch.requests());
        Shapes.atLeast(batch.seqLens(), batch.requests(), "seqLen");
        checkPool(kv, heads);
    }

    private static DecodeScratch checkScratch(DecodeScratch s, DecodeBatch batch, Heads heads, int splits) {
        long parts = (long) batch.requests() * heads.qHeads() * splits;
        Shapes.atLeast(s.max(), parts, "decode attention scratch (max)");
        Shapes.atLeast(s.sum(), parts, "decode attention scratch (sum)");
        Shapes.atLeast(s.acc(), parts * heads.headDim(), "decode attention scratch (acc)");
        return s;
    }

    private static void closeAfterUse(Device device, DecodeScratch own) {
        if (own != null) {
            device.synchronize();
            own.close();
        }
    }

    /** The grid of the portable decode kernel's first stage: one group of {@code local} items per (request, head, split). */
    public static Grid decodeGrid(int batch, int qHeads, int splits, int local) {
        return Grid.groups((long) batch * qHeads * splits, local);
    }

    /**
     * Prefill attention over packed new tokens (see {@link PrefillBatch}); every token's k/v, cached and new, is in the pool.
     * q and out are f32 rows, or where {@link #prefillQueryType} and {@link #prefillOutputType} say so the f16 query operand
     * and 16-bit rows.
     */
    public static void launchPrefillAttention(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            PrefillBatch batch) {
        if ((q.dtype() != DType.F32 || out.dtype() != DType.F32) && !usesHalfOperands(device, kv, heads)) {
            throw new IllegalArgumentException("prefill attention takes f32 queries and output here, not " + q.dtype() + " / " + out.dtype()
                    + " (Attention.prefillQueryType and prefillOutputType say where it takes others)");
        }
        if (usesTensorCores(device, kv, heads)) {
            launchPrefillTensorCores(device, out, q, kv, table, heads, batch);
        } else {
            launchPrefillPortable(device, out, q, kv, table, heads, batch, Tuning.get(device, "reduce.local", 64));
        }
    }

    /** Prefill attention with the portable kernel and the work-group size given (tests, tuning). */
    public static void launchPrefillPortable(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            PrefillBatch batch, int local) {
        Shapes.localSize(local, MAX_LOCAL, "prefill attention");
        checkPrefill(out, q, kv, table, heads, batch);
        int qBlocks = (batch.maxNewTokens() + BLOCK_Q - 1) / BLOCK_Q;
        DeviceBuffer dummy = q;
        BatchInvariance.launch(device, PREFILL, prefillGrid(batch.requests(), heads.qHeads(), batch.maxNewTokens(), local), out, q, kv.keys(), kv.values(),
                kv.keyScalesOr(dummy), kv.valueScalesOr(dummy), kv.scaled(), table.reqToToken(), table.requestRows(),
                batch.starts(), batch.newCounts(), batch.prefixes(), heads.alibiSlopesOr(dummy),
                heads.alibiSlopes() != null, heads.scale(), heads.qHeads(), heads.kvHeads(), heads.headDim(), table.maxLen(), qBlocks,
                heads.slidingWindow());
    }

    /**
     * Prefill attention on tensor cores ({@link TensorCoreAttention}): a work-group per (request, KV
     * head, 16 (token, query head) rows a warp) of {@link #prefillWarps} warps.
     */
    public static void launchPrefillTensorCores(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            PrefillBatch batch) {
        if (usesWarpgroupPrefill(device, kv, heads)) {
            launchPrefillWarpgroups(device, out, q, kv, table, heads, batch);
            return;
        }
        launchPrefillTensorCores(device, out, q, kv, table, heads, batch, prefillWarps(device, batch.maxNewTokens()));
    }

    /**
     * Whether prefill attention takes Hopper's warpgroup MMA here ({@link WarpgroupAttention}): an f16 pool of head dimension 128
     * without ALiBi or a sliding window, where the device has it and tunes {@code attention.prefill_warpgroup} to 1 (not
     * under {@link BatchInvariance}, whose runs keep one kernel per shape as before).
     */
    public static boolean usesWarpgroupPrefill(Device device, KvView kv, Heads heads) {
        return kv.keys().dtype() == DType.F16 && heads.headDim() == WarpgroupAttention.HEAD_DIM && heads.alibiSlopes() == null
                && heads.slidingWindow() == 0 && Tuning.get(device, "attention.prefill_warpgroup", 0) == 1
                && device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA) && !BatchInvariance.enabled();
    }

    /**
     * The type prefill attention here reads its queries in: f32 rows, or where the warpgroup kernel runs and the tuning
     * {@code attention.prefill_half_operands} is 1, the f16 operand it makes of them: each element times
     * {@link #queryOperandScale}, rounded once (the same bits), written by the q/k/v split in its place: half the bytes,
     * and copied into local memory beside the first keys instead of loaded, scaled and stored a prologue.
     */
    public static DType prefillQueryType(Device device, KvView kv, Heads heads) {
        return usesHalfOperands(device, kv, heads) ? DType.F16 : DType.F32;
    }

    /** The factor of the f16 query operand ({@link #prefillQueryType}): the scores' scale, in exp2's domain. */
    public static float queryOperandScale(Heads heads) {
        return heads.scale() * TensorCoreAttention.LOG2E;
    }

    /**
     * The type prefill attention here writes its rows in for a consumer that reads {@code wanted} as it is (the o
     * projection's {@link Matmul#activationType}): {@code wanted} where it is 16-bit and the warpgroup kernel runs under
     * {@code attention.prefill_half_operands} (half the bytes, and no narrowing launch before the GEMM), else f32.
     */
    public static DType prefillOutputType(Device device, KvView kv, Heads heads, DType wanted) {
        return (wanted == DType.BF16 || wanted == DType.F16) && usesHalfOperands(device, kv, heads) ? wanted : DType.F32;
    }

    private static boolean usesHalfOperands(Device device, KvView kv, Heads heads) {
        return usesTensorCores(device, kv, heads) && usesWarpgroupPrefill(device, kv, heads)
                && Tuning.get(device, "attention.prefill_half_operands", 0) == 1;
    }

    /**
     * Prefill attention on warpgroup MMAs ({@link WarpgroupAttention}): a work-group per (request, KV head, 64 (token, query
     * head) rows), in the order of {@link PrefillOrder#of}.
     */
    public static void launchPrefillWarpgroups(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            PrefillBatch batch) {
        checkPrefill(out, q, kv, table, heads, batch);
        if ((q.dtype() != DType.F32 && q.dtype() != DType.F16) || (out.dtype() != DType.F32 && out.dtype() != DType.BF16 && out.dtype() != DType.F16)) {
            throw new IllegalArgumentException("the warpgroup prefill reads f32 or f16-operand queries and writes f32, bf16 or f16 rows, not "
                    + q.dtype() + " / " + out.dtype());
        }
        int group = heads.qHeads() / heads.kvHeads();
        int rowTiles = (int) (((long) batch.maxNewTokens() * group + WarpgroupAttention.TILE_ROWS - 1) / WarpgroupAttention.TILE_ROWS);
        PrefillOrder order = PrefillOrder.of(device, (long) batch.requests() * heads.kvHeads() * rowTiles);
        device.launch(q.dtype() == DType.F16 ? PREFILL_WARPGROUP_QUERY_OPERAND : PREFILL_WARPGROUP_F16_128,
                WarpgroupAttention.grid(batch.requests(), heads.kvHeads(), rowTiles), out, q, kv.keys(), kv.values(),
                table.reqToToken(), table.requestRows(), batch.starts(), batch.newCounts(), batch.prefixes(), heads.scale(), heads.qHeads(),
                heads.kvHeads(), table.maxLen(), rowTiles, order.tileMajor(), order.pairingWave());
    }

    /**
     * The order in which the warpgroup prefill's work-groups take their (request, KV head, row tile) units, last row tiles
     * first: tile-major (every request's last tile, then the tiles before) for launches of at most the tuning
     * {@code attention.prefill_tile_major_passes} passes over the device (two groups an SM a pass), request-major
     * beyond; and, tuning {@code attention.prefill_pairing} 1, a launch of one pass pairs a heavy and a light unit on
     * each SM ({@link WarpgroupAttention#rankOf}). H100, 2026-12-07, 8B heads, request-major -> tile-major: 512 causal
     * tokens (one pass) 104-106 -> 112-114 TFLOP/s, paired 116-118; 1,024 (two passes) 146 -> 177; 2,048 (four) 222 ->
     * 238; 4,096 (eight) 307 -> 299.
     */
    record PrefillOrder(boolean tileMajor, int pairingWave) {
        static PrefillOrder of(Device device, long groups) {
            long pass = 2L * device.computeUnits();
            boolean tileMajor = groups <= Tuning.get(device, "attention.prefill_tile_major_passes", 0) * pass;
            return new PrefillOrder(tileMajor, tileMajor && Tuning.get(device, "attention.prefill_pairing", 0) == 1 ? device.computeUnits() : 0);
        }
    }

    /**
     * Warps of a tensor-core prefill work-group here: the tuning {@code attention.prefill_warps} where set, else
     * {@link TensorCoreAttention#PREFILL_WIDE_WARPS} from {@code attention.prefill_wide_from} new tokens on (0: never;
     * H100, 2026-12-06: +6 % at 4,096 tokens, +2 % at 512), else {@link TensorCoreAttention#PREFILL_WARPS}.
     */
    public static int prefillWarps(Device device, int maxNewTokens) {
        int set = Tuning.get(device, "attention.prefill_warps", 0);
        if (set != 0) {
            return set;
        }
        int wideFrom = Tuning.get(device, "attention.prefill_wide_from", 0);
        return wideFrom > 0 && maxNewTokens >= wideFrom ? TensorCoreAttention.PREFILL_WIDE_WARPS : TensorCoreAttention.PREFILL_WARPS;
    }

    /** {@link #launchPrefillTensorCores} with work-groups of {@code warps} warps (4 or 8; tests, tuning). */
    public static void launchPrefillTensorCores(Device device, DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads,
            PrefillBatch batch, int warps) {
        checkTensorCores(kv, heads);
        checkPrefill(out, q, kv, table, heads, batch);
        boolean wide = warps == TensorCoreAttention.PREFILL_WIDE_WARPS;
        if (!wide && warps != TensorCoreAttention.PREFILL_WARPS) {
            throw new IllegalArgumentException("tensor-core prefill runs work-groups of " + TensorCoreAttention.PREFILL_WARPS + " or "
                    + TensorCoreAttention.PREFILL_WIDE_WARPS + " warps, not " + warps);
        }
        int group = heads.qHeads() / heads.kvHeads();
        int tileRows = 16 * warps;
        int rowTiles = (int) (((long) batch.maxNewTokens() * group + tileRows - 1) / tileRows);
        long groups = (long) batch.requests() * heads.kvHeads() * rowTiles;
        KernelRef kernel = heads.headDim() == 64 ? (wide ? PREFILL_TC_WIDE_64 : PREFILL_TC_64) : (wide ? PREFILL_TC_WIDE_128 : PREFILL_TC_128);
        DeviceBuffer dummy = q;
        device.launch(kernel, Grid.groups(groups, KernelContext.WARP_SIZE * warps), out, q,
                kv.keys(), kv.values(), kv.keyScalesOr(dummy), kv.valueScalesOr(dummy), kv.scaled(),
                table.reqToToken(), table.requestRows(), batch.starts(), batch.newCounts(), batch.prefixes(),
                heads.alibiSlopesOr(dummy), heads.alibiSlopes() != null, heads.scale(), heads.qHeads(),
                heads.kvHeads(), table.maxLen(), rowTiles, heads.slidingWindow());
    }

    private static void checkPrefill(DeviceBuffer out, DeviceBuffer q, KvView kv, TokenTableView table, Heads heads, PrefillBatch batch) {
        checkHeads(heads);
        Shapes.positive(batch.requests(), "batch");
        Shapes.positive(batch.rows(), "rows");
        Shapes.positive(batch.maxNewTokens(), "maxNewLen");
        Shapes.atLeast(q, (long) batch.rows() * heads.qHeads() * heads.headDim(), "prefill attention q");
        Shapes.atLeast(out, (long) batch.rows() * heads.qHeads() * heads.headDim(), "prefill attention out");
        checkTable(table, batch.requests());
        Shapes.atLeast(batch.starts(), batch.requests(), "bStart");
        Shapes.atLeast(batch.newCounts(), batch.requests(), "bLen");
        Shapes.atLeast(batch.prefixes(), batch.requests(), "bPrefix");
        checkPool(kv, heads);
    }

    /** The portable prefill grid: one group of {@code local} items per (request, head, block of BLOCK_Q new tokens). */
    public static Grid prefillGrid(int batch, int qHeads, int maxNewLen, int local) {
        return Grid.groups((long) batch * qHeads * ((maxNewLen + BLOCK_Q - 1) / BLOCK_Q), local);
    }

    private static void checkTensorCores(KvView kv, Heads heads) {
        DType d = kv.keys().dtype();
        if (d != DType.F16 && d != DType.I8 && d != DType.F8_E4M3) {
            throw new IllegalArgumentException("the tensor-core attention kernels read f16, int8 or fp8 e4m3 pools, not " + d);
        }
        if (!TensorCoreAttention.supportsHeadDim(heads.headDim())) {
            throw new IllegalArgumentException("the tensor-core attention kernels serve head dimensions 64 and 128, not " + heads.headDim());
        }
    }

    private static void checkHeads(Heads heads) {
        Shapes.positive(heads.qHeads(), "qHeads");
        Shapes.positive(heads.kvHeads(), "kvHeads");
        if (heads.qHeads() % heads.kvHeads() != 0) {
            throw new IllegalArgumentException("qHeads " + heads.qHeads() + " is not a multiple of kvHeads " + heads.kvHeads());
        }
        if (heads.headDim() < 1 || heads.headDim() > MAX_HEAD_DIM) {
            throw new IllegalArgumentException("headDim must be 1 to " + MAX_HEAD_DIM + ", got " + heads.headDim());
        }
        if (heads.alibiSlopes() != null) {
            Shapes.atLeast(heads.alibiSlopes(), heads.qHeads(), "ALiBi slopes");
        }
    }

    private static void checkTable(TokenTableView table, int requests) {
        Shapes.atLeast(table.reqToToken(), table.maxLen(), "reqToToken");
        Shapes.atLeast(table.requestRows(), requests, "reqRows");
    }

    /** Checks the pool's dtypes and shape, and that a pool of codes (and only it) has f32 scales [slots, kvHeads]. */
    private static void checkPool(KvView kv, Heads heads) {
        for (DeviceBuffer pool : new DeviceBuffer[] {kv.keys(), kv.values()}) {
            if (pool.dtype() != DType.F32 && pool.dtype() != DType.F16 && !KvCache.hasScales(pool.dtype())) {
                throw new IllegalArgumentException("KV pool must be F32, F16, I8 or F8_E4M3, got " + pool.dtype());
            }
            if (pool.elements() % ((long) heads.kvHeads() * heads.headDim()) != 0) {
                throw new IllegalArgumentException("KV pool of " + pool.elements() + " elements is not slots x " + heads.kvHeads() + " x "
                        + heads.headDim());
            }
        }
        Shapes.intIndexable(kv.keys().elements(), "KV pool");
        if (kv.keys().elements() != kv.values().elements()) {
            throw new IllegalArgumentException("k and v pools differ in size: " + kv.keys().elements() + " vs " + kv.values().elements());
        }
        if (kv.keys().dtype() != kv.values().dtype()) {
            throw new IllegalArgumentException("k and v pools differ in dtype: " + kv.keys().dtype() + " vs " + kv.values().dtype());
        }
        boolean scaled = kv.scaled();
        if (scaled != (kv.keyScales() != null) || scaled != (kv.valueScales() != null)) {
            throw new IllegalArgumentException(scaled ? "a " + kv.keys().dtype() + " KV pool needs its key and value scales"
                    : "scales are for int8 and fp8 KV pools only");
        }
        if (scaled) {
            // one scale per slot and KV head: the pool's elements over the head dimension
            Shapes.atLeast(kv.keyScales(), kv.keys().elements() / heads.headDim(), "key scales");
            Shapes.atLeast(kv.valueScales(), kv.keys().elements() / heads.headDim(), "value scales");
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
