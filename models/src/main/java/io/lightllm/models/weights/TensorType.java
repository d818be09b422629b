package io.lightllm.models.weights;

import io.lightllm.kernels.QuantFormat;
import io.lightllm.tornado.api.DType;

/**
 * How a stored tensor's elements are encoded: a plain {@link DType}, or a block-quantised GGML
 * type ({@link QuantFormat}: its layout, and the kernels that read it packed) whose elements come in
 * blocks of {@link #blockSize()} taking {@link #blockBytes()} bytes.
 */
public enum TensorType {
    F32(DType.F32),
    F16(DType.F16),
    BF16(DType.BF16),
    I8(DType.I8),
    I32(DType.I32),
    I64(DType.I64),
    Q4_0(QuantFormat.Q4_0),
    Q8_0(QuantFormat.Q8_0),
    Q4_K(QuantFormat.Q4_K),
    Q5_K(QuantFormat.Q5_K),
    Q6_K(QuantFormat.Q6_K),
    /** AWQ and GPTQ int4 matrices, converted at load ({@link Int4CheckpointWeights}). */
    INT4_ZP(QuantFormat.INT4_ZP);

    private final DType dtype;
    private final QuantFormat format;
    private final int blockSize;
    private final int blockBytes;

    TensorType(DType dtype) {
        this.dtype = dtype;
        this.format = null;
        this.blockSize = 1;
        this.blockBytes = dtype.bytes();
    }

    TensorType(QuantFormat format) {
        this.dtype = null;
        this.format = format;
        this.blockSize = format.blockSize();
        this.blockBytes = format.blockBytes();
    }

    public static TensorType of(DType dtype) {
        return valueOf(dtype.name());
    }

    public boolean isQuantized() {
        return dtype == null;
    }

    /** The block format of a quantised type; null for plain dtypes. */
    public QuantFormat quantFormat() {
        return format;
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
