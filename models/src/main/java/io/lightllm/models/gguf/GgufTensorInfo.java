package io.lightllm.models.gguf;

import java.util.Arrays;

/**
 * A tensor entry of a GGUF header.
 *
 * @param name     the GGUF name ("blk.0.attn_q.weight")
 * @param ggmlType ggml_type id
 * @param dims     GGUF order: dims[0] (ne[0]) varies fastest, the reverse of HF shapes
 * @param offset   byte offset from the start of the data section
 */
public record GgufTensorInfo(String name, int ggmlType, long[] dims, long offset) {

    public GgufTensorInfo {
        dims = dims.clone();
    }

    @Override
    public long[] dims() {
        return dims.clone();
    }

    /** The shape in Hugging Face (row-major, last dimension fastest) order. */
    public long[] hfShape() {
        long[] shape = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            shape[i] = dims[dims.length - 1 - i];
        }
        return shape;
    }

    public long elementCount() {
        long n = 1;
        for (long d : dims) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo t && name.equals(t.name) && ggmlType == t.ggmlType
                && Arrays.equals(dims, t.dims) && offset == t.offset;
    }

    @Override
    public int hashCode() {
        return name.hashCode();
    }

    @Override
    public String toString() {
        return name + " " + GgmlType.name(ggmlType) + Arrays.toString(dims) + "@" + offset;
    }
}
