package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of 32-bit IEEE floats. */
public final class FloatArray extends NativeArray {
    private static final ValueLayout.OfFloat LAYOUT = ValueLayout.JAVA_FLOAT_UNALIGNED;

    public FloatArray(MemorySegment segment) {
        super(segment, DType.F32);
    }

    public static FloatArray allocate(int size) {
        return new FloatArray(allocateSegment(size, DType.F32));
    }

    @Override
    public DType dtype() {
        return DType.F32;
    }

    public float get(int i) {
        return segment.getAtIndex(LAYOUT, i);
    }

    public void set(int i, float v) {
        segment.setAtIndex(LAYOUT, i, v);
    }

    @Override
    public float getFloat(int i) {
        return get(i);
    }

    @Override
    public void setFloat(int i, float v) {
        set(i, v);
    }

    public static FloatArray fromArray(float... values) {
        FloatArray a = allocate(values.length);
        MemorySegment.copy(values, 0, a.segment, LAYOUT, 0, values.length);
        return a;
    }

    public float[] toArray() {
        return segment.toArray(LAYOUT);
    }

    public void fill(float v) {
        for (int i = 0; i < getSize(); i++) {
            set(i, v);
        }
    }
}
