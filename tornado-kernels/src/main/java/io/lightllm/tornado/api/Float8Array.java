package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of fp8 E4M3 ("fn") values, read and written as float ({@link KMath#e4m3ToFloat}, {@link KMath#floatToE4m3}). */
public final class Float8Array extends NativeArray {
    private static final ValueLayout.OfByte LAYOUT = ValueLayout.JAVA_BYTE;

    public Float8Array(MemorySegment segment) {
        super(segment, DType.F8_E4M3);
    }

    public static Float8Array allocate(int size) {
        return new Float8Array(allocateSegment(size, DType.F8_E4M3));
    }

    @Override
    public DType dtype() {
        return DType.F8_E4M3;
    }

    /** Reads the e4m3 element at {@code i} as a float (exact). */
    public float get(int i) {
        return KMath.e4m3ToFloat(segment.get(LAYOUT, i));
    }

    /** Stores {@code v} rounded to e4m3 (nearest even; beyond +-448 saturated, NaN kept). */
    public void set(int i, float v) {
        segment.set(LAYOUT, i, KMath.floatToE4m3(v));
    }

    /** The code at {@code i}. */
    public byte getBits(int i) {
        return segment.get(LAYOUT, i);
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
