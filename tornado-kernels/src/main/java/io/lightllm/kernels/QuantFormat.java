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
 * the layouts): each row of a weight [n, k] holds k / {@link #blockSize} blocks (int4: groups) of {@link #blockBytes}.
 */
public enum QuantFormat {
    /** W4A16: groups of 128 along k, symmetric, an f32 scale each ({@link #quantizeInt4}). */
    INT4(QuantBlocks.INT4),
    Q4_0(QuantBlocks.Q4_0),
    Q8_0(QuantBlocks.Q8_0),
    Q4_K(QuantBlocks.Q4_K),
    Q5_K(QuantBlocks.Q5_K),
    Q6_K(QuantBlocks.Q6_K),
    /** W4A16 with a zero point: groups of 128 along k, an f32 scale and offset each (AWQ and GPTQ checkpoints). */
    INT4_ZP(QuantBlocks.INT4_ZP);

    private static final ValueLayout.OfFloat LITTLE_ENDIAN_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int code;

    QuantFormat(int code) {
        this.code = code;
    }

    /** The kernels' format argument. */
    public int code() {
        return code;
    }

    /** The format of a kernel's format argument. */
    public static QuantFormat of(int code) {
        for (QuantFormat f : values()) {
            if (f.code == code) {
                return f;
            }
        }
        throw new IllegalArgumentException("no quantised format has code " + code);
    }

    public int blockSize() {
        return QuantBlocks.blockSize(code);
    }

    public int blockBytes() {
        return QuantBlocks.blockBytes(code);
    }

    /**
     * Bytes of one row of {@code k} elements. GGUF rows hold whole blocks; an int4 row whose k is not
     * a multiple of 128 ends with a partial group, padded with zero codes (so any k quantises).
     */
    public long rowBytes(int k) {
        if (this != INT4 && k % blockSize() != 0) {
            throw new IllegalArgumentException(this + " rows hold whole blocks of " + blockSize() + " elements; " + k + " is not a multiple");
        }
        return (long) QuantBlocks.rowBlocks(code, k) * blockBytes();
    }

    /**
     * Columns [from, from + count) of the matrix [rows, k] that {@code data} holds, as this format's rows of count elements
     * (a copy); from and count whole blocks (int4: groups), as a block cannot be cut.
     */
    public ByteArray columns(MemorySegment data, int rows, int k, int from, int count) {
        if (from % blockSize() != 0 || count % blockSize() != 0 || from + count > k) {
            throw new IllegalArgumentException("columns " + from + " + " + count + " of " + k + " are not whole blocks of " + blockSize());
        }
        long rowBytes = rowBytes(k), partBytes = rowBytes(count);
        ByteArray out = ByteArray.allocate(Math.toIntExact(rows * partBytes));
        int first = from / blockSize(), blocks = count / blockSize();
        for (int r = 0; r < rows; r++) {
            long src = r * rowBytes, dst = r * partBytes;
            if (this == INT4 || this == INT4_ZP) { // the groups' codes, then their terms
                int groups = QuantBlocks.rowBlocks(code, k), terms = QuantBlocks.int4TermBytes(code);
                MemorySegment.copy(data, src + QuantBlocks.int4CodesAt(0, first), out.segment(), dst, (long) QuantBlocks.INT4_CODE_BYTES * blocks);
                MemorySegment.copy(data, src + QuantBlocks.int4ScaleAt(code, 0, groups, first), out.segment(),
                        dst + QuantBlocks.int4ScaleAt(code, 0, blocks, 0), (long) terms * blocks);
            } else {
                MemorySegment.copy(data, src + (long) first * blockBytes(), out.segment(), dst, partBytes);
            }
        }
        return out;
    }

    /** The matrix [rows, k] that {@code data} (rows of blocks) holds, as floats. */
    public FloatArray dequantize(MemorySegment data, int rows, int k) {
        long rowBytes = rowBytes(k);
        if (data.byteSize() != rows * rowBytes) {
            throw new IllegalArgumentException(this + " data of " + data.byteSize() + " bytes is not " + rows + " rows of " + rowBytes);
        }
        FloatArray out = FloatArray.allocate(Math.toIntExact((long) rows * k));
        ByteArray w = (ByteArray) NativeArray.wrap(data, DType.I8);
        float[] block = new float[blockSize()];
        for (int r = 0; r < rows; r++) {
            for (int j0 = 0; j0 < k; j0 += blockSize()) {
                decodeBlock(w, Math.toIntExact(r * rowBytes), k, j0 / blockSize(), block);
                for (int j = 0; j < Math.min(blockSize(), k - j0); j++) {
                    out.set(r * k + j0 + j, block[j]);
                }
            }
        }
        return out;
    }

    /**
     * Block (int4: group) {@code b} of the row of k elements at byte {@code rowAt} of {@code w} into {@code out} (blockSize
     * floats; an int4 row's partial last group with its zero codes), a scale and offset per unit.
     */
    public void decodeBlock(ByteArray w, int rowAt, int k, int b, float[] out) {
        int first = b * blockSize();
        for (int u = 0; u < blockSize(); u += QuantBlocks.UNIT) {
            float s = QuantBlocks.scale(w, code, rowAt, k, first + u), o = QuantBlocks.offset(w, code, rowAt, k, first + u);
            for (int j = u; j < u + QuantBlocks.UNIT; j++) {
                out[j] = s * QuantBlocks.code(w, code, rowAt, k, first + j) - o;
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
        int group = INT4.blockSize(), half = group / 2, groups = QuantBlocks.rowBlocks(INT4.code, cols);
        float[] v = new float[group];
        for (int r = 0; r < rows; r++) {
            int rowAt = Math.toIntExact(r * rowBytes);
            for (int g = 0; g < groups; g++) {
                int from = r * cols + g * group, count = Math.min(group, cols - g * group);
                float maxAbs = 0f;
                for (int j = 0; j < group; j++) {
                    v[j] = j < count ? w.getFloat(from + j) : 0f; // a partial last group is padded with zeros
                    maxAbs = Math.max(maxAbs, Math.abs(v[j]));
                }
                if (!Float.isFinite(maxAbs)) {
                    throw new IllegalArgumentException("weight row " + r + " holds a non-finite value");
                }
                float scale = maxAbs / 7f;
                seg.set(LITTLE_ENDIAN_FLOAT, QuantBlocks.int4ScaleAt(INT4.code, rowAt, groups, g), scale);
                int codesAt = QuantBlocks.int4CodesAt(rowAt, g);
                for (int j = 0; j < half; j++) {
                    seg.set(ValueLayout.JAVA_BYTE, codesAt + j, (byte) (code4(v[j], scale) | code4(v[j + half], scale) << 4));
                }
            }
        }
        return out;
    }

    private static int code4(float v, float scale) {
        return scale == 0f ? 8 : Math.max(-7, Math.min(7, (int) Math.rint(v / scale))) + 8;
    }
}
