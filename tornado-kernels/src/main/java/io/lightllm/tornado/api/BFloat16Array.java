package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of bfloat16 values, read and written as float. */
public final class BFloat16Array extends NativeArray {
    private static final ValueLayout.OfShort LAYOUT = ValueLayout.JAVA_SHORT_UNALIGNED;

    public BFloat16Array(MemorySegment segment) {
        super(segment, DType.BF16);
    }

    public static BFloat16Array allocate(int size) {
        return new BFloat16Array(allocateSegment(size, DType.BF16));
    }

    @Override
    public DType dtype() {
        return DType.BF16;
    }

    /** Reads the bfloat16 element at {@code i} as a float. */
    public float get(int i) {
        return KMath.bf16ToFloat(segment.getAtIndex(LAYOUT, i));
    }

    /** Stores {@code v} rounded to bfloat16 (nearest even). */
    public void set(int i, float v) {
        segment.setAtIndex(LAYOUT, i, KMath.floatToBf16(v));
    }

    public short getBits(int i) {
        return segment.getAtIndex(LAYOUT, i);
    }

    @Override
    public float getFloat(int i) {
        return get(i);
    }

    @Override
    public void setFloat(int i, float v) {
        set(i, v);
    }
}
