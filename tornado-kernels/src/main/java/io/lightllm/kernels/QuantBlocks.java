package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;

/**
 * Decoding of block-quantised weights, in the kernel subset: the one definition of each format's
 * layout, used by the portable matmul kernels, the host-side dequantisation ({@link QuantFormat#dequantize})
 * and so every reference the tests compare with. Element {@code kk} of the weight row of {@code k} elements at byte
 * {@code rowAt} is {@code scale * code - offset} ({@link #weight}), where scale and offset are the same for each
 * aligned run of {@link #UNIT} elements (so a kernel decodes them once per run).
 *
 * <p>The GGUF formats are llama.cpp's (ggml-common.h, dequantize_row_* in ggml-quants.c), byte for
 * byte, little-endian; the float arithmetic is theirs too, so dequantised values are the same floats. Their
 * rows are runs of blocks, each block its scales and codes together.
 *
 * <p>{@link #INT4} is this engine's W4A16 format: groups of 128 along k, each 64 code bytes whose low nibbles hold the
 * group's elements 0-63 and high nibbles 64-127, each {@code q + 8} for q in [-8, 7], and an f32 scale.
 * {@link #INT4_ZP} is the same with a zero point (AWQ and GPTQ checkpoints, converted at load): an f32 scale and an
 * f32 offset (scale times the zero point) a group, the nibbles unsigned: {@code s q - o}. An int4 row keeps all its
 * groups' codes first (group g's at {@link #int4CodesAt}: 64 g) and then the groups' scales (and offsets, in
 * pairs) ({@link #int4ScaleAt}), as Marlin and AWQ's kernels keep theirs apart: a group's codes start 16-byte aligned
 * wherever the row does (rows of a multiple of 4 groups, 2 for INT4_ZP, see {@link #int4RowsAligned}), so a GPU
 * kernel reads them in 16-byte loads. A row holds the same bytes as k / 128 blocks of 68 (72) would, and stays
 * self-contained, so rows slice as before.
 */
public final class QuantBlocks {
    /** Format codes, the kernels' {@code format} argument ({@link QuantFormat#code}). */
    public static final int INT4 = 0, Q4_0 = 1, Q8_0 = 2, Q4_K = 3, Q5_K = 4, Q6_K = 5, INT4_ZP = 6;
    /** Elements that share a scale and an offset in every format. */
    public static final int UNIT = 16;

    private QuantBlocks() {
    }

    /** Elements per block. */
    public static int blockSize(int format) {
        return format == INT4 || format == INT4_ZP ? 128 : format == Q4_0 || format == Q8_0 ? 32 : 256;
    }

    /** Bytes per block. */
    public static int blockBytes(int format) {
        if (format == INT4) {
            return 4 + 64;
        } else if (format == INT4_ZP) {
            return 4 + 4 + 64;
        } else if (format == Q4_0) {
            return 2 + 16;
        } else if (format == Q8_0) {
            return 2 + 32;
        } else if (format == Q4_K) {
            return 4 + 12 + 128;
        } else if (format == Q5_K) {
            return 4 + 12 + 32 + 128;
        }
        return 128 + 64 + 16 + 2;
    }

    /** Blocks in a row of {@code k} elements (a partial last block only in int4 rows, padded with zero codes). */
    public static int rowBlocks(int format, int k) {
        return (k + blockSize(format) - 1) / blockSize(format);
    }

    /** Element {@code kk} of the row of {@code k} elements at byte {@code rowAt}. */
    public static float weight(ByteArray w, int format, int rowAt, int k, int kk) {
        return scale(w, format, rowAt, k, kk) * code(w, format, rowAt, k, kk) - offset(w, format, rowAt, k, kk);
    }

    /** The multiplier of element {@code kk}'s code (the row of k at {@code rowAt}). */
    public static float scale(ByteArray w, int format, int rowAt, int k, int kk) {
        if (format == INT4 || format == INT4_ZP) {
            return f32(w, int4ScaleAt(format, rowAt, rowBlocks(format, k), kk / 128));
        }
        int at = blockAt(format, rowAt, kk), j = kk % blockSize(format);
        if (format == Q4_0 || format == Q8_0) {
            return f16(w, at);
        } else if (format == Q4_K || format == Q5_K) {
            return f16(w, at) * kScale(w, at + 4, j / 32);
        }
        // Q6_K: 16 int8 scales at byte 192, one per 16 elements in the order dequantize_row_q6_K reads them
        int half = j / 128, r = j % 128;
        return f16(w, at + 208) * w.get(at + 192 + half * 8 + r % 32 / 16 + 2 * (r / 32));
    }

    /** What is subtracted from element {@code kk}'s scaled code: the K formats' sub-block minimum, INT4_ZP's offset, else 0. */
    public static float offset(ByteArray w, int format, int rowAt, int k, int kk) {
        if (format == Q4_K || format == Q5_K) {
            return f16(w, blockAt(format, rowAt, kk) + 2) * kMin(w, blockAt(format, rowAt, kk) + 4, kk % 256 / 32);
        } else if (format == INT4_ZP) {
            return f32(w, int4ScaleAt(format, rowAt, rowBlocks(format, k), kk / 128) + 4);
        }
        return 0f;
    }

    /** The integer code of element {@code kk} (signed where the format centres it). */
    public static int code(ByteArray w, int format, int rowAt, int k, int kk) {
        if (format == INT4 || format == INT4_ZP) {
            int q = nibble(w, int4CodesAt(rowAt, kk / 128), kk % 128, 64);
            return format == INT4 ? q - 8 : q;
        }
        int at = blockAt(format, rowAt, kk), j = kk % blockSize(format);
        if (format == Q4_0) {
            return nibble(w, at + 2, j, 16) - 8;
        } else if (format == Q8_0) {
            return w.get(at + 2 + j);
        } else if (format == Q4_K || format == Q5_K) {
            // 64-element chunks of 32 bytes: low nibbles the first 32 elements, high the next 32
            int chunk = j / 64, l = j % 32, high = j % 64 / 32;
            int qs = format == Q4_K ? at + 16 : at + 48;
            int q = u8(w, qs + chunk * 32 + l) >> 4 * high & 15;
            if (format == Q5_K) {
                q |= (u8(w, at + 16 + l) >> (2 * chunk + high) & 1) << 4; // qh[32]: bit 2 * chunk + high of byte l
            }
            return q;
        }
        // Q6_K: per 128 elements, ql[64] (low 4 bits) and qh[32] (high 2 bits) hold four runs of 32
        int half = j / 128, r = j % 128, run = r / 32, l = r % 32;
        int low = u8(w, at + half * 64 + l + 32 * (run % 2)) >> 4 * (run / 2) & 15;
        int high = u8(w, at + 128 + half * 32 + l) >> 2 * run & 3;
        return (low | high << 4) - 32;
    }

    /** The byte at which the GGUF block holding element {@code kk} of the row at {@code rowAt} starts. */
    private static int blockAt(int format, int rowAt, int kk) {
        return rowAt + kk / blockSize(format) * blockBytes(format);
    }

    // ---- the int4 rows' layout ------------------------------------------------------------

    /** Code bytes of one int4 group (128 nibbles). */
    public static final int INT4_CODE_BYTES = 64;

    /** Where group {@code g}'s 64 code bytes start in the int4 row at byte {@code rowAt}. */
    public static int int4CodesAt(int rowAt, int g) {
        return rowAt + INT4_CODE_BYTES * g;
    }

    /** Where group {@code g}'s f32 scale is in the {@code format} row of {@code groups} groups at {@code rowAt} (INT4_ZP's offset 4 bytes on). */
    public static int int4ScaleAt(int format, int rowAt, int groups, int g) {
        return rowAt + INT4_CODE_BYTES * groups + int4TermBytes(format) * g;
    }

    /** Bytes of a group's terms after the row's codes: its scale (INT4), or its scale and offset (INT4_ZP). */
    public static int int4TermBytes(int format) {
        return format == INT4_ZP ? 8 : 4;
    }

    /**
     * Whether every row of {@code groups} int4 groups starts 16-byte aligned (rows of {@code blockBytes * groups}, so
     * every group's codes do too) in a buffer that does: the condition of the kernels' 16-byte code loads.
     */
    public static boolean int4RowsAligned(int format, int groups) {
        return blockBytes(format) * groups % 16 == 0;
    }

    /** get_scale_min_k4's scale of sub-block {@code s} (0-7) from the 12 packed 6-bit values at {@code sc}. */
    private static int kScale(ByteArray w, int sc, int s) {
        return s < 4 ? u8(w, sc + s) & 63 : u8(w, sc + s + 4) & 15 | (u8(w, sc + s - 4) >> 6) << 4;
    }

    /** get_scale_min_k4's minimum of sub-block {@code s}. */
    private static int kMin(ByteArray w, int sc, int s) {
        return s < 4 ? u8(w, sc + s + 4) & 63 : u8(w, sc + s + 4) >> 4 | (u8(w, sc + s) >> 6) << 4;
    }

    /** Element {@code j} of nibbles whose low halves hold elements [0, half) and high halves [half, 2 half). */
    private static int nibble(ByteArray w, int qs, int j, int half) {
        return j < half ? u8(w, qs + j) & 15 : u8(w, qs + j - half) >> 4;
    }

    private static int u8(ByteArray w, int i) {
        return w.get(i) & 0xFF;
    }

    /**
     * The f32 at byte {@code at} (an int4 group's scale or offset, {@link #int4ScaleAt}: 4-byte aligned wherever the row
     * is), read as one word through {@code scratch[0]}: the GPU kernels' form of {@link #scale} and {@link #offset},
     * which assemble it from bytes.
     */
    public static float int4Word(ByteArray w, int at, int[] scratch) {
        w.getWords(at, scratch, 0, 1);
        return Float.intBitsToFloat(scratch[0]);
    }

    private static float f32(ByteArray w, int at) {
        return Float.intBitsToFloat(u8(w, at) | u8(w, at + 1) << 8 | u8(w, at + 2) << 16 | u8(w, at + 3) << 24);
    }

    private static float f16(ByteArray w, int at) {
        return Float.float16ToFloat((short) (u8(w, at) | u8(w, at + 1) << 8));
    }
}
