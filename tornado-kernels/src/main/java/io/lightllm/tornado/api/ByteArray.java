package io.lightllm.tornado.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap array of signed 8-bit integers. */
public final class ByteArray extends NativeArray {
    private static final ValueLayout.OfByte LAYOUT = ValueLayout.JAVA_BYTE;

    public ByteArray(MemorySegment segment) {
        super(segment, DType.I8);
    }

    public static ByteArray allocate(int size) {
        return new ByteArray(allocateSegment(size, DType.I8));
    }

    @Override
    public DType dtype() {
        return DType.I8;
    }

    public byte get(int i) {
        return segment.getAtIndex(LAYOUT, i);
    }

    public void set(int i, byte v) {
        segment.setAtIndex(LAYOUT, i, v);
    }

    @Override
    public float getFloat(int i) {
        return get(i);
    }

    @Override
    public void setFloat(int i, float v) {
        set(i, (byte) v);
    }
}
