package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Linear layers with block-quantised weights kept packed: {@code out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias[n])}
 * where each row of {@code w} is k / blockSize blocks of a {@link QuantFormat} (its code is the kernels'
 * {@code format} argument). The kernels decode the blocks as they read them ({@link QuantBlocks}), in
 * registers (GEMV) or into the local weight tile (tiled), so the weights cross memory at their packed size.
 * The same two kernels as {@link Matmul}'s, with the same grids and epilogue.
 */
public final class QuantMatmul {
    public static final KernelRef TILED = KernelRef.of(QuantMatmul.class, "matmulQuantTiled");
    public static final KernelRef GEMV = KernelRef.of(QuantMatmul.class, "matmulQuantGemv");
    public static final KernelRef GEMV_INT4_Q8 = KernelRef.of(QuantMatmul.class, "matmulInt4GemvQ8");
    public static final KernelRef GEMV_INT4_GATED_Q8 = KernelRef.of(QuantMatmul.class, "matmulInt4GemvGatedQ8");

    private QuantMatmul() {
    }

    /** {@link Matmul#matmulTiled} over packed weights: each staged weight element is decoded once per tile. */
    public static void matmulQuantTiled(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias,
            boolean hasBias, int m, int n, int k) {
        float[] aTile = ctx.allocateFloatLocalArray(Matmul.MAX_TILE * Matmul.TILE_STRIDE);
        float[] wTile = ctx.allocateFloatLocalArray(Matmul.MAX_TILE * Matmul.TILE_STRIDE);
        int tile = ctx.localGroupSizeX;
        int tx = ctx.localIdx;
        int ty = ctx.localIdy;
        int row = ctx.groupIdy * tile + ty;
        int wRow = ctx.groupIdx * tile + ty;
        int rowBytes = QuantBlocks.rowBlocks(format, k) * QuantBlocks.blockBytes(format);
        float acc = 0f;
        for (int k0 = 0; k0 < k; k0 += tile) {
            int kk = k0 + tx;
            aTile[ty * Matmul.TILE_STRIDE + tx] = row < m && kk < k ? a.get(row * k + kk) : 0f;
            wTile[ty * Matmul.TILE_STRIDE + tx] = wRow < n && kk < k ? QuantBlocks.weight(w, format, wRow * rowBytes, k, kk) : 0f;
            ctx.localBarrier();
            for (int j = 0; j < tile; j++) {
                acc += aTile[ty * Matmul.TILE_STRIDE + j] * wTile[tx * Matmul.TILE_STRIDE + j];
            }
            ctx.localBarrier();
        }
        int col = ctx.groupIdx * tile + tx;
        if (row < m && col < n) {
            out.set(row * n + col, hasBias ? acc + bias.get(col) : acc);
        }
    }

    /**
     * {@link Matmul#matmulGemv} over packed weights: the team's items take turns over the row's runs of
     * {@link QuantBlocks#UNIT} elements, decoding each run's scale and offset once and its codes one by
     * one, and keep a private sum per activation row.
     */
    public static void matmulQuantGemv(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias,
            boolean hasBias, int m, int n, int k, int columns) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        float[] acc = new float[Matmul.GEMV_ROWS];
        int team = ctx.localGroupSizeX / columns;
        int lane = ctx.localIdx % team;
        int col = ctx.groupIdx * columns + ctx.localIdx / team;
        int row0 = ctx.groupIdy * Matmul.GEMV_ROWS;
        int rows = Math.min(Matmul.GEMV_ROWS, m - row0);
        for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        int rowsPerTeam = rowsPerTeam(format, m, k, team);
        if (rowsPerTeam > 1) {
            int4RowSums(acc, a, w, format, (ctx.groupIdx * columns + ctx.localIdx / team) * rowsPerTeam, n, lane, team, k, w, false);
        } else if (col < n && isInt4(format) && k % 128 == 0 && team % 16 == 0) {
            int4Sums(acc, a, w, format, col, lane, team, row0, rows, k);
        } else if (col < n) {
            int rowAt = col * QuantBlocks.rowBlocks(format, k) * QuantBlocks.blockBytes(format);
            for (int u = lane * QuantBlocks.UNIT; u < k; u += team * QuantBlocks.UNIT) {
                float s = QuantBlocks.scale(w, format, rowAt, k, u);
                float o = QuantBlocks.offset(w, format, rowAt, k, u);
                int end = Math.min(QuantBlocks.UNIT, k - u); // a run short of UNIT ends an int4 row of a partial group
                for (int j = 0; j < end; j++) {
                    float wv = s * QuantBlocks.code(w, format, rowAt, k, u + j) - o;
                    for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
                        if (r < rows) {
                            acc[r] += a.get((row0 + r) * k + u + j) * wv;
                        }
                    }
                }
            }
        }
        Matmul.gemvReduce(ctx, partial, acc, rowsPerTeam > 1 ? rowsPerTeam : rows, team, false);
        Matmul.gemvEpilogue(ctx, partial, out, bias, false, bias, hasBias, m, n, columns, rowsPerTeam, false, k, 0f, false);
    }

    static boolean isInt4(int format) {
        return format == QuantBlocks.INT4 || format == QuantBlocks.INT4_ZP;
    }

    /**
     * Weight rows per team of the packed GEMV ({@link Matmul#GEMV_ROWS_PER_TEAM} at batch 1 over whole int4 blocks,
     * teams a multiple of 16, see {@link #int4RowSums}; else 1).
     */
    public static int rowsPerTeam(int format, int m, int k, int team) {
        return m == 1 && isInt4(format) && k % 128 == 0 && team % 16 == 0 ? Matmul.GEMV_ROWS_PER_TEAM : 1;
    }

    /**
     * {@link #int4Sums} at batch 1 for {@link Matmul#GEMV_ROWS_PER_TEAM} weight rows from {@code row0} (rows past n
     * read row n - 1 and are not stored): each item loads its word of a block in each of the rows, and the 8
     * activations those words meet (and their sum) once for all of them; acc[c] gets row c's sum.
     */
    static void int4RowSums(float[] acc, FloatArray a, ByteArray w, int format, int row0, int n, int lane, int team, int k, NativeArray normW,
            boolean normed) {
        float[] nw = new float[4];
        int[] q = new int[4];
        int[] head = new int[1];
        float[] lo = new float[4];
        float[] hi = new float[4];
        boolean zeroPoint = format == QuantBlocks.INT4_ZP;
        float magic = 0x1p23f + (zeroPoint ? 0f : 8f); // 2^23 plus INT4's centre
        int groups = k / 128;
        int rowBytes = groups * QuantBlocks.blockBytes(format);
        int at0 = Math.min(row0, n - 1) * rowBytes;
        int at1 = Math.min(row0 + 1, n - 1) * rowBytes;
        int at2 = Math.min(row0 + 2, n - 1) * rowBytes;
        int at3 = Math.min(row0 + 3, n - 1) * rowBytes;
        for (int b = lane / 16; b < groups; b += team / 16) {
            int termsAt = QuantBlocks.int4ScaleAt(format, 0, groups, b); // from a row's start, as the codes' word
            loadRowWords(w, q, at0, at1, at2, at3, QuantBlocks.int4CodesAt(0, b) + 4 * (lane % 16));
            int e = b * 128 + 4 * (lane % 16);
            a.getFloats(e, lo, 0, 4);
            a.getFloats(e + 64, hi, 0, 4);
            if (normed) { // the norm folded in before the block's sum of activations (its offset term) is taken
                acc[Matmul.NORM_SLOT] += Matmul.foldNorm(lo, 0, normW, e, nw) + Matmul.foldNorm(hi, 0, normW, e + 64, nw);
            }
            float sum = lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3];
            acc[0] += int4RowTerm(w, at0 + termsAt, zeroPoint, head, int4Dot(lo, hi, q[0], magic), sum);
            acc[1] += int4RowTerm(w, at1 + termsAt, zeroPoint, head, int4Dot(lo, hi, q[1], magic), sum);
            acc[2] += int4RowTerm(w, at2 + termsAt, zeroPoint, head, int4Dot(lo, hi, q[2], magic), sum);
            acc[3] += int4RowTerm(w, at3 + termsAt, zeroPoint, head, int4Dot(lo, hi, q[3], magic), sum);
        }
    }

    /**
     * Whether a batch-1 GEMV over int4 blocks ({@link #rowsPerTeam} 4) runs {@link #matmulInt4GemvQ8} here: where the
     * device's tuning {@code matmul.int4_q8} is 1 (on for CUDA: 8B int4 batch 1 241.1 -> 325.4 tok/s on an H100, session
     * 14). The JVM has its own
     * int8-activation GEMV ({@code Int4Gemv}) and never takes this one.
     */
    static boolean int8ActivationsApply(Device device, int format, int rowsPerTeam) {
        // its shuffles need work-groups of whole warps
        return rowsPerTeam > 1 && isInt4(format) && Matmul.gemvLocal(device) % KernelContext.WARP_SIZE == 0
                && Tuning.get(device, "matmul.int4_q8", 0) == 1 && !BatchInvariance.enabled();
    }

    /**
     * The batch-1 int4 GEMV with int8 activations, as llama.cpp's Q4 x Q8 and the JVM's {@code Int4Gemv} compute it,
     * on integer dot products: each 128-element group of the activations is rounded to int8 with its own scale
     * (max |x| / 127, found by the 16 items that share the group, with shuffles), and each item's word of 8 codes
     * meets its 8 activation codes in two {@link KMath#dot4I8} (CUDA {@code dp4a}: four multiply-adds an
     * instruction). The float path ({@link #int4RowSums}) spends five operations a code (extract, place in a float,
     * subtract, multiply-add), which bounds it below the copy rate; here the arithmetic is exact in integers and a
     * group's sum is scaled once. The price is the activations' rounding: the result differs from the f32 product by
     * at most the sum over groups of scale_g / 2 times sum |w| ({@code QuantMatmulTest}). Same arguments and grid as
     * {@link #matmulQuantGemv} at m = 1 with four rows a team (k a multiple of 128, teams a multiple of 16, work-groups of
     * whole warps).
     */
    public static void matmulInt4GemvQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias,
            boolean hasBias, int m, int n, int k, int columns) {
        int4GemvQ8(ctx, out, a, w, format, bias, hasBias, n, k, columns, w, false, 0f, false);
    }

    /**
     * {@link #matmulInt4GemvQ8}'s body; with {@code normed} its input goes through an RMSNorm of weight normW as it is read,
     * with {@code adding} its product is added into out ({@link FoldedGemv}).
     */
    static void int4GemvQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias, int n,
            int k, int columns, NativeArray normW, boolean normed, float eps, boolean adding) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        float[] acc = new float[Matmul.GEMV_ROWS];
        int team = ctx.localGroupSizeX / columns;
        int lane = ctx.localIdx % team;
        int row0 = (ctx.groupIdx * columns + ctx.localIdx / team) * Matmul.GEMV_ROWS_PER_TEAM;
        int4RowSumsQ8(ctx, acc, a, w, format, Math.min(row0, n - 1), Math.min(row0 + 1, n - 1), Math.min(row0 + 2, n - 1),
                Math.min(row0 + 3, n - 1), lane, team, k, normW, normed);
        Matmul.gemvReduce(ctx, partial, acc, Matmul.GEMV_ROWS_PER_TEAM, team, normed);
        Matmul.gemvEpilogue(ctx, partial, out, bias, false, bias, hasBias, 1, n, columns, Matmul.GEMV_ROWS_PER_TEAM, normed, k, eps, adding);
    }

    /**
     * A gated MLP's gate and up projections over int4 rows [gate; up] ([2 width, k] in blocks of {@code format}) and its
     * activation at batch 1, one launch on int8 activations: {@link Matmul#matmulGemvGated}'s teams (gate rows p, p + 1
     * and their up rows) over {@link #matmulInt4GemvQ8}'s sums; the activation kernel's launch is gone.
     */
    public static void matmulInt4GemvGatedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias,
            boolean hasBias, int width, int k, int columns, int kind) {
        int4GatedQ8(ctx, out, a, w, format, bias, hasBias, width, k, columns, kind, w, false, 0f);
    }

    /** {@link #matmulInt4GemvGatedQ8}'s body; with {@code normed}, its input goes through an RMSNorm of weight normW ({@link FoldedGemv}). */
    static void int4GatedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int width, int k, int columns, int kind, NativeArray normW, boolean normed, float eps) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        float[] acc = new float[Matmul.GEMV_ROWS];
        int team = ctx.localGroupSizeX / columns;
        int p = (ctx.groupIdx * columns + ctx.localIdx / team) * 2;
        int g0 = Math.min(p, width - 1);
        int g1 = Math.min(p + 1, width - 1);
        int4RowSumsQ8(ctx, acc, a, w, format, g0, g1, width + g0, width + g1, ctx.localIdx % team, team, k, normW, normed);
        Matmul.gemvReduce(ctx, partial, acc, Matmul.GEMV_ROWS_PER_TEAM, team, normed);
        float factor = normed ? Matmul.normFactor(ctx, partial, columns, k, eps) : 1f;
        Matmul.gatedStore(ctx, ctx.groupIdx, partial, out, bias, false, bias, hasBias, width, columns, factor, kind);
    }

    /**
     * {@link #int4RowSums} on int8 activations ({@link #matmulInt4GemvQ8}) over rows r0..r3 into acc[0..3] (zeroed here):
     * the 16 items of a group each hold one word of its codes in each of the four rows and the 8 activations those words
     * meet. Every item of a warp runs the same trips (the shuffles need them all); a trip past the row's last group reads
     * that group and adds nothing. {@code normed}: the activations are multiplied by the norm's weight before they are
     * rounded, their squares added into acc[NORM_SLOT] ({@link Matmul#foldNorm}).
     */
    static void int4RowSumsQ8(KernelContext ctx, float[] acc, FloatArray a, ByteArray w, int format, int r0, int r1, int r2, int r3, int lane,
            int team, int k, NativeArray normW, boolean normed) {
        for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        int[] q = new int[4];
        int[] head = new int[1];
        float[] lo = new float[4];
        float[] hi = new float[4];
        float[] nw = new float[4];
        boolean zeroPoint = format == QuantBlocks.INT4_ZP;
        int groups = k / 128;
        int rowBytes = groups * QuantBlocks.blockBytes(format);
        int at0 = r0 * rowBytes;
        int at1 = r1 * rowBytes;
        int at2 = r2 * rowBytes;
        int at3 = r3 * rowBytes;
        for (int g0 = 0; g0 < groups; g0 += team / 16) {
            boolean valid = g0 + lane / 16 < groups;
            int g = Math.min(g0 + lane / 16, groups - 1);
            loadRowWords(w, q, at0, at1, at2, at3, QuantBlocks.int4CodesAt(0, g) + 4 * (lane % 16));
            int e = g * 128 + 4 * (lane % 16);
            a.getFloats(e, lo, 0, 4);
            a.getFloats(e + 64, hi, 0, 4);
            if (normed) {
                float squares = Matmul.foldNorm(lo, 0, normW, e, nw) + Matmul.foldNorm(hi, 0, normW, e + 64, nw);
                acc[Matmul.NORM_SLOT] += valid ? squares : 0f; // a trip past the last group reads that group again
            }
            float most = groupMax(ctx, lo, hi);
            float inverse = most > 0f ? 127f / most : 0f;
            addGroupQ8(acc, w, at0, at1, at2, at3, QuantBlocks.int4ScaleAt(format, 0, groups, g), zeroPoint, head, q,
                    Matmul.int8Codes(lo, 0, inverse), Matmul.int8Codes(hi, 0, inverse), valid ? most / 127f : 0f);
        }
    }

    /**
     * The largest magnitude of a group of 128 activations, of which an item holds 8 (elements e..e+3 in lo, e+64..e+67 in
     * hi): the 16 items of a group are 16 aligned lanes of one warp, which meet by shuffles (uniform control flow).
     */
    static float groupMax(KernelContext ctx, float[] lo, float[] hi) {
        float most = 0f;
        for (int j = 0; j < 4; j++) {
            most = KMath.max(most, KMath.max(KMath.abs(lo[j]), KMath.abs(hi[j])));
        }
        most = KMath.max(most, ctx.warpShuffleXor(most, 8));
        most = KMath.max(most, ctx.warpShuffleXor(most, 4));
        most = KMath.max(most, ctx.warpShuffleXor(most, 2));
        return KMath.max(most, ctx.warpShuffleXor(most, 1));
    }

    /**
     * A group's part of four rows' sums on int8 activations: acc[c] += scale x row c's word (q[c]) against the 8
     * activation codes, in the codes' units ({@link #int4RowTermQ8}); the group's scales {@code termsAt} bytes into each row.
     */
    static void addGroupQ8(float[] acc, ByteArray w, int at0, int at1, int at2, int at3, int termsAt, boolean zeroPoint, int[] head, int[] q,
            int lowCodes, int highCodes, float scale) {
        // the sum of the 8 activation codes, for the codes' offsets (8, or INT4_ZP's o / s): one more dot product
        int codeSum = KMath.dot4I8(lowCodes, 0x01010101, KMath.dot4I8(highCodes, 0x01010101, 0));
        acc[0] += scale * int4RowTermQ8(w, at0 + termsAt, zeroPoint, head, q[0], lowCodes, highCodes, codeSum);
        acc[1] += scale * int4RowTermQ8(w, at1 + termsAt, zeroPoint, head, q[1], lowCodes, highCodes, codeSum);
        acc[2] += scale * int4RowTermQ8(w, at2 + termsAt, zeroPoint, head, q[2], lowCodes, highCodes, codeSum);
        acc[3] += scale * int4RowTermQ8(w, at3 + termsAt, zeroPoint, head, q[3], lowCodes, highCodes, codeSum);
    }

    /**
     * A row's word of a group against the activation codes, in the codes' units: s (sum q x) - 8 s (sum x) for INT4,
     * s (sum q x) - o (sum x) for INT4_ZP (s the group's scale at byte {@code at}, o its offset at at + 4).
     */
    static float int4RowTermQ8(ByteArray w, int at, boolean zeroPoint, int[] scratch, int codes, int lowCodes, int highCodes, int codeSum) {
        int dot = KMath.dot4I8(codes & 0x0F0F0F0F, lowCodes, KMath.dot4I8((codes >>> 4) & 0x0F0F0F0F, highCodes, 0));
        float s = QuantBlocks.int4Word(w, at, scratch);
        // INT4's centre subtracted in integers (exact); INT4_ZP's offset is a float of its own
        return zeroPoint ? s * dot - QuantBlocks.int4Word(w, at + 4, scratch) * codeSum : s * (dot - 8 * codeSum);
    }

    /** The word at byte {@code offset} of each of four rows (starting at at0..at3) into q[0..3], all four loads first (constant offsets into q). */
    static void loadRowWords(ByteArray w, int[] q, int at0, int at1, int at2, int at3, int offset) {
        w.getWords(at0 + offset, q, 0, 1);
        w.getWords(at1 + offset, q, 1, 1);
        w.getWords(at2 + offset, q, 2, 1);
        w.getWords(at3 + offset, q, 3, 1);
    }

    /** A group's part of a row's sum, its scale (and offset) at byte {@code at}: s dot - o sum ({@link #int4Sums}). */
    static float int4RowTerm(ByteArray w, int at, boolean zeroPoint, int[] scratch, float dot, float sum) {
        float scale = QuantBlocks.int4Word(w, at, scratch);
        return zeroPoint ? scale * dot - QuantBlocks.int4Word(w, at + 4, scratch) * sum : scale * dot;
    }

    /** lo . the low nibbles of {@code codes} + hi . the high ones, each nibble less {@code magic} - 2^23 (see {@link #int4Sums}). */
    static float int4Dot(float[] lo, float[] hi, int codes, float magic) {
        float dot = 0f;
        for (int j = 0; j < 4; j++) {
            int bits = codes >>> (8 * j);
            dot += lo[j] * (Float.intBitsToFloat(MAGIC_BITS | (bits & 15)) - magic)
                    + hi[j] * (Float.intBitsToFloat(MAGIC_BITS | ((bits >>> 4) & 15)) - magic);
        }
        return dot;
    }

    /** Blocks whose code words a GEMV item has in flight at once (see {@link #int4Sums}). */
    static final int INT4_IN_FLIGHT = 4;
    /** 2^23 as an f32's bits: OR-ing a small unsigned integer u into its mantissa gives the float 2^23 + u. */
    static final int MAGIC_BITS = 0x4B000000;

    /**
     * The GEMV's sums over rows of {@link QuantBlocks#INT4} or {@link QuantBlocks#INT4_ZP} blocks (k a
     * multiple of 128, teams a multiple of 16): sixteen items share a block, each loading one 32-bit
     * word of its nibbles (elements 4i..4i+3 in the low halves, 64+4i.. in the high ones: the
     * activations they meet are two 16-byte loads), and a team covers team / 16 blocks a step, with
     * {@link #INT4_IN_FLIGHT} steps' words loaded before any arithmetic (with two, a warp had 256 bytes
     * of weights in flight, a quarter of the bf16 GEMV's, and int4 decoded at 806 GB/s on the H100).
     * A block's scale s and offset o factor out of its dot product: sum x (s q - o) = s sum x q - o sum x
     * (q: INT4's codes centred, INT4_ZP's as stored). A nibble becomes a float without a conversion
     * instruction (a quarter-rate one on NVIDIA GPUs): OR-ed into the mantissa of 2^23, then 2^23 and the
     * centre subtracted, exactly. The generic path loaded each nibble, and each scale, a byte at a time:
     * 0.23x bf16's batch-1 speed on the H200.
     */
    static void int4Sums(float[] acc, FloatArray a, ByteArray w, int format, int col, int lane, int team, int row0, int rows, int k) {
        int[] q = new int[INT4_IN_FLIGHT];
        int[] head = new int[1];
        float[] lo = new float[4];
        float[] hi = new float[4];
        boolean zeroPoint = format == QuantBlocks.INT4_ZP;
        float magic = 0x1p23f + (zeroPoint ? 0f : 8f); // 2^23 plus INT4's centre
        int blocks = k / 128;
        int rowAt = col * blocks * QuantBlocks.blockBytes(format);
        int word = lane % 16;
        int perStep = team / 16;
        for (int b0 = lane / 16; b0 < blocks; b0 += INT4_IN_FLIGHT * perStep) {
            // every block's word first: the loads are in flight together before any arithmetic waits on them
            // (written out, and read back below by constant index: a loop index into q put it in local memory)
            w.getWords(QuantBlocks.int4CodesAt(rowAt, b0) + 4 * word, q, 0, 1);
            w.getWords(QuantBlocks.int4CodesAt(rowAt, Math.min(b0 + perStep, blocks - 1)) + 4 * word, q, 1, 1);
            w.getWords(QuantBlocks.int4CodesAt(rowAt, Math.min(b0 + 2 * perStep, blocks - 1)) + 4 * word, q, 2, 1);
            w.getWords(QuantBlocks.int4CodesAt(rowAt, Math.min(b0 + 3 * perStep, blocks - 1)) + 4 * word, q, 3, 1);
            for (int f = 0; f < INT4_IN_FLIGHT; f++) {
                int b = b0 + f * perStep;
                if (b < blocks) {
                    int at = QuantBlocks.int4ScaleAt(format, rowAt, blocks, b);
                    int codes = f == 0 ? q[0] : f == 1 ? q[1] : f == 2 ? q[2] : q[3];
                    float scale = QuantBlocks.int4Word(w, at, head);
                    float offset = zeroPoint ? QuantBlocks.int4Word(w, at + 4, head) : 0f;
                    int e = b * 128 + 4 * word;
                    for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
                        if (r < rows) {
                            int x0 = (row0 + r) * k + e;
                            a.getFloats(x0, lo, 0, 4);
                            a.getFloats(x0 + 64, hi, 0, 4);
                            float sum = lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3];
                            acc[r] += scale * int4Dot(lo, hi, codes, magic) - offset * sum;
                        }
                    }
                }
            }
        }
    }

    /**
     * Whether a gated MLP's [gate; up] projection over rows of {@code format} runs as one launch here: where the tensor-core
     * GEMV takes m rows ({@link Int4TensorGemv#gated}), else at batch 1 over int4 blocks where the gated GEMV and the
     * int8-activation int4 GEMV both apply ({@link #matmulInt4GemvGatedQ8}).
     */
    public static boolean gatedApplies(Device device, QuantFormat format, int m, int k) {
        if (Int4TensorGemv.applies(device, format, m, k)) {
            return true;
        }
        int rowsPerTeam = rowsPerTeam(format.code(), m, k, Matmul.gemvLocal(device) / Matmul.gemvColumns(device, m));
        return Matmul.gatedGemvApplies(device, m, k) && int8ActivationsApply(device, format.code(), rowsPerTeam);
    }

    /** out[m, width] = act(gate . a) * (up . a) for m rows a[m, k], w [gate; up] rows of int4 blocks, where {@link #gatedApplies}. */
    public static void launchGated(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, QuantFormat format, DeviceBuffer bias,
            Activations.Kind act, int m, int width, int k) {
        if (!gatedApplies(device, format, m, k)) {
            throw new IllegalArgumentException("no gated GEMV over " + m + " rows of " + format + " rows of " + k + " here");
        }
        Matmul.checkGatedShapes(out, a, bias, width, k);
        Shapes.atLeast(out, (long) m * width, "gated GEMV output");
        Shapes.atLeast(a, (long) m * k, "gated GEMV input");
        Shapes.intIndexable(2L * width * format.rowBytes(k), "gated GEMV weight bytes");
        if (w.byteSize() < 2L * width * format.rowBytes(k)) {
            throw new IllegalArgumentException(format + " gated weight holds " + w.byteSize() + " bytes, needs " + 2L * width * format.rowBytes(k));
        }
        if (Int4TensorGemv.applies(device, format, m, k)) {
            Int4TensorGemv.launchGated(device, out, a, w, format, bias, act, m, width, k);
            return;
        }
        int columns = gatedColumns(device, width);
        device.launch(GEMV_INT4_GATED_Q8, Matmul.gemvGrid(1, width, Matmul.gemvLocal(device), columns, 2), out, a, w, format.code(),
                bias == null ? out : bias, bias != null, width, k, columns, act.code);
    }

    /**
     * Output columns a work-group of the batch-1 gated int4 GEMV over [gate; up] rows of {@code width} outputs each: a team per
     * pair of outputs (four rows), teams widened as the plain GEMV's over the 2 width rows.
     */
    static int gatedColumns(Device device, int width) {
        return Matmul.fillingGemvColumns(device, 1, 2 * width, Matmul.GEMV_ROWS_PER_TEAM);
    }

    /**
     * The type {@link #launch} of m rows reads its activations in as they are: the bf16 GEMM's where it dequantises the
     * blocks for it ({@link Matmul#int8ActivationType} says why), else f32.
     */
    public static DType activationType(Device device, QuantFormat format, int m, int k) {
        return dequantises(device, format, m, k) ? Matmul.activationType(device, DType.BF16, m, k) : DType.F32;
    }

    /** Whether {@link #launch} of m rows dequantises the blocks for the bf16 GEMM: no tensor-core kernel takes m first. */
    static boolean dequantises(Device device, QuantFormat format, int m, int k) {
        return !Int4TensorGemv.applies(device, format, m, k) && !(isInt4(format.code()) && QuantTensorGemm.applies(device, m, k))
                && DequantizedGemm.applies(device, m, k);
    }

    /**
     * Output columns a work-group of the GEMV over n rows of {@code rowsPerTeam} rows a team: teams widened towards the tuning
     * {@code matmul.gemv_items_per_unit} work-items per compute unit, or on int8 activations ({@code q8}) towards
     * {@code matmul.int4_q8_items_per_unit} where the device tunes it (tornado.properties). Teams only grow: still a multiple of 16.
     */
    static int gemvColumns(Device device, int m, int n, int rowsPerTeam, boolean q8) {
        int itemsPerUnit = Tuning.get(device, "matmul.gemv_items_per_unit", 0);
        if (q8) {
            itemsPerUnit = Tuning.get(device, "matmul.int4_q8_items_per_unit", itemsPerUnit);
        }
        return Matmul.fillingGemvColumns(device, m, n, rowsPerTeam, itemsPerUnit);
    }

    /**
     * out[m, n] (f32) = a[m, k] (f32) · w[n, k]ᵀ + bias[n] (or null), w packed in {@code format}
     * (n rows of {@link QuantFormat#rowBytes}). Int4 blocks at up to 16 rows take the tensor-core GEMV where the device tunes it
     * ({@link Int4TensorGemv}); decode-sized m runs the GEMV kernel, larger m int4 blocks
     * the tensor-core GEMM that dequantises in registers ({@link QuantTensorGemm}) or any format the vendor
     * GEMM over dequantised rows ({@link DequantizedGemm}) where the device tunes them, else the tiled one.
     */
    public static void launch(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, QuantFormat format, DeviceBuffer bias,
            int m, int n, int k) {
        long rowBytes = format.rowBytes(k);
        Shapes.positive(m, "matmul m");
        Shapes.positive(n, "matmul n");
        Shapes.intIndexable((long) m * k, "matmul input a");
        Shapes.intIndexable(n * rowBytes, "matmul weight bytes");
        Shapes.intIndexable((long) m * n, "matmul output");
        Shapes.atLeast(out, (long) m * n, "matmul output");
        Shapes.atLeast(a, (long) m * k, "matmul input a");
        if (w.byteSize() < n * rowBytes) {
            throw new IllegalArgumentException(format + " weight holds " + w.byteSize() + " bytes, needs " + n * rowBytes);
        }
        if (bias != null) {
            Shapes.atLeast(bias, n, "matmul bias");
        }
        DeviceBuffer b = bias == null ? out : bias;
        if (Int4TensorGemv.applies(device, format, m, k)) {
            Int4TensorGemv.launch(device, out, a, w, format, bias, m, n, k);
        } else if (isInt4(format.code()) && QuantTensorGemm.applies(device, m, k)) {
            QuantTensorGemm.launchInt4(device, out, a, w, format, bias, m, n, k);
        } else if (dequantises(device, format, m, k)) {
            DequantizedGemm.launchBlocks(device, out, a, w, format, bias, m, n, k);
        } else if (Matmul.useGemv(device, m)) {
            int rowsPerTeam = rowsPerTeam(format.code(), m, k, Matmul.gemvLocal(device) / Matmul.gemvColumns(device, m));
            boolean q8 = int8ActivationsApply(device, format.code(), rowsPerTeam);
            int columns = gemvColumns(device, m, n, rowsPerTeam, q8);
            Grid grid = Matmul.gemvGrid(m, n, Matmul.gemvLocal(device), columns, rowsPerTeam);
            device.launch(q8 ? GEMV_INT4_Q8 : GEMV, grid, out, a, w, format.code(), b, bias != null, m, n, k, columns);
        } else {
            BatchInvariance.launch(device, TILED, Matmul.tiledGrid(m, n, Tuning.get(device, "matmul.tile", 16)), out, a, w, format.code(), b, bias != null, m, n, k);
        }
    }
}
