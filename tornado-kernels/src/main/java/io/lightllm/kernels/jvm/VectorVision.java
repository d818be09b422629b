package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Vision;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;

/**
 * The JVM's {@link Vision#imageAttention} with the Vector API: one task per (image, head, block of queries),
 * the head's keys and values of the image copied once into contiguous f32 rows (the packed q/k/v rows interleave
 * heads), scores as vector dot products ({@link VectorMatmul#dot}), the softmax in a row of scores, the values
 * accumulated with FMAs ({@link VectorAttention#axpy}). Run as Java the portable kernel is scalar: with it (in its
 * first, two-pass form) a Llava-1.5-7B image took 25 s on two cores, 4.8 s with this.
 */
public final class VectorVision {
    /** Queries a task takes: the head's keys and values are copied once for these. */
    private static final int QUERY_BLOCK = 32;

    private VectorVision() {
    }

    /** Arguments as the portable kernel's: (out, q, k, v, images, seq, heads, headDim, scale, queryTiles). */
    public static void imageAttention(JvmDevice device, Object[] args) {
        FloatArray out = (FloatArray) args[0], q = (FloatArray) args[1], k = (FloatArray) args[2], v = (FloatArray) args[3];
        int images = (Integer) args[4], seq = (Integer) args[5], heads = (Integer) args[6], headDim = (Integer) args[7];
        float scale = (Float) args[8];
        int width = heads * headDim, blocks = (seq + QUERY_BLOCK - 1) / QUERY_BLOCK;
        device.parallelFor(images * heads * blocks, task -> {
            int block = task % blocks, head = task / blocks % heads, image = task / blocks / heads;
            int first = image * seq;
            float[] keys = new float[seq * headDim], values = new float[seq * headDim];
            for (int j = 0; j < seq; j++) {
                long at = ((long) (first + j) * width + head * headDim) * Float.BYTES;
                java.lang.foreign.MemorySegment.copy(k.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT, at, keys, j * headDim, headDim);
                java.lang.foreign.MemorySegment.copy(v.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT, at, values, j * headDim, headDim);
            }
            float[] query = new float[headDim], scores = new float[seq], acc = new float[headDim];
            for (int r = block * QUERY_BLOCK; r < Math.min(seq, (block + 1) * QUERY_BLOCK); r++) {
                long qAt = ((long) (first + r) * width + head * headDim) * Float.BYTES;
                java.lang.foreign.MemorySegment.copy(q.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT, qAt, query, 0, headDim);
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < seq; j++) {
                    scores[j] = VectorMatmul.dot(query, 0, keys, j * headDim, headDim) * scale;
                    max = Math.max(max, scores[j]);
                }
                float sum = VectorAttention.expInPlace(scores, 0, seq, max);
                java.util.Arrays.fill(acc, 0f);
                VectorAttention.addWeightedSum(scores, 0, values, 0, headDim, seq, headDim, acc, 0);
                long outAt = (long) (first + r) * width + head * headDim;
                for (int d = 0; d < headDim; d++) {
                    out.set((int) outAt + d, acc[d] / sum);
                }
            }
        });
    }
}
