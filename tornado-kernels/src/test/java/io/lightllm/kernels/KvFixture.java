package io.lightllm.kernels;

import io.lightllm.testing.TensorAssert;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A KV pool holding the tokens of a batch of requests at shuffled slots, with the token table,
 * and the naive attention over it in double precision. Slots no request owns hold NaN and
 * table entries past a request's tokens hold -1, so a kernel that reads outside what it
 * should poisons its output or fails.
 */
final class KvFixture {
    final int batch, qHeads, kvHeads, headDim, maxLen;
    final int[] tokens;
    final NativeArray kPool, vPool;
    final IntArray reqToToken;
    /** The table row of each request. */
    final IntArray reqRows;
    final FloatArray slopes;
    final float scale;

    KvFixture(int[] tokens, int qHeads, int kvHeads, int headDim, DType poolDtype, boolean alibi, long seed) {
        this.batch = tokens.length;
        this.tokens = tokens.clone();
        this.qHeads = qHeads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.scale = (float) (1 / Math.sqrt(headDim));
        int longest = 0, total = 0;
        for (int t : tokens) {
            longest = Math.max(longest, t);
            total += t;
        }
        this.maxLen = longest + 3;
        int slots = total + 5;
        List<Integer> order = new ArrayList<>();
        for (int s = 0; s < slots; s++) {
            order.add(s);
        }
        Collections.shuffle(order, new Random(seed));
        // request b lives in table row batch - 1 - b: kernels must go through reqRows
        reqRows = IntArray.allocate(batch);
        for (int b = 0; b < batch; b++) {
            reqRows.set(b, batch - 1 - b);
        }
        reqToToken = IntArray.allocate(batch * maxLen);
        for (int i = 0; i < batch * maxLen; i++) {
            reqToToken.set(i, -1);
        }
        kPool = NativeArray.allocate(poolDtype, (long) slots * kvHeads * headDim);
        vPool = NativeArray.allocate(poolDtype, (long) slots * kvHeads * headDim);
        for (int i = 0; i < kPool.getSize(); i++) {
            kPool.setFloat(i, Float.NaN);
            vPool.setFloat(i, Float.NaN);
        }
        NativeArray kValues = TensorAssert.fill(NativeArray.allocate(poolDtype, kvHeads * headDim * total), 1f, seed + 1);
        NativeArray vValues = TensorAssert.fill(NativeArray.allocate(poolDtype, kvHeads * headDim * total), 1f, seed + 2);
        int next = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < tokens[b]; t++, next++) {
                int slot = order.get(next);
                reqToToken.set(reqRows.get(b) * maxLen + t, slot);
                for (int e = 0; e < kvHeads * headDim; e++) {
                    kPool.setFloat(slot * kvHeads * headDim + e, kValues.getFloat(next * kvHeads * headDim + e));
                    vPool.setFloat(slot * kvHeads * headDim + e, vValues.getFloat(next * kvHeads * headDim + e));
                }
            }
        }
        slopes = alibi ? FloatArray.fromArray(Attention.alibiSlopes(qHeads)) : null;
    }

    /**
     * Request b's query q[qRow, h, :] at position qPos attending to keys 0..qPos: writes the
     * naive softmax attention (double, explicit causal range) to expected[qRow, h, :] and
     * returns the float32 error bound of a kernel computing it.
     *
     * <p>Bound: a score is a D-term dot product, scaled, plus the ALiBi term, so its float error
     * is at most (D + 3) u scale sum|q k| + 2 u |bias| (u = 2^-24, any summation order). Each
     * probability is then off by a relative 2 * that + 4u (exp to 4 ulp, as OpenCL allows); a
     * weighted mean of values in [-1, 1] moves by at most twice the relative weight error. The
     * online softmax rescales the partial sums once per key block (at most once per key, with
     * one work-item per group) and the merge adds a few operations per split: relative error at
     * most (6 keys + 2 splits + 16) u on sums of |p v| <= sum p.
     */
    double attend(FloatArray q, int qRow, int b, int h, int qPos, int splits, FloatArray expected) {
        int kvHead = h / (qHeads / kvHeads);
        double[] scores = new double[qPos + 1];
        double max = Double.NEGATIVE_INFINITY, scoreError = 0;
        for (int t = 0; t <= qPos; t++) {
            int base = (reqToToken.get(reqRows.get(b) * maxLen + t) * kvHeads + kvHead) * headDim;
            double dot = 0, magnitude = 0;
            for (int d = 0; d < headDim; d++) {
                double term = (double) q.get((qRow * qHeads + h) * headDim + d) * kPool.getFloat(base + d);
                dot += term;
                magnitude += Math.abs(term);
            }
            double bias = slopes == null ? 0 : (double) slopes.get(h) * (t - qPos);
            scores[t] = dot * scale + bias;
            max = Math.max(max, scores[t]);
            scoreError = Math.max(scoreError, (headDim + 3) * MatmulReference.UNIT_ROUNDOFF * scale * magnitude
                    + 2 * MatmulReference.UNIT_ROUNDOFF * Math.abs(bias));
        }
        double sum = 0;
        double[] out = new double[headDim];
        for (int t = 0; t <= qPos; t++) {
            double p = Math.exp(scores[t] - max);
            sum += p;
            int base = (reqToToken.get(reqRows.get(b) * maxLen + t) * kvHeads + kvHead) * headDim;
            for (int d = 0; d < headDim; d++) {
                out[d] += p * vPool.getFloat(base + d);
            }
        }
        for (int d = 0; d < headDim; d++) {
            expected.set((qRow * qHeads + h) * headDim + d, (float) (out[d] / sum));
        }
        double u = MatmulReference.UNIT_ROUNDOFF;
        return 2 * (2 * scoreError + 4 * u) + (6 * (qPos + 1) + 2 * splits + 16) * u;
    }
}
