package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of 64-bit signed integers. */
public final class LongArray extends NativeArray {
    private static final ValueLayout.OfLong LAYOUT = ValueLayout.JAVA_LONG_UNALIGNED;

    public LongArray(MemorySegment segment) {
        super(segment, DType.I64);
    }

    public static LongArray allocate(int size) {
        return new LongArray(allocateSegment(size, DType.I64));
    }

    @Override
    public DType dtype() {
        return DType.I64;
    }

    public long get(int i) {
        return segment.getAtIndex(LAYOUT, i);
    }

    public void set(int i, long v) {
        segment.setAtIndex(LAYOUT, i, v);
    }

    @Override
    public float getFloat(int i) {
        return get(i);
    }

    @Override
    public void setFloat(int i, float v) {
        set(i, (long) v);
    }
}
