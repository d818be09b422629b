package io.lightllm.models.weights;

import io.lightllm.tornado.api.FloatArray;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Dequantisation of GGML's Q8_0 blocks: an f16 scale followed by 32 signed bytes, x = scale * q. */
public final class Q8_0 {
    public static final int BLOCK_SIZE = 32;
    public static final int BLOCK_BYTES = 2 + BLOCK_SIZE;

    private Q8_0() {
    }

    /** The scale of block {@code block}. */
    public static float scale(MemorySegment blocks, long block) {
        return Float.float16ToFloat(blocks.get(ValueLayout.JAVA_SHORT_UNALIGNED, block * BLOCK_BYTES));
    }

    /** The quantised value {@code i} (element index over the whole tensor). */
    public static byte quant(MemorySegment blocks, long i) {
        return blocks.get(ValueLayout.JAVA_BYTE, (i / BLOCK_SIZE) * BLOCK_BYTES + 2 + i % BLOCK_SIZE);
    }

    /** Element {@code i} as a float. */
    public static float value(MemorySegment blocks, long i) {
        return scale(blocks, i / BLOCK_SIZE) * quant(blocks, i);
    }

    /** Writes every element of {@code blocks} into {@code out} (which holds exactly that many floats). */
    public static void dequantize(MemorySegment blocks, FloatArray out) {
        long n = blocks.byteSize() / BLOCK_BYTES * BLOCK_SIZE;
        if (blocks.byteSize() % BLOCK_BYTES != 0 || n != out.getSize()) {
            throw new IllegalArgumentException("Q8_0 data of " + blocks.byteSize() + " bytes does not fill "
                    + out.getSize() + " floats");
        }
        for (long b = 0; b < n / BLOCK_SIZE; b++) {
            float d = scale(blocks, b);
            long base = b * BLOCK_BYTES + 2;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                out.set((int) (b * BLOCK_SIZE + j), d * blocks.get(ValueLayout.JAVA_BYTE, base + j));
            }
        }
    }
}
