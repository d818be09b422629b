package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Int4 weights ({@link QuantBlocks#INT4}, {@link QuantBlocks#INT4_ZP} blocks of 128) times a decode batch of up to
 * {@link #MAX_M} rows (two B fragments beyond 8, both multiplied by each dequantised A fragment) on tensor cores, with no
 * launch before it: {@code out[m, n] = a[m, k] · W[n, k]ᵀ (+ bias)}, and
 * a gated MLP's [gate; up] with its activation ({@link #gated}).
 *
 * <p><b>Why.</b> The batch-1 int4 GEMV on int8 activations ({@link QuantMatmul#matmulInt4GemvQ8}) is bound by its
 * instructions, not by memory (about 190 an item for 32 weights, some 70 of them rounding the activations: 55-60 % of
 * the copy rate, docs/benchmarks.md sessions 18-22). An m16n8k16 MMA takes 256 weights at once: here a warp's 16
 * weight rows are the MMA's A operand and the batch rows its B columns (8 at most; at batch 1 seven of them are
 * zeros, which the tensor cores multiply for free), so a weight costs about 1.4 instructions of conversion (exact, no
 * int-to-float) and the activations are only rounded to bf16.
 *
 * <p><b>Fragment order without a permutation.</b> An A fragment gives lane (g = lane / 4, t = lane % 4) rows g and
 * g + 8 at fragment columns 2t, 2t+1, 2t+8, 2t+9. Lane t loads the block's code words t, t+4, t+8, t+12 of its two rows
 * (word j holds the block's columns 4j..4j+3 in its low nibbles and 64+4j.. in its high ones); k-step s of the block
 * (eight of 16) takes word s % 4's low (s &lt; 4) or high nibbles, those of bytes 0 and 2 as columns 2t, 2t+1 and of
 * bytes 1 and 3 as 2t+8, 2t+9 (a byte permute puts a pair under two bf16 exponents: {@link #codePair}). The B
 * fragment of lane (g, t) is batch row g's four consecutive activations at the same k (one 16-byte load) in the same
 * order. A dot product does not depend on the order of its terms, so neither the weights nor the activations move.
 *
 * <p><b>Scales.</b> Each block's products are summed by the MMA over the codes themselves (INT4: code - 8, exact in
 * bf16; INT4_ZP: the code, and a second MMA against ones gives the block's activation sum), and the block's f32 scale
 * (and offset) applies once to the f32 sums: {@code s Σ (q - 8) x} and {@code s Σ q x - o Σ x}. No weight is rounded
 * beyond what the format stores.
 *
 * <p><b>Work.</b> A work-group of {@link #WARPS} warps (or {@code parts}, up to {@link #MAX_PARTS}); a warp takes a tile
 * of 16 rows (the gated kernel a tile of gate rows and its tile of up rows) over every {@code parts}-th block (part p:
 * blocks p, p + parts, ...; the group's warps read a run of each row together), with the next block's code words and
 * scales (two blocks' where {@link Pipeline#deep}) loading while the tensor cores work on this one; the parts of a
 * tile are warps of one group and add up through local memory after one barrier. The launcher sizes {@code parts}
 * ({@link #parts}) for about the tuning {@code matmul.int4_mma_gemv_warps_per_unit} warps a compute unit.
 */
public final class Int4TensorGemv {
    private static final KernelRef GEMV = KernelRef.of(Int4TensorGemv.class, "gemv");
    private static final KernelRef GATED = KernelRef.of(Int4TensorGemv.class, "gated");
    /** Warps of a work-group. */
    static final int WARPS = 8;
    /** Warps a tile at most (a work-group of 16 warps then takes one tile). */
    static final int MAX_PARTS = 16;
    /** Weight rows of a warp's tile: the MMA's m. */
    static final int TILE = 16;
    /** Batch rows of one B fragment: the MMA's n. */
    static final int COLUMNS = 8;
    /** Batch rows at most: two B fragments a k-step. */
    public static final int MAX_M = 16;
    /** k of one int4 block. */
    static final int BLOCK = 128;
    /** Two bf16 ones: the A operand whose product with B is each batch row's sum of its activations. */
    private static final int ONES = 0x3F803F80;
    /** Two bf16 -136 and -128: what turns 128 + a code into INT4's centred code, or into INT4_ZP's code. */
    private static final int MINUS_136 = 0xC308C308, MINUS_128 = 0xC300C300;
    /** A code word's low (or, shifted by 4, high) nibbles, one a byte. */
    private static final int NIBBLES = 0x0F0F0F0F;
    /** 0x43 in every byte: the high byte of the bf16 128.0, whose low mantissa bits a code then fills. */
    private static final int HIGH_128 = 0x43434343;
    /** {@link KMath#bytePerm} selectors: bytes 0 and 2 (then 1 and 3) of the codes, each under a 0x43. */
    private static final int EVEN_BYTES = 0x0604, ODD_BYTES = 0x0705;

    private Int4TensorGemv() {
    }

    /**
     * out[r, row] = a[r, :] · W[row, :] (+ bias[row]) for r &lt; m &lt;= columns (8, or 16: two B fragments a k-step), W n
     * rows of {@code format} blocks, k a multiple of 128; a group of max(WARPS, parts) warps per {@code warps / parts}
     * tiles of 16 rows ({@link #grid}).
     */
    public static void gemv(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray bias, boolean hasBias,
            int m, int n, int k, int parts, boolean zeroPoint, boolean deep, boolean hoist, int columns) {
        float[] partial = ctx.allocateFloatLocalArray(MAX_PARTS * TILE * columns);
        float[] sums = new float[16];
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int tiles = ctx.localGroupSizeX / KernelContext.WARP_SIZE / parts;
        int row0 = (ctx.groupIdx * tiles + warp / parts) * TILE + ctx.laneId() / 4;
        tileSums(ctx, sums, a, w, zeroPoint, Math.min(row0, n - 1), Math.min(row0 + 8, n - 1), 0, 0, false, m, k, warp % parts, parts, deep, hoist,
                columns);
        for (int f = 0; f < columns / COLUMNS; f++) {
            storePartial(ctx, partial, 0, sums, 8 * f, warp, f, columns);
        }
        ctx.localBarrier();
        for (int i = ctx.localIdx; i < tiles * TILE * m; i += ctx.localGroupSizeX) {
            int tile = i / (TILE * m);
            int r = i / m % TILE;
            int b = i % m;
            int row = (ctx.groupIdx * tiles + tile) * TILE + r;
            if (row < n) {
                out.set(b * n + row, partSum(partial, 0, tile, parts, r, b, columns) + (hasBias ? bias.get(row) : 0f));
            }
        }
    }

    /**
     * out[r, p] = act(gate[r, p]) * up[r, p] for p &lt; width, r &lt; m &lt;= columns: w holds [gate; up] (2 width rows of
     * {@code format} blocks), bias (where given) 2 width values; {@code kind} an {@link Activations.Kind} code. A group
     * per {@code warps / parts} tiles of 16 gate rows, each warp taking the gate tile and its up tile.
     */
    public static void gated(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray bias, boolean hasBias,
            int m, int width, int k, int parts, int kind, boolean zeroPoint, boolean deep, boolean hoist, int columns) {
        int half = MAX_PARTS * TILE * columns; // the gate rows' partial sums, then the up rows'
        float[] partial = ctx.allocateFloatLocalArray(2 * MAX_PARTS * TILE * columns);
        float[] sums = new float[16];
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int tiles = ctx.localGroupSizeX / KernelContext.WARP_SIZE / parts;
        int p0 = (ctx.groupIdx * tiles + warp / parts) * TILE + ctx.laneId() / 4;
        int g0 = Math.min(p0, width - 1);
        int g1 = Math.min(p0 + 8, width - 1);
        tileSums(ctx, sums, a, w, zeroPoint, g0, g1, width + g0, width + g1, true, m, k, warp % parts, parts, deep, hoist, columns);
        for (int f = 0; f < columns / COLUMNS; f++) {
            storePartial(ctx, partial, 0, sums, 8 * f, warp, f, columns);
            storePartial(ctx, partial, half, sums, 8 * f + 4, warp, f, columns);
        }
        ctx.localBarrier();
        for (int i = ctx.localIdx; i < tiles * TILE * m; i += ctx.localGroupSizeX) {
            int tile = i / (TILE * m);
            int r = i / m % TILE;
            int b = i % m;
            int p = (ctx.groupIdx * tiles + tile) * TILE + r;
            if (p < width) {
                float gate = partSum(partial, 0, tile, parts, r, b, columns) + (hasBias ? bias.get(p) : 0f);
                float up = partSum(partial, half, tile, parts, r, b, columns) + (hasBias ? bias.get(width + p) : 0f);
                out.set(b * width + p, Activations.activate(gate, kind) * up);
            }
        }
    }

    /**
     * This warp's sums over its share of the blocks (part {@code part} of {@code parts}: blocks part, part + parts, ...) for rows rowA
     * (this lane's g) and rowB (g + 8) into sums[0..3] in the accumulators' layout (rowA's batch rows 2t, 2t+1, then
     * rowB's), and where {@code pair} rows rowC and rowD into sums[4..7]; with 16 {@code columns} the batch rows 8 + 2t,
     * 8 + 2t + 1 (a second B fragment, the same A fragments) into sums[8..15] likewise. Every warp of the group runs the same
     * trips (the MMAs need a warp's lanes together, and OpenCL's emulation the group's).
     */
    static void tileSums(KernelContext ctx, float[] sums, FloatArray a, ByteArray w, boolean zeroPoint, int rowA, int rowB, int rowC,
            int rowD, boolean pair, int m, int k, int part, int parts, boolean deep, boolean hoist, int columns) {
        int[] codes = new int[16];
        int[] nextCodes = new int[16];
        int[] laterCodes = new int[16];
        float[] terms = new float[8];
        float[] nextTerms = new float[8];
        float[] laterTerms = new float[8];
        int[] word = new int[1];
        int[] af = new int[4];
        int[] bf = new int[4];
        int[] ones = new int[4];
        float[] x = new float[64];
        float[] acc = new float[16];
        float[] xsum = new float[8];
        int fragments = columns / COLUMNS;
        int lane = ctx.laneId();
        int g = lane / 4;
        int t = lane % 4;
        int blocks = k / BLOCK;
        int trips = (blocks + parts - 1) / parts;
        int bias = zeroPoint ? MINUS_128 : MINUS_136;
        int rowBytes = blocks * QuantBlocks.blockBytes(zeroPoint ? QuantBlocks.INT4_ZP : QuantBlocks.INT4);
        for (int i = 0; i < 4; i++) {
            ones[i] = ONES;
        }
        for (int i = 0; i < 16; i++) {
            sums[i] = 0f;
        }
        // the parts of a tile take its blocks in turn (part p blocks p, p + parts, ...: the group reads a run of each row at
        // once); every warp of the group runs the same trips (OpenCL's MMA meets the whole group at barriers), and a trip past
        // the last block reads the last one and adds nothing. One block's codes (two where deep) load ahead of the one in use.
        loadBlock(w, codes, terms, word, rowA, rowB, rowC, rowD, pair, zeroPoint, rowBytes, blocks, Math.min(part, blocks - 1), t);
        if (deep) {
            loadBlock(w, nextCodes, nextTerms, word, rowA, rowB, rowC, rowD, pair, zeroPoint, rowBytes, blocks,
                    Math.min(part + parts, blocks - 1), t);
        }
        for (int trip = 0; trip < trips; trip++) {
            int block = Math.min(part + trip * parts, blocks - 1);
            boolean valid = part + trip * parts < blocks;
            int ahead = trip + (deep ? 2 : 1);
            if (ahead < trips) {
                int at = Math.min(part + ahead * parts, blocks - 1);
                if (deep) {
                    loadBlock(w, laterCodes, laterTerms, word, rowA, rowB, rowC, rowD, pair, zeroPoint, rowBytes, blocks, at, t);
                } else {
                    loadBlock(w, nextCodes, nextTerms, word, rowA, rowB, rowC, rowD, pair, zeroPoint, rowBytes, blocks, at, t);
                }
            }
            // batch row g + 8f's activations at this lane's columns of the block, step s's four at 64 (s / 4) + 16 (s % 4) + 4t:
            // where hoist, all eight loads (of each fragment) issued before the first MMA, else each before its step
            int xAt = g * k + block * BLOCK + 4 * t;
            if (hoist) {
                for (int f = 0; f < fragments; f++) {
                    if (g + 8 * f < m) {
                        for (int s = 0; s < 8; s++) {
                            a.getFloats(xAt + 8 * f * k + 64 * (s / 4) + 16 * (s % 4), x, 32 * f + 4 * s, 4);
                        }
                    }
                }
            }
            for (int i = 0; i < 16; i++) {
                acc[i] = 0f;
            }
            for (int i = 0; i < 8; i++) {
                xsum[i] = 0f;
            }
            for (int s = 0; s < 8; s++) {
                int wi = s % 4;
                int shift = 4 * (s / 4);
                for (int f = 0; f < fragments; f++) {
                    boolean live = g + 8 * f < m;
                    int xi = hoist ? 32 * f + 4 * s : 4 * f; // without hoist, every step's four in the same registers
                    if (!hoist && live) {
                        a.getFloats(xAt + 8 * f * k + 64 * (s / 4) + 16 * wi, x, xi, 4);
                    }
                    // columns +0, +2 (bytes 0 and 2 of a code word) then +1, +3 (bytes 1 and 3)
                    bf[2 * f] = live ? KMath.packBf16x2(x[xi], x[xi + 2]) : 0;
                    bf[2 * f + 1] = live ? KMath.packBf16x2(x[xi + 1], x[xi + 3]) : 0;
                }
                int codesA = (codes[wi] >>> shift) & NIBBLES;
                int codesB = (codes[4 + wi] >>> shift) & NIBBLES;
                af[0] = codePair(codesA, EVEN_BYTES, bias);
                af[1] = codePair(codesB, EVEN_BYTES, bias);
                af[2] = codePair(codesA, ODD_BYTES, bias);
                af[3] = codePair(codesB, ODD_BYTES, bias);
                for (int f = 0; f < fragments; f++) {
                    ctx.mmaBf16(acc, 8 * f, af, 0, bf, 2 * f);
                }
                if (pair) {
                    int codesC = (codes[8 + wi] >>> shift) & NIBBLES;
                    int codesD = (codes[12 + wi] >>> shift) & NIBBLES;
                    af[0] = codePair(codesC, EVEN_BYTES, bias);
                    af[1] = codePair(codesD, EVEN_BYTES, bias);
                    af[2] = codePair(codesC, ODD_BYTES, bias);
                    af[3] = codePair(codesD, ODD_BYTES, bias);
                    for (int f = 0; f < fragments; f++) {
                        ctx.mmaBf16(acc, 8 * f + 4, af, 0, bf, 2 * f);
                    }
                }
                if (zeroPoint) {
                    for (int f = 0; f < fragments; f++) {
                        ctx.mmaBf16(xsum, 4 * f, ones, 0, bf, 2 * f);
                    }
                }
            }
            // s Σ (q - 8) x, or s Σ q x - o Σ x: rows A and B (then C and D) take terms 0, 1 (2, 3); offsets at 4..7
            for (int f = 0; f < fragments; f++) {
                for (int i = 0; i < 8; i++) {
                    int row = i / 2; // 0 A, 1 B, 2 C, 3 D
                    if (valid && (i < 4 || pair)) {
                        sums[8 * f + i] += terms[row] * acc[8 * f + i] - (zeroPoint ? terms[4 + row] * xsum[4 * f + i % 4] : 0f);
                    }
                }
            }
            for (int i = 0; i < 16; i++) {
                codes[i] = nextCodes[i];
                if (deep) {
                    nextCodes[i] = laterCodes[i];
                }
            }
            for (int i = 0; i < 8; i++) {
                terms[i] = nextTerms[i];
                if (deep) {
                    nextTerms[i] = laterTerms[i];
                }
            }
        }
    }

    /**
     * Two of a word's four codes (one a byte, {@link #NIBBLES} of a code word) as a pair of bf16, each plus {@code bias}
     * (two bf16): {@code selector} ({@link #EVEN_BYTES} or {@link #ODD_BYTES}) places them under the exponent byte of
     * 128.0, one bf16x2 multiply-add leaves 128 + q + bias (exact: q - 8 for INT4). On CUDA one byte permute and one
     * {@code fma.rn.bf16x2} a pair; no int-to-float conversion.
     */
    static int codePair(int codes, int selector, int bias) {
        return KMath.fmaBf16x2(KMath.bytePerm(HIGH_128, codes, selector), ONES, bias);
    }

    /**
     * Block (group) {@code block}'s code words t, t+4, t+8, t+12 of rows A and B (codes[0..7]; of C and D at 8..15 where
     * {@code pair}), their scales at terms[0..3] and INT4_ZP's offsets at terms[4..7]; all loads issued before any is used.
     */
    private static void loadBlock(ByteArray w, int[] codes, float[] terms, int[] word, int rowA, int rowB, int rowC, int rowD, boolean pair,
            boolean zeroPoint, int rowBytes, int blocks, int block, int t) {
        int codesAt = QuantBlocks.int4CodesAt(0, block) + 4 * t;
        int termsAt = QuantBlocks.int4ScaleAt(zeroPoint ? QuantBlocks.INT4_ZP : QuantBlocks.INT4, 0, blocks, block);
        for (int j = 0; j < 4; j++) {
            w.getWords(rowA * rowBytes + codesAt + 16 * j, codes, j, 1);
            w.getWords(rowB * rowBytes + codesAt + 16 * j, codes, 4 + j, 1);
            if (pair) {
                w.getWords(rowC * rowBytes + codesAt + 16 * j, codes, 8 + j, 1);
                w.getWords(rowD * rowBytes + codesAt + 16 * j, codes, 12 + j, 1);
            }
        }
        terms[0] = QuantBlocks.int4Word(w, rowA * rowBytes + termsAt, word);
        terms[1] = QuantBlocks.int4Word(w, rowB * rowBytes + termsAt, word);
        terms[2] = pair ? QuantBlocks.int4Word(w, rowC * rowBytes + termsAt, word) : 0f;
        terms[3] = pair ? QuantBlocks.int4Word(w, rowD * rowBytes + termsAt, word) : 0f;
        terms[4] = zeroPoint ? QuantBlocks.int4Word(w, rowA * rowBytes + termsAt + 4, word) : 0f;
        terms[5] = zeroPoint ? QuantBlocks.int4Word(w, rowB * rowBytes + termsAt + 4, word) : 0f;
        terms[6] = zeroPoint && pair ? QuantBlocks.int4Word(w, rowC * rowBytes + termsAt + 4, word) : 0f;
        terms[7] = zeroPoint && pair ? QuantBlocks.int4Word(w, rowD * rowBytes + termsAt + 4, word) : 0f;
    }

    /**
     * A warp's sums[from..from+3] of B fragment f into partial[at..]: [warp][tile row][batch row of {@code columns}], lane (g, t)
     * holding rows g, g + 8 at batch rows 8f + 2t and the next.
     */
    static void storePartial(KernelContext ctx, float[] partial, int at, float[] sums, int from, int warp, int f, int columns) {
        int g = ctx.laneId() / 4;
        int t = ctx.laneId() % 4;
        int upper = at + (warp * TILE + g) * columns + 8 * f + 2 * t;
        int lower = upper + 8 * columns;
        partial[upper] = sums[from];
        partial[upper + 1] = sums[from + 1];
        partial[lower] = sums[from + 2];
        partial[lower + 1] = sums[from + 3];
    }

    /** The parts of a tile's row r at batch row b added in part order (a fixed order: the same floats at every launch). */
    static float partSum(float[] partial, int at, int tile, int parts, int r, int b, int columns) {
        float v = 0f;
        for (int p = 0; p < parts; p++) {
            v += partial[at + ((tile * parts + p) * TILE + r) * columns + b];
        }
        return v;
    }

    // ---- launchers -------------------------------------------------------------------

    /**
     * Whether an int4 matmul (or gated projection) of m batch rows over rows of k goes this way on {@code device}: m from the
     * tuning {@code matmul.int4_mma_gemv_min_m} (default 1) up to {@code matmul.int4_mma_gemv_max_m} (0: never; at most 16), k a
     * multiple of 128, bf16 tensor cores, not under {@link BatchInvariance} (a batch of more rows takes another kernel).
     */
    public static boolean applies(Device device, QuantFormat format, int m, int k) {
        return QuantMatmul.isInt4(format.code()) && m >= Math.max(1, Tuning.get(device, "matmul.int4_mma_gemv_min_m", 1))
                && m <= Math.min(MAX_M, Tuning.get(device, "matmul.int4_mma_gemv_max_m", 0))
                && k % BLOCK == 0 && device.supports(Feature.MMA_BF16) && !BatchInvariance.enabled();
    }

    /** out[m, n] = a · wᵀ + bias (or null), w n rows of int4 blocks; m within {@link #applies}. */
    public static void launch(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, QuantFormat format, DeviceBuffer bias,
            int m, int n, int k) {
        check(device, format, m, k);
        int tiles = (n + TILE - 1) / TILE;
        int parts = parts(device, tiles, k / BLOCK);
        device.launch(gemvKernel(format, Pipeline.of(device), m), grid(tiles, parts), out, a, w, bias == null ? out : bias, bias != null, m, n, k,
                parts);
    }

    /** out[m, width] = act(a · gateᵀ) * (a · upᵀ), w [gate; up] rows of int4 blocks, bias (or null) 2 width. */
    public static void launchGated(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, QuantFormat format, DeviceBuffer bias,
            Activations.Kind act, int m, int width, int k) {
        check(device, format, m, k);
        int tiles = (width + TILE - 1) / TILE;
        int parts = parts(device, 2L * tiles, k / BLOCK); // a warp streams two tiles
        device.launch(gatedKernel(format, Pipeline.of(device), m), grid(tiles, parts), out, a, w, bias == null ? out : bias, bias != null, m, width,
                k, parts, act.code);
    }

    /**
     * How a warp streams its blocks: {@code deep}, two blocks' codes loading ahead of the one in use (else one); {@code hoist},
     * a block's eight activation loads issued before its first MMA (else each before its step). Bound at the kernel refs
     * (the last parameters, with zeroPoint and columns: a launch leaves them out), from the tunings {@code matmul.int4_mma_gemv_deep}
     * and {@code matmul.int4_mma_gemv_hoist} (1: on; default off).
     */
    record Pipeline(boolean deep, boolean hoist) {
        static Pipeline of(Device device) {
            return new Pipeline(Tuning.get(device, "matmul.int4_mma_gemv_deep", 0) == 1, Tuning.get(device, "matmul.int4_mma_gemv_hoist", 0) == 1);
        }

        /** {@code kernel} for {@code format}'s blocks and m batch rows: one B fragment a k-step up to 8 rows, two beyond. */
        KernelRef bind(KernelRef kernel, QuantFormat format, int m) {
            return kernel.with("zeroPoint", format == QuantFormat.INT4_ZP).with("deep", deep).with("hoist", hoist)
                    .with("columns", m > COLUMNS ? 2 * COLUMNS : COLUMNS);
        }
    }

    /** The plain kernel for {@code format}'s blocks and m batch rows, streamed as {@code pipeline} says. */
    static KernelRef gemvKernel(QuantFormat format, Pipeline pipeline, int m) {
        return pipeline.bind(GEMV, format, m);
    }

    /** The gated kernel for {@code format}'s blocks and m batch rows, streamed as {@code pipeline} says. */
    static KernelRef gatedKernel(QuantFormat format, Pipeline pipeline, int m) {
        return pipeline.bind(GATED, format, m);
    }

    private static void check(Device device, QuantFormat format, int m, int k) {
        if (!applies(device, format, m, k)) {
            throw new IllegalArgumentException("no int4 tensor-core GEMV for " + m + " rows over " + format + " rows of " + k + " here");
        }
    }

    /**
     * Warps a tile (a power of two up to the tuning {@code matmul.int4_mma_gemv_max_parts}, default 8, at most 16; each at
     * least one block): the fewest that bring {@code tiles} tiles of work up to the tuning
     * {@code matmul.int4_mma_gemv_warps_per_unit} warps a compute unit.
     */
    static int parts(Device device, long tiles, int blocks) {
        long target = (long) device.computeUnits() * Tuning.get(device, "matmul.int4_mma_gemv_warps_per_unit", 16);
        int parts = 1;
        while (2 * parts <= maxParts(device) && tiles * parts < target && 2 * parts <= blocks) {
            parts *= 2;
        }
        return parts;
    }

    /**
     * The most warps a tile may take here: the tuning {@code matmul.int4_mma_gemv_max_parts} (default 8; 16 makes work-groups
     * of 512 items, which OpenCL's warp emulation does not run), at most {@link #MAX_PARTS}.
     */
    public static int maxParts(Device device) {
        return Math.min(MAX_PARTS, Tuning.get(device, "matmul.int4_mma_gemv_max_parts", WARPS));
    }

    /** A group of max(WARPS, parts) warps per {@code warps / parts} tiles. */
    public static Grid grid(int tiles, int parts) {
        int warps = Math.max(WARPS, parts);
        int perGroup = warps / parts;
        return Grid.groups((tiles + perGroup - 1) / perGroup, (long) warps * KernelContext.WARP_SIZE);
    }
}
