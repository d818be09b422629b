package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.GrowingScratch;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Quantised weights times a decode batch on tensor cores: {@code out[m, n] = a[m, k] · W[n, k]ᵀ (+ bias)}
 * for int8 rows (one scale per output column) and {@link QuantBlocks#INT4} / {@link QuantBlocks#INT4_ZP}
 * blocks. The codes cross memory once, raw, straight into registers, and become bf16 MMA fragments there
 * (vLLM's Marlin does the same): at batch 64 the weights are the traffic, and dequantising them into a
 * bf16 copy for cuBLAS first ({@link DequantizedGemm}) moved five bytes a weight where bf16 moves two.
 *
 * <p><b>Fragment order.</b> An m16n8k16 B fragment gives lane (g = lane / 4, t = lane % 4) weight row g at
 * k = 2t, 2t+1, 2t+8, 2t+9 of the step. Instead of gathering those bytes, each lane loads 16 consecutive
 * codes of its row (columns 16t..16t+15 of a run of 64) and hands their word s to k-step s as if they were
 * that step's four columns; the activations are stored in the same order by {@link #permute}, which also
 * rounds them to bf16 (what the GEMM reads anyway): within each run of 64 columns, column 16t + 4s + j moves
 * to 16s + 2t + (j < 2 ? j : j + 6). A dot product does not depend on the order of its terms. An int4 block
 * (128 columns; byte i holds column i in its low nibble and 64 + i in its high one) fits the same order: a
 * lane's four words of a block give their low nibbles to the block's first run of 64 and the high ones to
 * the second.
 *
 * <p><b>Work.</b> A work-group of four warps takes 128 output columns (a warp 32, as four n8 tiles) and
 * 16 x {@code mTiles} rows, walking k in steps of 128 (one int4 block): the activations of
 * {@link #STAGES} steps in local memory by asynchronous copies, each warp's codes of the next step already
 * loading into registers while the tensor cores work on this one. Decode-sized m leaves few groups, so
 * k is split over groups that add into {@code out} (zeroed first). Int8 codes are exact in bf16 and each
 * column's scale multiplies its sum once; int4 weights are dequantised in bf16 arithmetic, as Marlin does with
 * its bf16 scales: {@code bf16(bf16(scale) * (code - centre) - bf16(offset))}, two bf16 multiply-adds a pair of
 * weights instead of float arithmetic (the int4 GEMM was bound by its instructions). Against the f32 dequantisation
 * ({@link QuantBlocks#weight}) that is a relative 2^-8 of the scale and of the offset, a sixteenth of int4's own step.
 */
public final class QuantTensorGemm {
    public static final KernelRef PERMUTE = KernelRef.of(QuantTensorGemm.class, "permute");
    /** The GEMMs over int8 rows and int4 blocks for groups of 16, 32 and 64 rows (mTiles 1, 2, 4 bound). */
    private static final KernelRef[] INT8 = rowTileKernels("int8Rows");
    private static final KernelRef[] INT4 = rowTileKernels("int4Rows");
    /** Work-items of a group: four warps. */
    public static final int LOCAL = 128;
    /** Output columns of a group (32 a warp). */
    public static final int COLUMNS = 128;
    /** k per step: one int4 block, two runs of 64. */
    public static final int STEP = 128;
    /** Steps of activations in flight. */
    static final int STAGES = 3;
    /** Ints per local row of activations: 128 bf16 and 4 ints of padding, so that ldmatrix's 8 rows fall on distinct banks. */
    private static final int ROW = STEP / 2 + 4;
    /** Rows of a group at most (four m16 tiles). */
    private static final int MAX_ROWS = 64;
    private static final int STAGE = MAX_ROWS * ROW;
    /** Ints per row of the output tile in local memory (128 floats and 4 of padding). */
    private static final int OUT_ROW = COLUMNS + 4;

    private QuantTensorGemm() {
    }

    /**
     * out[r, :] = a[r, :] (f32 or bf16) rounded to bf16, each run of 64 columns in fragment order (see the class
     * comment); k a multiple of 64. Eight columns a work-item, written as four pairs. The first {@code zeros}
     * elements of {@code zeroed} are set to 0 on the way (four a work-item), for the GEMM's split k to add into:
     * one launch fewer a matmul.
     */
    public static void permute(NativeArray out, NativeArray a, FloatArray zeroed, int m, int k, int zeros) {
        float[] x = new float[8];
        for (@Parallel int item = 0; item < Math.max(m * (k / 8), (zeros + 3) / 4); item++) {
            if (item < m * (k / 8)) {
                int i = 8 * item;
                a.getFloats(i, x, 0, 8);
                int run = i - i % 64;
                int t = i % 64 / 16;
                int s = i % 16 / 4; // 0 or 2: columns i..i+3 are step s's j = 0..3, i+4..i+7 step s + 1's
                out.setFloats(run + 16 * s + 2 * t, x, 0, 2);
                out.setFloats(run + 16 * s + 2 * t + 8, x, 2, 2);
                out.setFloats(run + 16 * (s + 1) + 2 * t, x, 4, 2);
                out.setFloats(run + 16 * (s + 1) + 2 * t + 8, x, 6, 2);
            }
            for (int j = 0; j < 4; j++) {
                if (4 * item + j < zeros) {
                    zeroed.set(4 * item + j, 0f);
                }
            }
        }
    }

    /**
     * Int8 rows of k codes (k a multiple of 128) and their per-row scales; {@code a} from {@link #permute}; up to 16
     * {@code mTiles} rows a group, mTiles (1, 2 or 4) bound by the kernel's ref ({@link #kernel}).
     */
    public static void int8Rows(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, int kSplits, int mTiles) {
        gemm(ctx, out, a, w, true, 0, scales, bias, hasBias, m, n, k, kSplits, mTiles, false);
    }

    /**
     * Rows of {@code format} ({@link QuantBlocks#INT4} or {@link QuantBlocks#INT4_ZP}) blocks, k a multiple of 128; up to
     * 16 {@code mTiles} rows a group, as {@link #int8Rows}; {@code wide} (bound with mTiles), a lane's 16 code bytes of a
     * block in one load, for rows 16-byte aligned ({@link QuantBlocks#int4RowsAligned}).
     */
    public static void int4Rows(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int m, int n, int k, int kSplits, int mTiles, boolean wide) {
        gemm(ctx, out, a, w, false, format, bias, bias, hasBias, m, n, k, kSplits, mTiles, wide);
    }

    /**
     * Group index {@code (rowTile * ceil(n / 128) + columnTile) * kSplits + split}; with {@code kSplits} > 1 each
     * group takes an even share of k's steps and adds its sums into {@code out}, which must hold zeros (the
     * bias comes with split 0's). Rows past m and columns past n read row m - 1 and n - 1 (each output element
     * depends on its own row and column only) and are not written.
     */
    private static void gemm(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, boolean int8, int format, FloatArray scales,
            FloatArray bias, boolean hasBias, int m, int n, int k, int kSplits, int mTiles, boolean wide) {
        int[] tile = ctx.allocateIntLocalArray(STAGES * STAGE);
        int[] af = new int[16];
        int[] bf = new int[2];
        int[] codes = new int[32];
        int[] nextCodes = new int[32];
        int[] terms = new int[8];
        int[] nextTerms = new int[8];
        int[] word = new int[1];
        float[] acc = new float[64];
        float[] sums = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int tilesN = (n + COLUMNS - 1) / COLUMNS;
        int split = ctx.groupIdx % kSplits;
        int tileIndex = ctx.groupIdx / kSplits;
        int row0 = (tileIndex / tilesN) * 16 * mTiles;
        int tileCol0 = (tileIndex % tilesN) * COLUMNS;
        int col0 = tileCol0 + 32 * warp;
        int allSteps = k / STEP;
        int share = (allSteps + kSplits - 1) / kSplits;
        int firstStep = split * share;
        int steps = Math.max(0, Math.min(allSteps, firstStep + share) - firstStep);
        int rowBytes = int8 ? k : allSteps * QuantBlocks.blockBytes(format);
        int centre = format == QuantBlocks.INT4_ZP ? 0 : 8;
        // a group of copies is committed for every step, also past the last one, so that "all but the
        // newest STAGES - 2 groups are done" always means "this step's activations are in"
        for (int p = 0; p < STAGES - 1; p++) {
            if (p < steps) {
                loadActivations(ctx, tile, p * STAGE, a, m, k, row0, 16 * mTiles, (firstStep + p) * STEP);
            }
            ctx.copyAsyncCommit();
        }
        if (steps > 0) {
            loadCodes(w, int8, format, codes, terms, word, col0, lane, n, k, rowBytes, firstStep, wide);
        }
        for (int step = 0; step < steps; step++) {
            ctx.copyAsyncWait(STAGES - 2);
            ctx.localBarrier(); // this step's activations are in; every warp is done with the last step's stage, refilled next
            int ahead = step + STAGES - 1;
            if (ahead < steps) {
                loadActivations(ctx, tile, (ahead % STAGES) * STAGE, a, m, k, row0, 16 * mTiles, (firstStep + ahead) * STEP);
            }
            ctx.copyAsyncCommit();
            if (step + 1 < steps) {
                loadCodes(w, int8, format, nextCodes, nextTerms, word, col0, lane, n, k, rowBytes, firstStep + step + 1, wide);
            }
            int stage = (step % STAGES) * STAGE;
            for (int s = 0; s < 8; s++) {
                for (int mi = 0; mi < mTiles; mi++) {
                    ctx.loadMatrixA(af, 4 * mi, tile, stage + 16 * mi * ROW + 8 * s, ROW);
                }
                for (int ni = 0; ni < 4; ni++) {
                    if (int8) {
                        bf[0] = KMath.int8x2ToBf16x2(codes[8 * ni + s], 0);
                        bf[1] = KMath.int8x2ToBf16x2(codes[8 * ni + s], 1);
                    } else {
                        // (code - centre) * scale - offset, in bf16 (the nibbles of bytes 0, 1 and of bytes 2, 3)
                        int q = codes[4 * ni + s % 4];
                        int shift = 4 * (s / 4);
                        bf[0] = KMath.fmaBf16x2(KMath.nibblesToBf16x2(q, shift, centre), terms[2 * ni], terms[2 * ni + 1]);
                        bf[1] = KMath.fmaBf16x2(KMath.nibblesToBf16x2(q, shift + 16, centre), terms[2 * ni], terms[2 * ni + 1]);
                    }
                    for (int mi = 0; mi < mTiles; mi++) {
                        ctx.mmaBf16(acc, 4 * (4 * mi + ni), af, 4 * mi, bf, 0);
                    }
                }
            }
            for (int i = 0; i < 32; i++) {
                codes[i] = nextCodes[i];
            }
            for (int i = 0; i < 8; i++) {
                terms[i] = nextTerms[i];
            }
        }
        // the sums go through local memory (the stages are free now): TileStores (split k's adds as vector reductions,
        // a quarter of the atomics, which at batch 64 had cost about as much as the GEMM)
        ctx.copyAsyncWait(0);
        ctx.localBarrier();
        int g = lane / 4;
        int t = lane % 4;
        for (int mi = 0; mi < mTiles; mi++) {
            for (int ni = 0; ni < 4; ni++) {
                for (int h = 0; h < 2; h++) {
                    int at = (16 * mi + g + 8 * h) * OUT_ROW + 32 * warp + 8 * ni + 2 * t;
                    tile[at] = Float.floatToRawIntBits(acc[4 * (4 * mi + ni) + 2 * h]);
                    tile[at + 1] = Float.floatToRawIntBits(acc[4 * (4 * mi + ni) + 2 * h + 1]);
                }
            }
        }
        ctx.localBarrier();
        boolean withBias = hasBias && split == 0;
        for (int i = ctx.localIdx; i < 16 * mTiles * COLUMNS / 4; i += LOCAL) {
            int r = i / (COLUMNS / 4);
            int c = 4 * (i % (COLUMNS / 4));
            TileStores.storeQuad(ctx, out, tile, r * OUT_ROW + c, sums, int8, scales, withBias, bias, row0 + r, tileCol0 + c, m, n, kSplits, -1);
        }
    }

    /** Starts the copies of one step's activations (rows row0.. of the permuted a, 128 columns from k0) into a stage. */
    private static void loadActivations(KernelContext ctx, int[] tile, int stage, NativeArray a, int m, int k, int row0, int rows, int k0) {
        for (int i = ctx.localIdx; i < rows * 16; i += LOCAL) {
            int r = i / 16;
            int c = i % 16;
            int row = Math.min(row0 + r, m - 1);
            ctx.copyAsync(tile, stage + r * ROW + 4 * c, a, row * k + k0 + 8 * c);
        }
    }

    /**
     * Loads this lane's codes of one step for the warp's four n8 tiles: int8, 16 codes of each run of 64 (two
     * 16-byte loads a tile, {@code codes[8 ni..]}); int4, 4 words of the block's codes ({@code codes[4 ni..]})
     * (one 16-byte load where {@code wide}) and the block's scale and negated offset as bf16 pairs into
     * {@code terms[2 ni], terms[2 ni + 1]}.
     */
    private static void loadCodes(ByteArray w, boolean int8, int format, int[] codes, int[] terms, int[] word, int col0, int lane, int n,
            int k, int rowBytes, int step, boolean wide) {
        int g = lane / 4;
        int t = lane % 4;
        for (int ni = 0; ni < 4; ni++) {
            int row = Math.min(col0 + 8 * ni + g, n - 1);
            if (int8) {
                int at = row * rowBytes + step * STEP + 16 * t;
                w.getWords(at, codes, 8 * ni, 4);
                w.getWords(at + 64, codes, 8 * ni + 4, 4);
            } else {
                int at = QuantBlocks.int4ScaleAt(format, row * rowBytes, k / STEP, step);
                int codesAt = QuantBlocks.int4CodesAt(row * rowBytes, step) + 16 * t;
                if (wide) {
                    w.getWords(codesAt, codes, 4 * ni, 4);
                } else {
                    w.getWords(codesAt, codes, 4 * ni, 1);
                    w.getWords(codesAt + 4, codes, 4 * ni + 1, 1);
                    w.getWords(codesAt + 8, codes, 4 * ni + 2, 1);
                    w.getWords(codesAt + 12, codes, 4 * ni + 3, 1);
                }
                float scale = QuantBlocks.int4Word(w, at, word);
                float offset = format == QuantBlocks.INT4_ZP ? QuantBlocks.int4Word(w, at + 4, word) : 0f;
                terms[2 * ni] = KMath.packBf16x2(scale, scale);
                terms[2 * ni + 1] = KMath.packBf16x2(-offset, -offset);
            }
        }
    }

    // ---- launchers -------------------------------------------------------------------

    /**
     * Whether this GEMM reads a lane's 16 code bytes of a block in one load where the
     * rows are 16-byte aligned: the tuning {@code matmul.int4_wide_codes} (1: on; on for CUDA: an H100's 16- and 64-row
     * products 2-10 % faster, session 30). {@link Int4TensorGemv} keeps its word loads: lane t's 16 bytes would be columns
     * 16t.. of each row, and its activation loads, spread the same way, took 8-11 % longer at 8 rows.
     */
    private static boolean wideCodes(Device device) {
        return Tuning.get(device, "matmul.int4_wide_codes", 0) == 1;
    }

    /** The permuted activations of each device. */
    private static final Map<Device, GrowingScratch> SCRATCH = new ConcurrentHashMap<>();

    /**
     * Whether a matmul of m rows over int8 or int4 weights with rows of k goes this way on {@code device}: from
     * two rows up to the device's tuning {@code matmul.quant_mma_max_m} (0: never), k a multiple of 128, with bf16
     * tensor cores, never under {@link BatchInvariance} (split-k adds in any order). One row keeps the GEMV.
     */
    public static boolean applies(Device device, int m, int k) {
        return m >= 2 && m <= Tuning.get(device, "matmul.quant_mma_max_m", 0) && k % STEP == 0
                && device.supports(Feature.MMA_BF16) && !BatchInvariance.enabled();
    }

    /** out[m, n] = a · (w (int8 rows) * scales)ᵀ + bias (or null). */
    public static void launchInt8(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, DeviceBuffer bias,
            int m, int n, int k) {
        int splits = splits(device, m, n, k);
        DeviceBuffer permuted = permuted(device, a, m, k, out, splits > 1 ? m * n : 0);
        device.launch(kernel(true, m, false), grid(m, n, splits), out, permuted, w, scales, bias == null ? out : bias, bias != null, m, n, k, splits);
    }

    /** out[m, n] = a · wᵀ + bias (or null), w rows of {@link QuantFormat#INT4} or {@link QuantFormat#INT4_ZP} blocks. */
    public static void launchInt4(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, QuantFormat format, DeviceBuffer bias,
            int m, int n, int k) {
        if (!QuantMatmul.isInt4(format.code())) {
            throw new IllegalArgumentException("the int4 tensor-core GEMM takes INT4 or INT4_ZP blocks, not " + format);
        }
        int splits = splits(device, m, n, k);
        DeviceBuffer permuted = permuted(device, a, m, k, out, splits > 1 ? m * n : 0);
        boolean wide = wideCodes(device) && QuantBlocks.int4RowsAligned(format.code(), k / STEP);
        device.launch(kernel(false, m, wide), grid(m, n, splits), out, permuted, w, format.code(), bias == null ? out : bias, bias != null, m, n, k,
                splits);
    }

    /** The activations rounded to bf16 in fragment order, in the device's scratch buffer; the first {@code zeros} of out set to 0. */
    private static DeviceBuffer permuted(Device device, DeviceBuffer a, int m, int k, DeviceBuffer out, int zeros) {
        DeviceBuffer permuted = SCRATCH.computeIfAbsent(device, d -> new GrowingScratch(d::allocate)).atLeast(DType.BF16, (long) m * k);
        device.launch(PERMUTE, permuteGrid(m, k, zeros), permuted, a, out, m, k, zeros);
        return permuted;
    }

    /** The grid of {@link #permute}. */
    public static Grid permuteGrid(int m, int k, int zeros) {
        return Grid.of(Math.max((long) m * (k / 8), (zeros + 3) / 4));
    }

    private static KernelRef[] rowTileKernels(String name) {
        KernelRef kernel = KernelRef.of(QuantTensorGemm.class, name);
        return new KernelRef[] {kernel.with("mTiles", 1), kernel.with("mTiles", 2), kernel.with("mTiles", 4)};
    }

    /**
     * The kernel for int8 rows or int4 blocks times m rows: groups of the fewest rows (16, 32, 64) that cover m, 64 beyond
     * (its ref binds mTiles, the last parameter, and int4's {@code wide} after it: a launch leaves them out).
     */
    static KernelRef kernel(boolean int8, int m, boolean wide) {
        return int8 ? INT8[rowTiles(m)] : INT4[rowTiles(m)].with("wide", wide);
    }

    /** 0, 1, 2 for groups of 16, 32, 64 rows. */
    private static int rowTiles(int m) {
        return m <= 16 ? 0 : m <= 32 ? 1 : 2;
    }

    private static int groupRows(int m) {
        return 16 << rowTiles(m);
    }

    /** A group of {@link #LOCAL} per (rows, 128 columns, split of k). */
    public static Grid grid(int m, int n, int kSplits) {
        return Grid.groups(tiles(m, n) * kSplits, LOCAL);
    }

    private static long tiles(int m, int n) {
        return (long) ((m + groupRows(m) - 1) / groupRows(m)) * ((n + COLUMNS - 1) / COLUMNS);
    }

    /**
     * Splits of k: as many as bring the launch up to the tuning value {@code matmul.tc_groups} work-groups, each at
     * least four steps (a 4096 x 4096 matrix at batch 64 has 32 groups of columns). The splits add into out.
     */
    private static int splits(Device device, int m, int n, int k) {
        return Matmul.splitsToFill(device, tiles(m, n), k / STEP / 4);
    }
}
