package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The block-quantised weight formats the matmul kernels read packed (see {@link QuantBlocks} for
 * the layouts): each row of a weight [n, k] is k / {@link #blockSize} blocks of {@link #blockBytes}.
 */
public enum QuantFormat {
    /** W4A16: groups of 128 along k, symmetric, an f32 scale each ({@link #quantizeInt4}). */
    INT4(QuantBlocks.INT4),
    Q4_0(QuantBlocks.Q4_0),
    Q8_0(QuantBlocks.Q8_0),
    Q4_K(QuantBlocks.Q4_K),
    Q5_K(QuantBlocks.Q5_K),
    Q6_K(QuantBlocks.Q6_K);

    private static final ValueLayout.OfFloat LITTLE_ENDIAN_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int code;

    QuantFormat(int code) {
        this.code = code;
    }

    /** The kernels' format argument. */
    public int code() {
        return code;
    }

    public int blockSize() {
        return QuantBlocks.blockSize(code);
    }

    public int blockBytes() {
        return QuantBlocks.blockBytes(code);
    }

    /** Bytes of one row of {@code k} elements; k must be a whole number of blocks. */
    public long rowBytes(int k) {
        if (k % blockSize() != 0) {
            throw new IllegalArgumentException(this + " rows hold whole blocks of " + blockSize() + " elements; " + k + " is not a multiple");
        }
        return (long) k / blockSize() * blockBytes();
    }

    /** Every element of {@code blocks} (whole blocks) as floats, in order. */
    public FloatArray dequantize(MemorySegment blocks) {
        if (blocks.byteSize() % blockBytes() != 0) {
            throw new IllegalArgumentException(this + " data of " + blocks.byteSize() + " bytes is not a whole number of blocks of " + blockBytes());
        }
        long count = blocks.byteSize() / blockBytes();
        FloatArray out = FloatArray.allocate(Math.toIntExact(count * blockSize()));
        ByteArray w = (ByteArray) NativeArray.wrap(blocks, DType.I8);
        float[] unit = new float[blockSize()];
        for (int b = 0; b < count; b++) {
            decodeBlock(w, b * blockBytes(), unit);
            for (int j = 0; j < unit.length; j++) {
                out.set(b * blockSize() + j, unit[j]);
            }
        }
        return out;
    }

    /** The block at byte {@code at} of {@code w} into {@code out} (blockSize floats), a scale and offset per unit. */
    public void decodeBlock(ByteArray w, int at, float[] out) {
        for (int u = 0; u < blockSize(); u += QuantBlocks.UNIT) {
            float s = QuantBlocks.scale(w, code, at, u), o = QuantBlocks.offset(w, code, at, u);
            for (int j = u; j < u + QuantBlocks.UNIT; j++) {
                out[j] = s * QuantBlocks.code(w, code, at, j) - o;
            }
        }
    }

    // ---- int4 quantisation at load ---------------------------------------------------------

    /**
     * Symmetric int4 per group of 128 along each row of a float weight [rows, cols]:
     * scale = max|w| / 7, q = round-half-even(w / scale) in [-7, 7] (stored as q + 8), so
     * |w - q * scale| <= scale / 2 = max|w| / 14 in each group (plus the rounding of w / scale).
     * Symmetric keeps the kernels at one multiply per group; -8 is left unused so that the bound
     * holds on both sides. An all-zero group gets scale 0.
     */
    public static ByteArray quantizeInt4(NativeArray w, int rows, int cols) {
        long rowBytes = INT4.rowBytes(cols);
        if ((long) rows * cols != w.getSize()) {
            throw new IllegalArgumentException("weight has " + w.getSize() + " elements, not " + rows + " x " + cols);
        }
        ByteArray out = ByteArray.allocate(Math.toIntExact(rows * rowBytes));
        MemorySegment seg = out.segment();
        int group = INT4.blockSize(), half = group / 2;
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < cols / group; g++) {
                long src = (long) r * cols + (long) g * group;
                long at = r * rowBytes + (long) g * INT4.blockBytes();
                float maxAbs = 0f;
                for (int j = 0; j < group; j++) {
                    maxAbs = Math.max(maxAbs, Math.abs(w.getFloat((int) (src + j))));
                }
                if (!Float.isFinite(maxAbs)) {
                    throw new IllegalArgumentException("weight row " + r + " holds a non-finite value");
                }
                float scale = maxAbs / 7f;
                seg.set(LITTLE_ENDIAN_FLOAT, at, scale);
                for (int j = 0; j < half; j++) {
                    int lo = code4(w.getFloat((int) (src + j)), scale), hi = code4(w.getFloat((int) (src + j + half)), scale);
                    seg.set(ValueLayout.JAVA_BYTE, at + 4 + j, (byte) (lo | hi << 4));
                }
            }
        }
        return out;
    }

    private static int code4(float v, float scale) {
        return scale == 0f ? 8 : Math.max(-7, Math.min(7, (int) Math.rint(v / scale))) + 8;
    }
}
