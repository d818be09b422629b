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
    /** The sliding window {@link #attend} applies: a query sees its last {@code window} tokens (0: all before it). */
    int window;

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
        return attend(q, qRow, b, h, qPos, splits, expected, false);
    }

    /**
     * {@link #attend(FloatArray, int, int, int, int, int, FloatArray)}; with {@code halfOperands}, the
     * bound of a tensor-core kernel, whose MMA operands are f16: the scaled queries (and, for int8
     * pools, the dequantised keys and values) rounded to f16 (relative 2^-11, or 2^-25 absolute below
     * f16's normal range), and the probabilities too, while the softmax sum stays f32. A score then
     * moves by a further 2^-11 scale sum|q k| for each rounded operand (both, to be safe) plus
     * 2^-24 sum|k|; the output by 2 2^-11 max|v| (rounded probabilities, rounded int8 values) and
     * 2^-25 max|v| per key. The tensor cores' f32 sums round in their own way: twice the f32 terms.
     */
    double attend(FloatArray q, int qRow, int b, int h, int qPos, int splits, FloatArray expected, boolean halfOperands) {
        int kvHead = h / (qHeads / kvHeads);
        int first = window > 0 ? Math.max(0, qPos - window + 1) : 0;
        double[] scores = new double[qPos + 1];
        double max = Double.NEGATIVE_INFINITY, scoreError = 0;
        for (int t = first; t <= qPos; t++) {
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
            double error = (headDim + 3) * MatmulReference.UNIT_ROUNDOFF * scale * magnitude + 2 * MatmulReference.UNIT_ROUNDOFF * Math.abs(bias);
            if (halfOperands) {
                double keys = 0;
                for (int d = 0; d < headDim; d++) {
                    keys += Math.abs(kPool.getFloat(base + d));
                }
                error = 2 * error + 2 * HALF_ROUNDOFF * scale * magnitude + Math.scalb(1.0, -24) * keys;
            }
            scoreError = Math.max(scoreError, error);
        }
        double sum = 0;
        double[] out = new double[headDim];
        for (int t = first; t <= qPos; t++) {
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
        double bound = 2 * (2 * scoreError + 4 * u) + (6 * (qPos + 1) + 2 * splits + 16) * u;
        if (halfOperands) {
            double maxV = 0;
            for (int t = first; t <= qPos; t++) {
                int base = (reqToToken.get(reqRows.get(b) * maxLen + t) * kvHeads + kvHead) * headDim;
                for (int d = 0; d < headDim; d++) {
                    maxV = Math.max(maxV, Math.abs(vPool.getFloat(base + d)));
                }
            }
            bound = 2 * bound + (2 * HALF_ROUNDOFF + (qPos + 1) * Math.scalb(1.0, -25)) * maxV;
        }
        return bound;
    }

    /** The unit roundoff of f16: 2^-11. */
    static final double HALF_ROUNDOFF = Math.scalb(1.0, -11);

    /** A pool of codes (int8 or fp8) with one scale per (slot, head) row. */
    interface Codes {
        NativeArray keys();

        NativeArray values();

        FloatArray keyScales();

        FloatArray valueScales();

        /** The codes and scales on {@code device}, as attention reads them. */
        default io.lightllm.kernels.Attention.KvView upload(io.lightllm.tornado.runtime.Device device) {
            return new io.lightllm.kernels.Attention.KvView(device.upload(keys()), device.upload(values()), device.upload(keyScales()),
                    device.upload(valueScales()));
        }
    }

    /** Int8 codes of the pool with one scale per (slot, head) row. */
    record Int8Pool(io.lightllm.tornado.api.ByteArray keys, io.lightllm.tornado.api.ByteArray values, FloatArray keyScales, FloatArray valueScales)
            implements Codes {
    }

    /**
     * Quantises the (f32) pool to symmetric int8 per (slot, head) row, as KvCache.copyToPoolInt8
     * does, and replaces the pool's values by the dequantised ones (code times scale), so that
     * {@link #attend} gives the reference of attention over the int8 pool.
     */
    Int8Pool quantise() {
        int rows = kPool.getSize() / headDim;
        Int8Pool p = new Int8Pool(io.lightllm.tornado.api.ByteArray.allocate(kPool.getSize()), io.lightllm.tornado.api.ByteArray.allocate(kPool.getSize()),
                FloatArray.allocate(rows), FloatArray.allocate(rows));
        quantise(kPool, p.keys(), p.keyScales());
        quantise(vPool, p.values(), p.valueScales());
        return p;
    }

    /** Fp8 e4m3 codes of the pool with one scale per (slot, head) row. */
    record Fp8Pool(io.lightllm.tornado.api.Float8Array keys, io.lightllm.tornado.api.Float8Array values, FloatArray keyScales,
            FloatArray valueScales) implements Codes {
    }

    /**
     * Quantises the (f32) pool to fp8 e4m3 per (slot, head) row with scale max|x| / 448, as
     * KvCache.copyToPoolFp8 does, and replaces the pool's values by the dequantised ones (code
     * value times scale), so that {@link #attend} gives the reference of attention over the fp8 pool.
     */
    Fp8Pool quantiseFp8() {
        int rows = kPool.getSize() / headDim;
        Fp8Pool p = new Fp8Pool(io.lightllm.tornado.api.Float8Array.allocate(kPool.getSize()),
                io.lightllm.tornado.api.Float8Array.allocate(kPool.getSize()), FloatArray.allocate(rows), FloatArray.allocate(rows));
        quantiseFp8(kPool, p.keys(), p.keyScales());
        quantiseFp8(vPool, p.values(), p.valueScales());
        return p;
    }

    private void quantiseFp8(NativeArray pool, io.lightllm.tornado.api.Float8Array codes, FloatArray scales) {
        for (int row = 0; row < scales.getSize(); row++) {
            float max = 0f;
            for (int d = 0; d < headDim; d++) {
                float v = pool.getFloat(row * headDim + d);
                max = Float.isNaN(v) ? max : Math.max(max, Math.abs(v));
            }
            // unused slots hold NaN in the fixture: their scale and codes are NaN, so stray reads still show
            float scale = Float.isNaN(pool.getFloat(row * headDim)) ? Float.NaN : max / io.lightllm.tornado.api.KMath.E4M3_MAX;
            scales.set(row, scale);
            for (int d = 0; d < headDim; d++) {
                float v = pool.getFloat(row * headDim + d);
                codes.set(row * headDim + d, scale == 0f ? 0f : v / scale);
                pool.setFloat(row * headDim + d, codes.get(row * headDim + d) * scale);
            }
        }
    }

    private void quantise(NativeArray pool, io.lightllm.tornado.api.ByteArray codes, FloatArray scales) {
        for (int row = 0; row < scales.getSize(); row++) {
            float max = 0f;
            for (int d = 0; d < headDim; d++) {
                float v = pool.getFloat(row * headDim + d);
                max = Float.isNaN(v) ? max : Math.max(max, Math.abs(v));
            }
            float scale = max / 127f;
            // unused slots hold NaN in the fixture: their scale is NaN, so stray reads still show
            scales.set(row, Float.isNaN(pool.getFloat(row * headDim)) ? Float.NaN : scale);
            for (int d = 0; d < headDim; d++) {
                float v = pool.getFloat(row * headDim + d);
                byte c = Float.isNaN(v) || scale == 0f ? 0 : (byte) Math.round(v / scale);
                codes.set(row * headDim + d, c);
                pool.setFloat(row * headDim + d, Float.isNaN(v) ? Float.NaN : c * scale);
            }
        }
    }
}
