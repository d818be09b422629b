package io.lightllm.kernels;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * Rows of activations as int8 codes, the form the batch-1 GEMVs on int8 activations compute with
 * ({@link Matmul#matmulInt8GemvQ8}, {@link QuantMatmul#matmulInt4GemvQ8}): over groups of {@code group} elements
 * (16 for int8 rows, 128 for int4 blocks), scales[g] = max |x| / 127 and codes[i] = x[i] · 127 / max |x| rounded half
 * to even, exactly as those GEMVs round their f32 input themselves. The norm before a projection writes them
 * ({@link Norms#launchRmsNormCodes}), so that the GEMV reads one byte an activation instead of four and no team of it
 * rounds the group again: in the int4 GEMV the rounding was some 70 of about 190 instructions a step, and it is bound by
 * instruction issue, not memory (docs/quantization.md). The products are the same floats either way.
 */
public record ActivationCodes(DeviceBuffer codes, DeviceBuffer scales, int group) implements AutoCloseable {
    /** The groups {@link Matmul#matmulInt8GemvQ8} (16) and {@link QuantMatmul#matmulInt4GemvQ8} (128) round in. */
    public static final int INT8_ROWS_GROUP = 16, INT4_BLOCKS_GROUP = 128;

    public ActivationCodes {
        if (group != INT8_ROWS_GROUP && group != INT4_BLOCKS_GROUP) {
            throw new IllegalArgumentException("activation codes come in groups of " + INT8_ROWS_GROUP + " or " + INT4_BLOCKS_GROUP + ", not " + group);
        }
        if (codes.dtype() != DType.I8 || scales.dtype() != DType.F32) {
            throw new IllegalArgumentException("activation codes are int8 with f32 scales, not " + codes.dtype() + " and " + scales.dtype());
        }
    }

    /** Room for {@code elements} activations (a multiple of {@code group}). */
    public static ActivationCodes allocate(Device device, long elements, int group) {
        if (elements % group != 0) {
            throw new IllegalArgumentException(elements + " activations are not whole groups of " + group);
        }
        return new ActivationCodes(device.allocate(DType.I8, elements), device.allocate(DType.F32, elements / group), group);
    }

    /** Checks that these hold {@code elements} activations in groups of {@code wanted}. */
    void check(long elements, int wanted, String what) {
        if (group != wanted) {
            throw new IllegalArgumentException(what + " reads activation codes in groups of " + wanted + ", not " + group);
        }
        if (elements % group != 0) {
            throw new IllegalArgumentException(what + ": " + elements + " activations are not whole groups of " + group);
        }
        Shapes.atLeast(codes, elements, what + " activation codes");
        Shapes.atLeast(scales, elements / group, what + " activation scales");
    }

    @Override
    public void close() {
        codes.close();
        scales.close();
    }
}
