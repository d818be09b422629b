package io.lightllm.models.weights;

import io.lightllm.tornado.api.DType;

/**
 * How a stored tensor's elements are encoded: a plain {@link DType}, or a block-quantised GGML
 * type whose elements come in blocks of {@link #blockSize()} taking {@link #blockBytes()} bytes.
 */
public enum TensorType {
    F32(DType.F32),
    F16(DType.F16),
    BF16(DType.BF16),
    I8(DType.I8),
    I32(DType.I32),
    I64(DType.I64),
    /** Blocks of 32: an f16 scale, then 32 int8 values; x = scale * q. */
    Q8_0(null, 32, 2 + 32);

    private final DType dtype;
    private final int blockSize;
    private final int blockBytes;

    TensorType(DType dtype) {
        this(dtype, 1, dtype.bytes());
    }

    TensorType(DType dtype, int blockSize, int blockBytes) {
        this.dtype = dtype;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    public static TensorType of(DType dtype) {
        return valueOf(dtype.name());
    }

    public boolean isQuantized() {
        return dtype == null;
    }

    /** The element type of an unquantised tensor. */
    public DType dtype() {
        if (dtype == null) {
            throw new IllegalStateException(this + " is a quantised type without a plain element dtype");
        }
        return dtype;
    }

    public int blockSize() {
        return blockSize;
    }

    public int blockBytes() {
        return blockBytes;
    }

    /** Bytes taken by {@code elements} values; quantised tensors must hold whole blocks. */
    public long byteSize(long elements) {
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + this
                    + " blocks of " + blockSize);
        }
        return elements / blockSize * blockBytes;
    }
}
