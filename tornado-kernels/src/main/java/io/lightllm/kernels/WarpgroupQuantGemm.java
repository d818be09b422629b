package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Decode batches over int8 rows (W8A16: per-row scales, {@link Matmul#quantizeInt8}) on Hopper's warpgroup MMA:
 * {@code out[m, n] = a[m, k] · (codes[n, k] * scales[n])ᵀ (+ bias)} for m up to 64. A work-group is one warpgroup and
 * 64 rows x 128 columns of out (one m64n128k16 MMA per 16 of k); k walks in steps of 64, optionally split over groups
 * (the splits add into a zeroed out). Each step's codes and f32 activations are loaded into registers a step ahead,
 * then widened to bf16 (codes exactly, by {@link KMath#int8x2ToBf16x2}; activations rounded, as cuBLAS's bf16 serving
 * does) and stored into 128-byte-swizzled local tiles, where the MMA reads them; each column's scale multiplies its sum
 * once in the epilogue. With twice {@code mma.sync}'s rate the tensor cores leave the batch-64 GEMM to the weights'
 * bytes, which {@link QuantTensorGemm}'s dequantising in registers did not (there int8 at batch 64 ran at bf16's speed).
 */
public final class WarpgroupQuantGemm {
    static final int TILE_M = 64;
    static final int TILE_N = 128;
    static final int STEP = 64;
    static final int LOCAL = KernelContext.WARPGROUP_SIZE;
    /** Ints of a 64-row and a 128-row stage: rows of 64 bf16 (32 ints). */
    private static final int A_STAGE = TILE_M * 32;
    private static final int W_STAGE = TILE_N * 32;
    /** Floats between rows of the output tile staged in local memory (128 and 4 of padding). */
    private static final int OUT_ROW = TILE_N + 4;
    /** The W stages, which the epilogue reuses for the output tile: the larger of the two (a constant expression). */
    private static final int W_INTS = 2 * W_STAGE > TILE_M * OUT_ROW ? 2 * W_STAGE : TILE_M * OUT_ROW;
    /** 16-byte chunks of activations an item converts a step (two 4-float loads each) and 16-byte runs of codes it loads. */
    private static final int A_CHUNKS = TILE_M * (STEP / 8) / LOCAL;
    private static final int W_RUNS = TILE_N * (STEP / 16) / LOCAL;

    public static final KernelRef INT8 = KernelRef.of(WarpgroupQuantGemm.class, "int8Rows");

    private WarpgroupQuantGemm() {
    }

    /**
     * Whether int8 decode batches take it here: 2 to 64 rows, k a multiple of 64, the tuning {@code matmul.quant_warpgroup} 1,
     * the device with warpgroup MMA; never under {@link BatchInvariance} (split k adds in any order).
     */
    public static boolean applies(Device device, int m, int k) {
        return m >= 2 && m <= TILE_M && k % STEP == 0 && Tuning.get(device, "matmul.quant_warpgroup", 0) == 1
                && device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA) && !BatchInvariance.enabled();
    }

    /** out[m, n] = a[m, k] (f32) · (w[n, k] int8 * scales[n])ᵀ + bias (or null). */
    public static void launchInt8(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, DeviceBuffer bias,
            int m, int n, int k) {
        int tiles = (n + TILE_N - 1) / TILE_N;
        int splits = Matmul.splitsToFill(device, tiles, k / STEP / 4);
        if (splits > 1) {
            Elementwise.launchFill(device, out, 0f, m * n);
        }
        device.launch(INT8, Grid.groups((long) tiles * splits, LOCAL), out, a, w, scales, bias == null ? out : bias, bias != null, m, n, k, splits);
    }

    public static void int8Rows(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias, boolean hasBias,
            int m, int n, int k, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(2 * A_STAGE);
        int[] wTile = ctx.allocateIntLocalArray(W_INTS);
        float[] acc = new float[TILE_N / 2];
        float[] x = new float[A_CHUNKS * 8];
        int[] codes = new int[W_RUNS * 4];
        int split = ctx.groupIdx % kSplits;
        int col0 = (ctx.groupIdx / kSplits) * TILE_N;
        int allSteps = k / STEP;
        int share = (allSteps + kSplits - 1) / kSplits;
        int firstStep = split * share;
        int steps = Math.max(0, Math.min(allSteps, firstStep + share) - firstStep);
        // activations: item i converts chunk i % 8 (8 values) of rows i / 8, i / 8 + 16, ..: eight items read a row's 256
        // bytes; codes: item i loads run i % 4 (16 codes) of rows i / 4, i / 4 + 32, ..: four items read a row's 64 bytes.
        // Rows past m or n read the last row: they only feed outputs that are not stored
        int aChunk = ctx.localIdx % 8;
        int aRow0 = ctx.localIdx / 8;
        int wRun = ctx.localIdx % 4;
        int wRow0 = ctx.localIdx / 4;
        if (steps > 0) {
            loadStep(a, w, x, codes, m, n, k, firstStep * STEP, aRow0, aChunk, col0, wRow0, wRun);
        }
        for (int step = 0; step < steps; step++) {
            int stage = step % 2;
            storeStep(aTile, wTile, stage, x, codes, aRow0, aChunk, wRow0, wRun);
            ctx.warpgroupFenceLocal();
            ctx.localBarrier(); // the stage is in; the MMAs that read it two steps ago were waited for
            if (step + 1 < steps) {
                loadStep(a, w, x, codes, m, n, k, (firstStep + step + 1) * STEP, aRow0, aChunk, col0, wRow0, wRun);
            }
            ctx.warpgroupArrive(acc);
            for (int s = 0; s < STEP / 16; s++) {
                ctx.warpgroupMmaBf16(acc, aTile, stage * A_STAGE + 8 * s, 256, wTile, stage * W_STAGE + 8 * s, 256, TILE_N);
            }
            ctx.warpgroupCommit();
            ctx.warpgroupWait(acc, 0);
        }
        store(ctx, wTile, acc, out, scales, bias, hasBias && split == 0, m, col0, n, kSplits);
    }

    /** This item's activations (f32) and codes of the step from k0 into registers. */
    private static void loadStep(FloatArray a, ByteArray w, float[] x, int[] codes, int m, int n, int k, int k0, int aRow0, int aChunk, int col0,
            int wRow0, int wRun) {
        for (int j = 0; j < A_CHUNKS; j++) {
            int row = Math.min(aRow0 + 16 * j, m - 1);
            a.getFloats(row * k + k0 + 8 * aChunk, x, 8 * j, 4);
            a.getFloats(row * k + k0 + 8 * aChunk + 4, x, 8 * j + 4, 4);
        }
        for (int j = 0; j < W_RUNS; j++) {
            int row = Math.min(col0 + wRow0 + 32 * j, n - 1);
            w.getWords(row * k + k0 + 16 * wRun, codes, 4 * j, 4);
        }
    }

    /** The registers of {@link #loadStep} as bf16 into stage {@code stage} of the tiles, in the 128-byte swizzle. */
    private static void storeStep(int[] aTile, int[] wTile, int stage, float[] x, int[] codes, int aRow0, int aChunk, int wRow0, int wRun) {
        for (int j = 0; j < A_CHUNKS; j++) {
            int to = stage * A_STAGE + WarpgroupMatmul.swizzle128((aRow0 + 16 * j) * 32 + 4 * aChunk);
            for (int e = 0; e < 4; e++) {
                aTile[to + e] = KMath.packBf16x2(x[8 * j + 2 * e], x[8 * j + 2 * e + 1]);
            }
        }
        for (int j = 0; j < W_RUNS; j++) {
            // 16 codes: chunks 2 wRun and 2 wRun + 1 (8 values each) of the row
            int row = (wRow0 + 32 * j) * 32;
            int lo = stage * W_STAGE + WarpgroupMatmul.swizzle128(row + 8 * wRun);
            int hi = stage * W_STAGE + WarpgroupMatmul.swizzle128(row + 8 * wRun + 4);
            for (int e = 0; e < 2; e++) {
                wTile[lo + 2 * e] = KMath.int8x2ToBf16x2(codes[4 * j + e], 0);
                wTile[lo + 2 * e + 1] = KMath.int8x2ToBf16x2(codes[4 * j + e], 1);
                wTile[hi + 2 * e] = KMath.int8x2ToBf16x2(codes[4 * j + 2 + e], 0);
                wTile[hi + 2 * e + 1] = KMath.int8x2ToBf16x2(codes[4 * j + 2 + e], 1);
            }
        }
    }

    /**
     * The group's 64 x 128 sums, times each column's scale (plus the bias), into out through local memory (constant
     * accumulator indexes), four columns an item at a time ({@link TileStores#storeQuad}: stored, or added where k is split).
     */
    private static void store(KernelContext ctx, int[] tile, float[] acc, FloatArray out, FloatArray scales, FloatArray bias, boolean withBias,
            int m, int col0, int n, int kSplits) {
        float[] sums = new float[4];
        int lane = ctx.laneId();
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        ctx.localBarrier(); // the MMAs are done with the stages
        int at = (16 * warp + lane / 4) * OUT_ROW + 2 * (lane % 4);
        stageColumns(tile, acc, 0, at);
        stageColumns(tile, acc, 8, at);
        ctx.localBarrier();
        for (int i = ctx.localIdx; i < TILE_M * TILE_N / 4; i += LOCAL) {
            int r = i / (TILE_N / 4);
            int c = 4 * (i % (TILE_N / 4));
            TileStores.storeQuad(ctx, out, tile, r * OUT_ROW + c, sums, true, scales, withBias, bias, r, col0 + c, m, n, kSplits, -1);
        }
    }

    /** n8 blocks firstJ..firstJ + 7 of this item's accumulators (a constant range: constant indexes) into tile[at..] as float bits. */
    private static void stageColumns(int[] tile, float[] acc, int firstJ, int at) {
        for (int j = firstJ; j < firstJ + 8; j++) {
            for (int e = 0; e < 4; e++) {
                tile[at + 8 * OUT_ROW * (e / 2) + 8 * j + e % 2] = Float.floatToRawIntBits(acc[4 * j + e]);
            }
        }
    }
}
