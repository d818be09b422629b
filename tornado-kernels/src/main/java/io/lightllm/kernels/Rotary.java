package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Rotary position embedding applied in place to q [tokens, qHeads, headDim] and
 * k [tokens, kHeads, headDim] (f32). Pair i of the first rotaryDim elements of each head turns
 * by angle positions[t] * invFreq[i] (computed in float, as Hugging Face does); elements
 * from rotaryDim on are left as they are (partial rotary). Two pairings:
 * half-split (NeoX / Hugging Face: elements i and i + rotaryDim/2) and interleaved
 * (GPT-J / GGUF: elements 2i and 2i+1). invFreq [rotaryDim/2] and the attention scaling,
 * which multiplies cos and sin, come from {@link RopeScaling}.
 */
public final class Rotary {
    public static final KernelRef ROTARY = KernelRef.of(Rotary.class, "rotaryEmbedding");

    private Rotary() {
    }

    public static void rotaryEmbedding(FloatArray q, FloatArray k, IntArray positions, FloatArray invFreq, int tokens, int qHeads,
            int kHeads, int headDim, int rotaryDim, boolean interleaved, float attentionScaling) {
        int half = rotaryDim / 2;
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int h = 0; h < qHeads + kHeads; h++) {
                for (@Parallel int i = 0; i < half; i++) {
                    float angle = positions.get(t) * invFreq.get(i);
                    float cos = KMath.cos(angle) * attentionScaling;
                    float sin = KMath.sin(angle) * attentionScaling;
                    int first = interleaved ? 2 * i : i;
                    int second = interleaved ? 2 * i + 1 : i + half;
                    if (h < qHeads) {
                        int base = (t * qHeads + h) * headDim;
                        rotate(q, base + first, base + second, cos, sin);
                    } else {
                        int base = (t * kHeads + h - qHeads) * headDim;
                        rotate(k, base + first, base + second, cos, sin);
                    }
                }
            }
        }
    }

    /** (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin): Hugging Face's x * cos + rotate_half(x) * sin. */
    static void rotate(FloatArray x, int first, int second, float cos, float sin) {
        float x0 = x.get(first);
        float x1 = x.get(second);
        x.set(first, x0 * cos - x1 * sin);
        x.set(second, x1 * cos + x0 * sin);
    }

    /**
     * A model's rotary embedding: {@code invFreq} [rotaryDim / 2] ({@link RopeScaling#inverseFrequencies}),
     * the pairing, and the attention scaling that multiplies cos and sin.
     */
    public record Rope(DeviceBuffer invFreq, int rotaryDim, boolean interleaved, float attentionScaling) {
        public Rope {
            if (rotaryDim <= 0 || rotaryDim % 2 != 0) {
                throw new IllegalArgumentException("rotaryDim must be even and in (0, headDim], got " + rotaryDim);
            }
            Shapes.atLeast(invFreq, rotaryDim / 2, "invFreq");
        }
    }

    /**
     * Rotates q and k in place by {@code rope}; pass kHeads = 0 and any buffer as k to rotate q alone.
     */
    public static void launchRotary(Device device, DeviceBuffer q, DeviceBuffer k, DeviceBuffer positions, Rope rope, int tokens, int qHeads,
            int kHeads, int headDim) {
        Shapes.positive(tokens, "tokens");
        Shapes.positive(qHeads, "qHeads");
        if (kHeads < 0) {
            throw new IllegalArgumentException("kHeads must not be negative, got " + kHeads);
        }
        if (rope.rotaryDim() > headDim) {
            throw new IllegalArgumentException("rotaryDim must be even and in (0, headDim = " + headDim + "], got " + rope.rotaryDim());
        }
        Shapes.intIndexable((long) tokens * qHeads * headDim, "q");
        Shapes.atLeast(q, (long) tokens * qHeads * headDim, "q");
        Shapes.atLeast(k, (long) tokens * kHeads * headDim, "k");
        Shapes.atLeast(positions, tokens, "positions");
        device.launch(ROTARY, Grid.of(tokens, qHeads + kHeads, rope.rotaryDim() / 2), q, k, positions, rope.invFreq(), tokens, qHeads, kHeads,
                headDim, rope.rotaryDim(), rope.interleaved(), rope.attentionScaling());
    }
}
