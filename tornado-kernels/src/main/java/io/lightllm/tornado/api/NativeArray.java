package io.lightllm.tornado.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * An off-heap array over a {@link MemorySegment}: the one array type that kernels see, on
 * every backend. It can wrap any segment (an mmap'd checkpoint region, a pinned buffer)
 * without copying.
 *
 * <p>A kernel parameter may be declared as {@code NativeArray} itself and read with
 * {@link #getFloat}/{@link #setFloat}: the compiler then specialises the kernel for the
 * concrete array types of each launch, so one Java method serves f32, f16, bf16 and fp8 data.
 */
public abstract sealed class NativeArray
        permits FloatArray, HalfArray, BFloat16Array, Float8Array, ByteArray, IntArray, LongArray {

    protected final MemorySegment segment;
    private final int size;

    protected NativeArray(MemorySegment segment, DType dtype) {
        if (segment.byteSize() % dtype.bytes() != 0) {
            throw new IllegalArgumentException("segment of " + segment.byteSize() + " bytes is not a whole number of " + dtype);
        }
        long n = segment.byteSize() / dtype.bytes();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("array of " + n + " elements is larger than int indexing allows");
        }
        this.segment = segment;
        this.size = (int) n;
    }

    protected static MemorySegment allocateSegment(long elements, DType dtype) {
        return Arena.ofAuto().allocate(elements * dtype.bytes(), 64);
    }

    public abstract DType dtype();

    /** The element at {@code i}, widened to float (the numeric view dtype-generic kernels use). */
    public abstract float getFloat(int i);

    /** Stores {@code v} at {@code i}, narrowed to this array's type (round to nearest even). */
    public abstract void setFloat(int i, float v);

    /**
     * Reads {@code count} (2, 4 or 8; a constant in kernels) consecutive elements from
     * {@code index}, a multiple of {@code count}, widened to float into {@code dst[dstIndex..]}.
     * On a GPU this is one vector load (two for 8 floats): 8 halves or 4 floats in 16 bytes.
     */
    public final void getFloats(int index, float[] dst, int dstIndex, int count) {
        checkVector(index, count);
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = getFloat(index + i);
        }
    }

    /** Stores {@code src[srcIndex..]} into {@code count} elements from {@code index}, as {@link #getFloats} reads them. */
    public final void setFloats(int index, float[] src, int srcIndex, int count) {
        checkVector(index, count);
        for (int i = 0; i < count; i++) {
            setFloat(index + i, src[srcIndex + i]);
        }
    }

    /**
     * Reads {@code words} (1, 2 or 4; a constant in kernels) raw 32-bit words from the bytes that
     * start at element {@code index} (aligned to the access: 4, 8 or 16 bytes) into
     * {@code dst[dstIndex..]}, little-endian: 16-bit data comes as packed pairs, ready for an MMA
     * fragment, 8-bit data as four bytes a word. One vector load on a GPU.
     */
    public final void getWords(int index, int[] dst, int dstIndex, int words) {
        if (words != 1 && words != 2 && words != 4) {
            throw new IllegalArgumentException("word accesses take 1, 2 or 4 words, not " + words);
        }
        long offset = (long) index * dtype().bytes();
        if (offset % (4L * words) != 0) {
            throw new IllegalArgumentException("a load of " + words + " words needs a byte offset that is a multiple of " + 4 * words
                    + ", got " + offset);
        }
        for (int i = 0; i < words; i++) {
            dst[dstIndex + i] = segment.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, offset + 4L * i);
        }
    }

    /** The alignment the GPU's vector accesses need, checked here so that the JVM reference catches a kernel that breaks it. */
    private static void checkVector(int index, int count) {
        if (count != 2 && count != 4 && count != 8) {
            throw new IllegalArgumentException("vector accesses take 2, 4 or 8 elements, not " + count);
        }
        if (index % count != 0) {
            throw new IllegalArgumentException("a vector access of " + count + " elements needs an index that is a multiple of " + count
                    + ", got " + index);
        }
    }

    /** Number of elements. Host code only: kernels take lengths as int parameters. */
    public final int getSize() {
        return size;
    }

    public final MemorySegment segment() {
        return segment;
    }

    public final long byteSize() {
        return segment.byteSize();
    }

    /** Copies every element of {@code other} (same dtype, same size) into this array. */
    public void copyFrom(NativeArray other) {
        if (other.dtype() != dtype() || other.getSize() != getSize()) {
            throw new IllegalArgumentException("copy needs equal dtype and size");
        }
        segment.copyFrom(other.segment);
    }

    /** Wraps a segment as the array class of {@code dtype}. */
    public static NativeArray wrap(MemorySegment segment, DType dtype) {
        return switch (dtype) {
            case F32 -> new FloatArray(segment);
            case F16 -> new HalfArray(segment);
            case BF16 -> new BFloat16Array(segment);
            case F8_E4M3 -> new Float8Array(segment);
            case I8 -> new ByteArray(segment);
            case I32 -> new IntArray(segment);
            case I64 -> new LongArray(segment);
        };
    }

    public static NativeArray allocate(DType dtype, long elements) {
        return wrap(allocateSegment(elements, dtype), dtype);
    }

    /** The array class that holds elements of {@code dtype}. */
    public static Class<? extends NativeArray> classOf(DType dtype) {
        return switch (dtype) {
            case F32 -> FloatArray.class;
            case F16 -> HalfArray.class;
            case BF16 -> BFloat16Array.class;
            case F8_E4M3 -> Float8Array.class;
            case I8 -> ByteArray.class;
            case I32 -> IntArray.class;
            case I64 -> LongArray.class;
        };
    }

    /** The dtype whose elements {@code arrayClass} holds, or null for {@code NativeArray} itself. */
    public static DType dtypeOf(Class<?> arrayClass) {
        for (DType d : DType.values()) {
            if (classOf(d) == arrayClass) {
                return d;
            }
        }
        return null;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + size + "]";
    }
}
