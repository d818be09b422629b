package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of 32-bit signed integers. */
public final class IntArray extends NativeArray {
    private static final ValueLayout.OfInt LAYOUT = ValueLayout.JAVA_INT_UNALIGNED;

    public IntArray(MemorySegment segment) {
        super(segment, DType.I32);
    }

    public static IntArray allocate(int size) {
        return new IntArray(allocateSegment(size, DType.I32));
    }

    @Override
    public DType dtype() {
        return DType.I32;
    }

    public int get(int i) {
        return segment.getAtIndex(LAYOUT, i);
    }

    public void set(int i, int v) {
        segment.setAtIndex(LAYOUT, i, v);
    }

    @Override
    public float getFloat(int i) {
        return get(i);
    }

    @Override
    public void setFloat(int i, float v) {
        set(i, (int) v);
    }

    public static IntArray fromArray(int... values) {
        IntArray a = allocate(values.length);
        MemorySegment.copy(values, 0, a.segment, LAYOUT, 0, values.length);
        return a;
    }

    public int[] toArray() {
        return segment.toArray(LAYOUT);
    }
}
