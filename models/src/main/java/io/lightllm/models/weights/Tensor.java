package io.lightllm.models.weights;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A stored tensor: its name, encoding, shape in Hugging Face order (row-major, the last dimension
 * varies fastest) and its bytes, a slice of the memory-mapped file (never copied to the heap).
 */
public record Tensor(String name, TensorType type, long[] shape, MemorySegment data) {

    public Tensor {
        shape = shape.clone();
        long expected = type.byteSize(elementCount(shape));
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + " " + type + Arrays.toString(shape) + " needs "
                    + expected + " bytes but has " + data.byteSize());
        }
    }

    private static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Size of dimension {@code i}. */
    public long dim(int i) {
        return shape[i];
    }

    public int rank() {
        return shape.length;
    }

    public long elementCount() {
        return elementCount(shape);
    }

    /** The data as an array of its dtype, sharing the mapped memory (no copy). Not for quantised types. */
    public NativeArray view() {
        if (type.isQuantized()) {
            throw new IllegalStateException("tensor " + name + " is " + type
                    + ": use data() for the raw blocks or toFloat() to dequantise");
        }
        return NativeArray.wrap(data, type.dtype());
    }

    /** A new off-heap f32 copy of the values (dequantised for quantised types). */
    public FloatArray toFloat() {
        if (type.isQuantized()) {
            int rowLength = Math.toIntExact(shape[shape.length - 1]);
            return type.quantFormat().dequantize(data, Math.toIntExact(elementCount() / rowLength), rowLength);
        }
        FloatArray out = FloatArray.allocate(Math.toIntExact(elementCount()));
        NativeArray src = view();
        for (int i = 0; i < out.getSize(); i++) {
            out.set(i, src.getFloat(i));
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && name.equals(t.name) && type == t.type && Arrays.equals(shape, t.shape)
                && data.equals(t.data);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + type + Arrays.toString(shape);
    }
}
