package io.lightllm.tornado.api;

/**
 * Where each element of a warp's {@code m16n8k16} fragments lives: the lane and register of PTX's
 * {@code mma.sync} layout, as code. Kernels use it to place their data (g = lane / 4, t = lane % 4);
 * backends without tensor cores use it to compute the product from the lanes' fragments.
 *
 * <p>A (16x16, row-major) is 4 ints a lane, each a pair of 16-bit values (low half first): register r
 * holds row {@code g + 8 * (r % 2)}, columns {@code 2 * (t + 4 * (r / 2))} and the next. B (16x8,
 * column-major: stored n-major) is 2 ints: register r holds rows (k) {@code 2t + 8r} and the next of
 * column g. The accumulator (16x8 f32) is 4 floats: element e is row {@code g + 8 * (e / 2)},
 * column {@code 2t + e % 2}.
 */
public final class MatrixFragments {
    private MatrixFragments() {
    }

    /** Row of A that register {@code r} of {@code lane} holds. */
    public static int aRow(int lane, int r) {
        return lane / 4 + 8 * (r % 2);
    }

    /** Column pair (column / 2) of A that register {@code r} of {@code lane} holds. */
    public static int aPair(int lane, int r) {
        return lane % 4 + 4 * (r / 2);
    }

    /** Row of the accumulator that element {@code e} of {@code lane} holds. */
    public static int accRow(int lane, int e) {
        return lane / 4 + 8 * (e / 2);
    }

    /** Column of the accumulator that element {@code e} of {@code lane} holds. */
    public static int accColumn(int lane, int e) {
        return 2 * (lane % 4) + e % 2;
    }

    /** The 16-bit value {@code which} (0: low, 1: high) of a packed pair, as unsigned bits. */
    public static int half(int pair, int which) {
        return (pair >>> (16 * which)) & 0xffff;
    }

    /** The packed 16-bit value {@code which} of a pair, as a float (f16 or bf16 bits). */
    public static float value(int pair, int which, boolean bf16) {
        short bits = (short) half(pair, which);
        return bf16 ? KMath.bf16ToFloat(bits) : KMath.f16ToFloat(bits);
    }

    /**
     * One warp's {@code D += A B} from every lane's fragments, as {@link KernelContext#mmaF16}
     * defines it: {@code a} holds 4 ints per lane, {@code b} 2, {@code acc} 4 floats per lane,
     * each indexed by lane first. The k sum runs in order, in f32.
     */
    public static void multiplyAccumulate(float[] acc, int[] a, int[] b, boolean bf16) {
        for (int lane = 0; lane < KernelContext.WARP_SIZE; lane++) {
            for (int e = 0; e < 4; e++) {
                int row = accRow(lane, e), col = accColumn(lane, e);
                float s = acc[lane * 4 + e];
                for (int k = 0; k < 16; k++) {
                    // A(row, k): lane (row % 8) * 4 + (k % 8) / 2, register row / 8 + 2 * (k / 8)
                    int aWord = a[((row % 8) * 4 + (k % 8) / 2) * 4 + row / 8 + 2 * (k / 8)];
                    // B(k, col): lane col * 4 + (k % 8) / 2, register k / 8
                    int bWord = b[(col * 4 + (k % 8) / 2) * 2 + k / 8];
                    s += value(aWord, k % 2, bf16) * value(bWord, k % 2, bf16);
                }
                acc[lane * 4 + e] = s;
            }
        }
    }

    /** Local tiles for the matrix loads start and step on 16 bytes (4 ints). */
    static void checkTile(int tileIndex, int rowStride) {
        if (tileIndex % 4 != 0 || rowStride % 4 != 0) {
            throw new IllegalArgumentException("matrix tiles need 16-byte rows: tile index " + tileIndex + " and row stride "
                    + rowStride + " must be multiples of 4 ints");
        }
    }
}
