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
    }

    // ---- decode ------------------------------------------------------------------------------

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
        device.parallelFor(batch * kvHeads * splits, task -> {
            int split = task % splits, kvHead = (task / splits) % kvHeads, b = task / (splits * kvHeads);
            int len = seqLen.get(b);
            int splitLen = Attention.splitLength(len, splits, splitUnit);
            int start = Math.max(split * splitLen, window > 0 ? len - window : 0);
            int end = Math.min(len, split * splitLen + splitLen);
            int n = Math.max(0, end - start);
            float[] qs = new float[group * headDim], scores = new float[group * Math.max(n, 1)];
            for (int g = 0; g < group; g++) {
                int qBase = (b * qHeads + kvHead * group + g) * headDim;
                for (int d = 0; d < headDim; d++) {
                    qs[g * headDim + d] = q.get(qBase + d) * scale;
                }
            }
            // the split's rows first, gathered into contiguous buffers: each row (of one KV head) is a separate small
            // read kvHeads rows apart in the pool, and copies that depend on nothing overlap their memory latency,
            // where scoring each row as it arrived waited for it (2k context: 46 -> 25 ms of a 1B model's int4 step)
            Rows rows = Rows.get(n, headDim);
            float[] keys = rows.keys, values = rows.values, kScale = rows.keyScales, vScale = rows.valueScales;
            int tableRow = reqRows.get(b) * maxLen;
            for (int i = 0; i < n; i++) {
                int slot = reqToToken.get(tableRow + start + i);
                kScale[i] = pool.row(true, slot, kvHead, keys, i * headDim);
                vScale[i] = pool.row(false, slot, kvHead, values, i * headDim);
            }
            for (int g = 0; g < group; g++) {
                float slope = alibi == null ? 0f : alibi.get(kvHead * group + g);
                for (int i = 0; i < n; i++) {
                    scores[g * n + i] = VectorMatmul.dot(qs, g * headDim, keys, i * headDim, headDim) * kScale[i] + slope * (start + i - (len - 1));
                }
            }
            float[] maxes = new float[group], sums = new float[group], acc = new float[group * headDim];
            for (int g = 0; g < group; g++) {
                maxes[g] = max(scores, g * n, n);
                sums[g] = expInPlace(scores, g * n, n, maxes[g]);
                for (int i = 0; i < n; i++) {
                    scores[g * n + i] *= vScale[i];
                }
                addWeightedSum(scores, g * n, values, n, headDim, acc, g * headDim);
            }
            for (int g = 0; g < group; g++) {
                int part = (b * qHeads + kvHead * group + g) * splits + split;
                partialMax.set(part, maxes[g]);
                partialSum.set(part, sums[g]);
                for (int d = 0; d < headDim; d++) {
                    partialAcc.set(part * headDim + d, acc[g * headDim + d]);
                }
            }
        });
    }

    /** A pool thread's buffers for one split's key and value rows (widened to f32) and their scales. */
    private static final class Rows {
        private static final ThreadLocal<Rows> OWN = ThreadLocal.withInitial(() -> new Rows(0, 0));
        final float[] keys, values, keyScales, valueScales;

        private Rows(int n, int headDim) {
            keys = new float[n * headDim];
            values = new float[n * headDim];
            keyScales = new float[n];
            valueScales = new float[n];
        }

        static Rows get(int n, int headDim) {
            Rows r = OWN.get();
            if (r.keyScales.length < n || r.keys.length < n * headDim) {
                r = new Rows(Math.max(n, 2 * r.keyScales.length), headDim);
                OWN.set(r);
            }
            return r;
        }
    }

    /**
     * out[outOff + d] += sum over i < n of p[pOff + i] * rows[i * dim + d]: a vector of d at a time with the
     * accumulator in a register across the rows (the rows are in cache), where an axpy per row loaded and stored it.
     */
    static void addWeightedSum(float[] p, int pOff, float[] rows, int n, int dim, float[] out, int outOff) {
        int d = 0;
        for (int bound = F.loopBound(dim); d < bound; d += LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOff + d), a1 = FloatVector.zero(F);
            int i = 0;
            for (; i + 1 < n; i += 2) {
                a0 = FloatVector.fromArray(F, rows, i * dim + d).fma(FloatVector.broadcast(F, p[pOff + i]), a0);
                a1 = FloatVector.fromArray(F, rows, (i + 1) * dim + d).fma(FloatVector.broadcast(F, p[pOff + i + 1]), a1);
            }
            if (i < n) {
                a0 = FloatVector.fromArray(F, rows, i * dim + d).fma(FloatVector.broadcast(F, p[pOff + i]), a0);
            }
            a0.add(a1).intoArray(out, outOff + d);
        }
        for (; d < dim; d++) {
            float s = out[outOff + d];
            for (int i = 0; i < n; i++) {
                s += p[pOff + i] * rows[i * dim + d];
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
                    addWeightedSum(p, 0, values, count, headDim, acc, i * headDim);
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
        float s = sum.reduceLanes(VectorOperators.ADD);
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
