package io.lightllm.kernels.jvm;

import io.lightllm.kernels.KvCache;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;

/**
 * {@link KvCache#splitQkv} on the JVM: each token's cos and sin computed once for all its heads, as {@link JvmRotary}
 * does for the rotary kernel. The portable kernel's work-item per (token, head, pair) evaluated them for every head:
 * 52 us a batch-1 step's launch on a 1B model (48 heads, 32 rotated pairs, on this machine's 2 cores), 3 % of an int4
 * step. The same float arithmetic ({@link KvCache#storeRotated}), so the same bits.
 */
final class JvmSplitQkv {
    private JvmSplitQkv() {
    }

    /**
     * Arguments as the kernel's: qkv, q, k, v, kPool, vPool, toPool, destIndex, positions, invFreq, tokens, qHeads, kvHeads,
     * headDim, rotaryDim, interleaved, attentionScaling, queryScale, slots. A task per token (a prefill's tokens go to the device's threads).
     */
    static void apply(JvmDevice device, Object[] args) {
        FloatArray qkv = (FloatArray) args[0], k = (FloatArray) args[2], v = (FloatArray) args[3];
        NativeArray q = (NativeArray) args[1];
        NativeArray kPool = (NativeArray) args[4], vPool = (NativeArray) args[5];
        boolean toPool = (Boolean) args[6];
        IntArray destIndex = (IntArray) args[7], positions = (IntArray) args[8];
        FloatArray invFreq = (FloatArray) args[9];
        int tokens = (Integer) args[10], qHeads = (Integer) args[11], kvHeads = (Integer) args[12], headDim = (Integer) args[13];
        int rotaryDim = (Integer) args[14];
        boolean interleaved = (Boolean) args[15];
        float scaling = (Float) args[16], queryScale = (Float) args[17];
        int slots = (Integer) args[18];
        int heads = qHeads + 2 * kvHeads, width = heads * headDim, half = rotaryDim / 2;
        device.parallelFor(tokens, t -> { // one token (a decode step) runs on the calling thread (ThreadTeam.run)
            float[] cos = new float[half], sin = new float[half];
            JvmRotary.angles(positions, invFreq, t, scaling, cos, sin);
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < headDim / 2; i++) {
                    float x0 = qkv.get(t * width + h * headDim + KvCache.pairFirst(i, rotaryDim, interleaved));
                    float x1 = qkv.get(t * width + h * headDim + KvCache.pairSecond(i, rotaryDim, interleaved));
                    boolean turns = KvCache.rotates(h, i, qHeads, kvHeads, rotaryDim);
                    KvCache.storeRotated(x0, x1, turns ? cos[i] : 1f, turns ? sin[i] : 0f, t, h, i, q, k, v, kPool, vPool, toPool, destIndex, qHeads,
                            kvHeads, headDim, rotaryDim, interleaved, queryScale, slots);
                }
            }
        });
    }
}
