package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of IEEE half-precision floats (f16), read and written as float. */
public final class HalfArray extends NativeArray {
    private static final ValueLayout.OfShort LAYOUT = ValueLayout.JAVA_SHORT_UNALIGNED;

    public HalfArray(MemorySegment segment) {
        super(segment, DType.F16);
    }

    public static HalfArray allocate(int size) {
        return new HalfArray(allocateSegment(size, DType.F16));
    }

    @Override
    public DType dtype() {
        return DType.F16;
    }

    /** Reads the half-precision element at {@code i} as a float. */
    public float get(int i) {
        return Float.float16ToFloat(segment.getAtIndex(LAYOUT, i));
    }

    /** Stores {@code v} rounded to half precision (nearest even). */
    public void set(int i, float v) {
        segment.setAtIndex(LAYOUT, i, Float.floatToFloat16(v));
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
