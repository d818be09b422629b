package io.lightllm.kernels.jvm;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;

/**
 * {@link io.lightllm.kernels.Rotary#rotaryEmbedding} on the JVM: each token's cos and sin computed once
 * for all its heads. The portable kernel, a work-item per (token, head, pair), evaluated both for
 * every head: 40 µs a decode token of a 1B model on this machine's JVM, where the angles are 64 trig
 * calls. The same float arithmetic as the kernel, so the same bits.
 */
final class JvmRotary {
    private JvmRotary() {
    }

    /**
     * cos[i] and sin[i] of token t's angle for pair i (its position times invFreq[i]), times the attention scaling, for
     * the arrays' pairs: the portable kernels' arithmetic ({@code Rotary}, {@code KvCache.storePair}), so the same bits.
     */
    static void angles(IntArray positions, FloatArray invFreq, int t, float scaling, float[] cos, float[] sin) {
        for (int i = 0; i < cos.length; i++) {
            float angle = positions.get(t) * invFreq.get(i);
            cos[i] = KMath.cos(angle) * scaling;
            sin[i] = KMath.sin(angle) * scaling;
        }
    }

    /** Arguments as the kernel's: q, k, positions, invFreq, tokens, qHeads, kHeads, headDim, rotaryDim, interleaved, attentionScaling. */
    static void apply(Object[] args) {
        FloatArray q = (FloatArray) args[0], k = (FloatArray) args[1], invFreq = (FloatArray) args[3];
        IntArray positions = (IntArray) args[2];
        int tokens = (Integer) args[4], qHeads = (Integer) args[5], kHeads = (Integer) args[6], headDim = (Integer) args[7];
        int half = (Integer) args[8] / 2;
        boolean interleaved = (Boolean) args[9];
        float scaling = (Float) args[10];
        float[] cos = new float[half], sin = new float[half];
        for (int t = 0; t < tokens; t++) {
            angles(positions, invFreq, t, scaling, cos, sin);
            for (int h = 0; h < qHeads + kHeads; h++) {
                FloatArray x = h < qHeads ? q : k;
                int base = h < qHeads ? (t * qHeads + h) * headDim : (t * kHeads + h - qHeads) * headDim;
                for (int i = 0; i < half; i++) {
                    int first = base + (interleaved ? 2 * i : i), second = base + (interleaved ? 2 * i + 1 : i + half);
                    float x0 = x.get(first), x1 = x.get(second);
                    x.set(first, x0 * cos[i] - x1 * sin[i]);
                    x.set(second, x1 * cos[i] + x0 * sin[i]);
                }
            }
        }
    }
}
