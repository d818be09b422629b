package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Attention;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's attention over the Token-Attention pool, with the Vector API: the contracts of
 * {@link Attention#decodeAttentionPartial} and {@link Attention#prefillAttention} (the same
 * arguments, outputs and softmax; the merge of decode splits stays the portable kernel).
 *
 * <p>Why not the portable kernels: run as Java they score one token per work-item with scalar
 * loads through the kernel context, at well under 1 GB/s of KV. Here one task takes a KV head
 * and all the query heads that share it (GQA), so every key and value row is read from the pool
 * once, widened to f32 once (f16, int8 and fp8 pools; {@link VectorMatmul#widen}) and used by
 * each of those heads with vector dot products and FMAs.
 */
public final class VectorAttention {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = F.length();
    /** Keys per block of the prefill's online softmax: the block's K and V stay in the L1/L2 cache. */
    private static final int KEY_BLOCK = 64;
    private static final float NEG_INF = Float.NEGATIVE_INFINITY;

    private VectorAttention() {
    }

    /** The pool of one layer as the kernels take it: keys and values, the scales per (slot, kv head) of int8 or fp8 codes or null. */
    private record Pool(NativeArray keys, NativeArray values, FloatArray keyScales, FloatArray valueScales, int kvHeads, int headDim) {
        /** Key (or value) row of (slot, kvHead), widened into {@code dst}; returns its scale (1 for a pool without scales). */
        float row(boolean key, int slot, int kvHead, float[] dst, int dstOffset) {
            NativeArray a = key ? keys : values;
            long element = ((long) slot * kvHeads + kvHead) * headDim;
            VectorMatmul.widen(a, element, headDim, dst, dstOffset);
            FloatArray scales = key ? keyScales : valueScales;
            return scales == null ? 1f : scales.get(slot * kvHeads + kvHead);
        }

        /**
         * Keys (or values) of {@code count} tokens, whose slots are reqToToken[tableAt ..], for KV heads kvHead0 ..
         * kvHead0 + heads - 1: token i's rows (one contiguous read) at into.rows[i * heads * headDim ..], their scales at
         * into.scales[i * heads ..].
         */
        void gather(boolean key, IntArray reqToToken, int tableAt, int count, int kvHead0, int heads, DecodeArrays into) {
            NativeArray a = key ? keys : values;
            FloatArray scales = key ? keyScales : valueScales;
            for (int i = 0; i < count; i++) {
                int slot = reqToToken.get(tableAt + i);
                VectorMatmul.widen(a, ((long) slot * kvHeads + kvHead0) * headDim, heads * headDim, into.rows, i * heads * headDim);
                for (int h = 0; h < heads; h++) {
                    into.scales[i * heads + h] = scales == null ? 1f : scales.get(slot * kvHeads + kvHead0 + h);
                }
            }
        }
    }

    // ---- decode ------------------------------------------------------------------------------

    /**
     * {@link Attention#decodeAttentionMerge} (out, acc, max, sum, seqLen, batch, qHeads, headDim, splits, splitUnit)
     * on the caller's thread: each (request, head)'s split weights once, then its rows added with them. Run
     * as the portable kernel, a work-item per (request, head, dimension), it cost ~90 µs a launch on the
     * JVM, 2.4 % of a batch-1 int4 step of a 1B model; the sums are the kernel's, in the same order.
     */
    public static void decodeMerge(Object[] args) {
        FloatArray out = (FloatArray) args[0], acc = (FloatArray) args[1], max = (FloatArray) args[2], sum = (FloatArray) args[3];
        IntArray seqLen = (IntArray) args[4];
        int batch = (Integer) args[5], qHeads = (Integer) args[6], headDim = (Integer) args[7], splits = (Integer) args[8];
        int splitUnit = (Integer) args[9];
        float[] weights = new float[splits];
        float[] row = new float[headDim];
        for (int bh = 0; bh < batch * qHeads; bh++) {
            int used = Attention.usedSplits(seqLen.get(bh / qHeads), splits, splitUnit);
            float m = Float.NEGATIVE_INFINITY;
            for (int s = 0; s < used; s++) {
                m = Math.max(m, max.get(bh * splits + s));
            }
            float total = 0f;
            for (int s = 0; s < used; s++) {
                weights[s] = io.lightllm.tornado.api.KMath.exp(max.get(bh * splits + s) - m);
                total += sum.get(bh * splits + s) * weights[s];
            }
            java.util.Arrays.fill(row, 0f);
            for (int s = 0; s < used; s++) {
                int base = (bh * splits + s) * headDim;
                for (int d = 0; d < headDim; d++) {
                    row[d] += acc.get(base + d) * weights[s];
                }
            }
            for (int d = 0; d < headDim; d++) {
                out.set(bh * headDim + d, total > 0f ? row[d] / total : 0f);
            }
        }
    }

    /**
     * {@link Attention#decodeAttentionPartial}'s outputs for every (request, head, split): one task
     * per (request, KV head, split), scoring the split's tokens for the KV head's query heads.
     */
    public static void decodePartial(JvmDevice device, int groups, Object[] args) {
        FloatArray partialAcc = (FloatArray) args[0], partialMax = (FloatArray) args[1], partialSum = (FloatArray) args[2];
        FloatArray q = (FloatArray) args[3];
        boolean scaled = (Boolean) args[8];
        IntArray reqToToken = (IntArray) args[9], reqRows = (IntArray) args[10], seqLen = (IntArray) args[11];
        FloatArray alibi = (Boolean) args[13] ? (FloatArray) args[12] : null;
        float scale = (Float) args[14];
        int qHeads = (Integer) args[15], kvHeads = (Integer) args[16], headDim = (Integer) args[17], maxLen = (Integer) args[18];
        int splits = (Integer) args[19], splitUnit = (Integer) args[20], window = (Integer) args[21];
        Pool pool = new Pool((NativeArray) args[4], (NativeArray) args[5], scaled ? (FloatArray) args[6] : null, scaled ? (FloatArray) args[7] : null,
                kvHeads, headDim);
        int group = qHeads / kvHeads;
        int batch = groups / (qHeads * splits);
        int heads = headsPerTask(batch * splits, kvHeads, device.threads());
        int headGroups = kvHeads / heads;
        // a token's rows of `heads` consecutive KV heads are one contiguous read of the pool; chunks of `chunk` tokens
        // keep the gathered rows within ~256 KB
        int chunk = Math.max(1, Math.min(64, (64 << 10) / (heads * headDim)));
        device.parallelFor(batch * headGroups * splits, task -> {
            int split = task % splits, kvHead0 = (task / splits) % headGroups * heads, b = task / (splits * headGroups);
            int len = seqLen.get(b);
            int splitLen = Attention.splitLength(len, splits, splitUnit);
            int start = Math.max(split * splitLen, window > 0 ? len - window : 0);
            int end = Math.min(len, split * splitLen + splitLen);
            int n = Math.max(0, end - start);
            int rowsPerToken = heads * headDim, queries = heads * group; // query j: head kvHead0 * group + j
            // rows are gathered a chunk of tokens at a time into a per-thread buffer before they are used: copies that
            // depend on nothing overlap their memory latency, where scoring each row as it arrived waited for it
            DecodeArrays arrays = DecodeArrays.get(chunk, rowsPerToken, heads, queries, headDim, n);
            float[] rows = arrays.rows, scales = arrays.scales, qs = arrays.queries, scores = arrays.scores;
            for (int j = 0; j < queries; j++) {
                int qBase = (b * qHeads + kvHead0 * group + j) * headDim;
                for (int d = 0; d < headDim; d++) {
                    qs[j * headDim + d] = q.get(qBase + d) * scale;
                }
            }
            int tableRow = reqRows.get(b) * maxLen;
            for (int i0 = 0; i0 < n; i0 += chunk) {
                int count = Math.min(chunk, n - i0);
                pool.gather(true, reqToToken, tableRow + start + i0, count, kvHead0, heads, arrays);
                for (int j = 0; j < queries; j++) {
                    int h = j / group;
                    float slope = alibi == null ? 0f : alibi.get(kvHead0 * group + j);
                    for (int i = 0; i < count; i++) {
                        int t = start + i0 + i;
                        scores[j * n + i0 + i] = VectorMatmul.dot(qs, j * headDim, rows, i * rowsPerToken + h * headDim, headDim)
                                * scales[i * heads + h] + slope * (t - (len - 1));
                    }
                }
            }
            float[] maxes = arrays.maxes, sums = arrays.sums, acc = arrays.acc;
            java.util.Arrays.fill(acc, 0, queries * headDim, 0f);
            for (int j = 0; j < queries; j++) {
                maxes[j] = max(scores, j * n, n);
                sums[j] = expInPlace(scores, j * n, n, maxes[j]);
            }
            float[] weights = arrays.weights;
            for (int i0 = 0; i0 < n; i0 += chunk) {
                int count = Math.min(chunk, n - i0);
                pool.gather(false, reqToToken, tableRow + start + i0, count, kvHead0, heads, arrays);
                for (int h = 0; h < heads; h++) {
                    int j = h * group, j4 = j + group / 4 * 4;
                    for (; j < j4; j += 4) { // four queries of the head at once: each value row loaded once for the four
                        for (int r = 0; r < 4; r++) {
                            for (int i = 0; i < count; i++) {
                                weights[r * chunk + i] = scores[(j + r) * n + i0 + i] * scales[i * heads + h];
                            }
                        }
                        addWeightedSum4(weights, chunk, rows, h * headDim, rowsPerToken, count, headDim, acc, j * headDim);
                    }
                    for (; j < (h + 1) * group; j++) {
                        for (int i = 0; i < count; i++) {
                            weights[i] = scores[j * n + i0 + i] * scales[i * heads + h];
                        }
                        addWeightedSum(weights, 0, rows, h * headDim, rowsPerToken, count, headDim, acc, j * headDim);
                    }
                }
            }
            for (int j = 0; j < queries; j++) {
                int part = (b * qHeads + kvHead0 * group + j) * splits + split;
                partialMax.set(part, maxes[j]);
                partialSum.set(part, sums[j]);
                for (int d = 0; d < headDim; d++) {
                    partialAcc.set(part * headDim + d, acc[j * headDim + d]);
                }
            }
        });
    }

    /**
     * KV heads a decode task takes: all of them, so that a token's rows are one contiguous read of the pool, halved
     * while that leaves fewer than two tasks a thread (a short batch over few splits) and the count stays whole. Two,
     * not four: at batch 1 over a short context two heads a task (four tasks) spent 1.2 ms a step of a 1B model in
     * attention, one head a task (eight tasks of strided reads) 1.9.
     */
    public static int headsPerTask(int requestSplits, int kvHeads, int threads) {
        int heads = kvHeads;
        while (heads % 2 == 0 && (long) requestSplits * (kvHeads / heads) < 2L * threads) {
            heads /= 2;
        }
        return heads;
    }

    /**
     * A pool thread's arrays for one decode task: a chunk of tokens' rows of some KV heads (widened to f32), their scales
     * and four queries' weights (addWeightedSum4); the scaled queries, their scores over the split, maxima, sums and
     * accumulators. Kept from task to task (the same shapes recur every step): allocated and zeroed anew for every task,
     * the queries' arrays took a tenth of the samples of the decode attention in a JFR profile (`AttentionAb`, batch 1 at
     * 1k: 32 queries x 256 scores a task).
     */
    private static final class DecodeArrays {
        private static final ThreadLocal<DecodeArrays> OWN = ThreadLocal.withInitial(() -> new DecodeArrays(1, 1, 1, 1, 1, 1));
        final float[] rows, scales, weights, queries, scores, maxes, sums, acc;

        private DecodeArrays(int chunk, int rowsPerToken, int heads, int queryCount, int headDim, int tokens) {
            rows = new float[chunk * rowsPerToken];
            scales = new float[chunk * heads];
            weights = new float[4 * chunk];
            queries = new float[queryCount * headDim];
            scores = new float[queryCount * tokens];
            maxes = new float[queryCount];
            sums = new float[queryCount];
            acc = new float[queryCount * headDim];
        }

        /** This thread's arrays, reallocated when a task needs larger ones. */
        static DecodeArrays get(int chunk, int rowsPerToken, int heads, int queryCount, int headDim, int tokens) {
            DecodeArrays a = OWN.get();
            int n = Math.max(tokens, 1);
            if (a.rows.length < chunk * rowsPerToken || a.scales.length < chunk * heads || a.weights.length < 4 * chunk
                    || a.queries.length < queryCount * headDim || a.scores.length < queryCount * n || a.maxes.length < queryCount) {
                a = new DecodeArrays(chunk, rowsPerToken, heads, queryCount, headDim, n);
                OWN.set(a);
            }
            return a;
        }
    }

    /**
     * {@link #addWeightedSum} for four rows of weights (p[r * pStride ..], r = 0..3) into four outputs (out[outOff + r dim ..])
     * over the same rows, each value row loaded once for the four: per output the same operations in the same order, so
     * the same floats.
     */
    static void addWeightedSum4(float[] p, int pStride, float[] rows, int rowsOff, int stride, int n, int dim, float[] out, int outOff) {
        int d = 0;
        int p1 = pStride, p2 = 2 * pStride, p3 = 3 * pStride;
        for (int bound = F.loopBound(dim); d < bound; d += LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOff + d), b0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.fromArray(F, out, outOff + dim + d), b1 = b0;
            FloatVector a2 = FloatVector.fromArray(F, out, outOff + 2 * dim + d), b2 = b0;
            FloatVector a3 = FloatVector.fromArray(F, out, outOff + 3 * dim + d), b3 = b0;
            int i = 0, at = rowsOff + d;
            for (; i + 1 < n; i += 2, at += 2 * stride) {
                FloatVector r0 = FloatVector.fromArray(F, rows, at), r1 = FloatVector.fromArray(F, rows, at + stride);
                a0 = r0.fma(FloatVector.broadcast(F, p[i]), a0);
                b0 = r1.fma(FloatVector.broadcast(F, p[i + 1]), b0);
                a1 = r0.fma(FloatVector.broadcast(F, p[p1 + i]), a1);
                b1 = r1.fma(FloatVector.broadcast(F, p[p1 + i + 1]), b1);
                a2 = r0.fma(FloatVector.broadcast(F, p[p2 + i]), a2);
                b2 = r1.fma(FloatVector.broadcast(F, p[p2 + i + 1]), b2);
                a3 = r0.fma(FloatVector.broadcast(F, p[p3 + i]), a3);
                b3 = r1.fma(FloatVector.broadcast(F, p[p3 + i + 1]), b3);
            }
            if (i < n) {
                FloatVector r0 = FloatVector.fromArray(F, rows, at);
                a0 = r0.fma(FloatVector.broadcast(F, p[i]), a0);
                a1 = r0.fma(FloatVector.broadcast(F, p[p1 + i]), a1);
                a2 = r0.fma(FloatVector.broadcast(F, p[p2 + i]), a2);
                a3 = r0.fma(FloatVector.broadcast(F, p[p3 + i]), a3);
            }
            a0.add(b0).intoArray(out, outOff + d);
            a1.add(b1).intoArray(out, outOff + dim + d);
            a2.add(b2).intoArray(out, outOff + 2 * dim + d);
            a3.add(b3).intoArray(out, outOff + 3 * dim + d);
        }
        if (d < dim) {
            for (int r = 0; r < 4; r++) {
                for (int e = d; e < dim; e++) {
                    float s = out[outOff + r * dim + e];
                    for (int i = 0; i < n; i++) {
                        s += p[r * pStride + i] * rows[rowsOff + i * stride + e];
                    }
                    out[outOff + r * dim + e] = s;
                }
            }
        }
    }

    /**
     * out[outOff + d] += sum over i < n of p[pOff + i] * rows[rowsOff + i * stride + d] for d < dim: a vector of d
     * at a time with the accumulator in a register across the rows (the rows are in cache), where an axpy per row
     * loaded and stored it.
     */
    static void addWeightedSum(float[] p, int pOff, float[] rows, int rowsOff, int stride, int n, int dim, float[] out, int outOff) {
        int d = 0;
        for (int bound = F.loopBound(dim); d < bound; d += LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOff + d), a1 = FloatVector.zero(F);
            int i = 0, at = rowsOff + d;
            for (; i + 1 < n; i += 2, at += 2 * stride) {
                a0 = FloatVector.fromArray(F, rows, at).fma(FloatVector.broadcast(F, p[pOff + i]), a0);
                a1 = FloatVector.fromArray(F, rows, at + stride).fma(FloatVector.broadcast(F, p[pOff + i + 1]), a1);
            }
            if (i < n) {
                a0 = FloatVector.fromArray(F, rows, at).fma(FloatVector.broadcast(F, p[pOff + i]), a0);
            }
            a0.add(a1).intoArray(out, outOff + d);
        }
        for (; d < dim; d++) {
            float s = out[outOff + d];
            for (int i = 0; i < n; i++) {
                s += p[pOff + i] * rows[rowsOff + i * stride + d];
            }
            out[outOff + d] = s;
        }
    }

    // ---- prefill -----------------------------------------------------------------------------

    /**
     * {@link Attention#prefillAttention}'s output: one task per (request, KV head, block of
     * {@link Attention#BLOCK_Q} new tokens), its query heads' rows updated by an online softmax
     * over blocks of {@link #KEY_BLOCK} keys, each block's K and V widened once.
     */
    public static void prefill(JvmDevice device, int groups, Object[] args) {
        FloatArray out = (FloatArray) args[0], q = (FloatArray) args[1];
        boolean scaled = (Boolean) args[6];
        IntArray reqToToken = (IntArray) args[7], reqRows = (IntArray) args[8];
        IntArray bStart = (IntArray) args[9], bLen = (IntArray) args[10], bPrefix = (IntArray) args[11];
        FloatArray alibi = (Boolean) args[13] ? (FloatArray) args[12] : null;
        float scale = (Float) args[14];
        int qHeads = (Integer) args[15], kvHeads = (Integer) args[16], headDim = (Integer) args[17], maxLen = (Integer) args[18];
        int qBlocks = (Integer) args[19], window = (Integer) args[20];
        Pool pool = new Pool((NativeArray) args[2], (NativeArray) args[3], scaled ? (FloatArray) args[4] : null, scaled ? (FloatArray) args[5] : null,
                kvHeads, headDim);
        int group = qHeads / kvHeads;
        int batch = groups / (qHeads * qBlocks);
        device.parallelFor(batch * kvHeads * qBlocks, task -> {
            int block = task % qBlocks, kvHead = (task / qBlocks) % kvHeads, b = task / (qBlocks * kvHeads);
            int q0 = block * Attention.BLOCK_Q, newLen = bLen.get(b);
            if (q0 >= newLen) {
                return;
            }
            int rows = Math.min(Attention.BLOCK_Q, newLen - q0), prefix = bPrefix.get(b), firstRow = bStart.get(b) + q0;
            int queries = rows * group; // query i: row i / group, head kvHead * group + i % group
            float[] qs = new float[queries * headDim], acc = new float[queries * headDim];
            float[] runMax = new float[queries], runSum = new float[queries];
            java.util.Arrays.fill(runMax, NEG_INF);
            for (int i = 0; i < queries; i++) {
                int qBase = ((firstRow + i / group) * qHeads + kvHead * group + i % group) * headDim;
                for (int d = 0; d < headDim; d++) {
                    qs[i * headDim + d] = q.get(qBase + d) * scale;
                }
            }
            float[] keys = new float[KEY_BLOCK * headDim], values = new float[KEY_BLOCK * headDim];
            float[] keyScale = new float[KEY_BLOCK], valueScale = new float[KEY_BLOCK], p = new float[KEY_BLOCK];
            int keyEnd = prefix + q0 + rows;
            int keyStart = window > 0 ? Math.max(0, prefix + q0 - window + 1) : 0;
            for (int k0 = keyStart; k0 < keyEnd; k0 += KEY_BLOCK) {
                int count = Math.min(KEY_BLOCK, keyEnd - k0);
                for (int c = 0; c < count; c++) {
                    int slot = reqToToken.get(reqRows.get(b) * maxLen + k0 + c);
                    keyScale[c] = pool.row(true, slot, kvHead, keys, c * headDim);
                    valueScale[c] = pool.row(false, slot, kvHead, values, c * headDim);
                }
                for (int i = 0; i < queries; i++) {
                    int qPos = prefix + q0 + i / group;
                    float slope = alibi == null ? 0f : alibi.get(kvHead * group + i % group);
                    float blockMax = NEG_INF;
                    for (int c = 0; c < count; c++) {
                        int kPos = k0 + c;
                        boolean visible = kPos <= qPos && (window == 0 || kPos > qPos - window);
                        p[c] = visible ? VectorMatmul.dot(qs, i * headDim, keys, c * headDim, headDim) * keyScale[c] + slope * (kPos - qPos) : NEG_INF;
                        blockMax = Math.max(blockMax, p[c]);
                    }
                    if (blockMax == NEG_INF) {
                        continue; // no visible key in this block for this query
                    }
                    float newMax = Math.max(runMax[i], blockMax);
                    float rescale = runMax[i] == NEG_INF ? 0f : (float) Math.exp(runMax[i] - newMax);
                    scaleRow(acc, i * headDim, headDim, rescale);
                    float sum = expInPlace(p, 0, count, newMax); // a hidden key's -inf becomes 0
                    for (int c = 0; c < count; c++) {
                        p[c] *= valueScale[c];
                    }
                    addWeightedSum(p, 0, values, 0, headDim, count, headDim, acc, i * headDim);
                    runSum[i] = runSum[i] * rescale + sum;
                    runMax[i] = newMax;
                }
            }
            for (int i = 0; i < queries; i++) {
                int outBase = ((firstRow + i / group) * qHeads + kvHead * group + i % group) * headDim;
                for (int d = 0; d < headDim; d++) {
                    out.set(outBase + d, acc[i * headDim + d] / runSum[i]);
                }
            }
        });
    }

    // ---- vector helpers ----------------------------------------------------------------------

    /** The largest of a[off .. off + n) (-inf for none). */
    static float max(float[] a, int off, int n) {
        FloatVector m = FloatVector.broadcast(F, NEG_INF);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += LANES) {
            m = m.max(FloatVector.fromArray(F, a, off + i));
        }
        float s = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            s = Math.max(s, a[off + i]);
        }
        return s;
    }

    /**
     * a[i] = exp(a[i] - max) over a[off .. off + n), returning their sum: the softmax numerators, a vector at a time
     * (the Vector API's exp, a vector math routine on x86, instead of a Math.exp per score).
     */
    static float expInPlace(float[] a, int off, int n, float max) {
        FloatVector sum = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += LANES) {
            FloatVector p = FloatVector.fromArray(F, a, off + i).sub(max).lanewise(VectorOperators.EXP);
            p.intoArray(a, off + i);
            sum = sum.add(p);
        }
        float s = LaneSums.sum(sum);
        for (; i < n; i++) {
            float p = (float) Math.exp(a[off + i] - max);
            a[off + i] = p;
            s += p;
        }
        return s;
    }

    private static void scaleRow(float[] y, int off, int n, float factor) {
        for (int i = 0; i < n; i++) {
            y[off + i] *= factor;
        }
    }

}
