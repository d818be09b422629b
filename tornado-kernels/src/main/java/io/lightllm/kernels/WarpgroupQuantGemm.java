package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Decode batches over int8 rows (W8A16: per-row scales, {@link Matmul#quantizeInt8}) on Hopper's warpgroup MMA:
 * {@code out[m, n] = a[m, k] · (codes[n, k] * scales[n])ᵀ (+ bias)} for m up to 64. A small launch ({@link #prepare})
 * rounds the activations to bf16 once (and zeroes out where k is split); then a work-group is one warpgroup and 64 rows
 * x 128 columns of out (one m64n128k16 MMA per 16 of k), k in steps of 64, optionally split over groups (the splits add
 * into out). Asynchronous copies run {@link #AHEAD} steps ahead: the bf16 activations straight into their 128-byte-swizzled
 * tile, the raw codes into a staging tile; each work-item widens the codes it copied to bf16 (exactly, {@link KMath#int8x2ToBf16x2})
 * into the swizzled weight tile the MMA reads; each column's scale multiplies its sum once in the epilogue. The first form
 * (codes and f32 activations loaded one step ahead into registers, each 128-column tile re-reading the f32 activations)
 * was slower than {@link QuantTensorGemm} (docs/quantization.md).
 */
public final class WarpgroupQuantGemm {
    static final int TILE_M = 64;
    static final int TILE_N = 128;
    static final int STEP = 64;
    static final int LOCAL = KernelContext.WARPGROUP_SIZE;
    /** Stages of the copied tiles (activations, raw codes) and steps their copies run ahead. */
    static final int STAGES = 3;
    static final int AHEAD = STAGES - 1;
    /** Ints of a stage: 64 rows of 64 bf16 activations, 128 rows of 64 raw codes, 128 rows of 64 bf16 weights. */
    private static final int A_STAGE = TILE_M * 32;
    private static final int RAW_STAGE = TILE_N * 16;
    private static final int W_STAGE = TILE_N * 32;
    /** Floats between rows of the output tile staged in local memory (128 and 4 of padding). */
    private static final int OUT_ROW = TILE_N + 4;
    /** The weight tiles (two stages), which the epilogue reuses for the output tile: the larger (a constant expression). */
    private static final int W_INTS = 2 * W_STAGE > TILE_M * OUT_ROW ? 2 * W_STAGE : TILE_M * OUT_ROW;
    /** 16-byte chunks an item copies a step: of bf16 activations (8 values) and of raw codes (16). */
    private static final int A_CHUNKS = TILE_M * (STEP / 8) / LOCAL;
    private static final int W_RUNS = TILE_N * (STEP / 16) / LOCAL;

    public static final KernelRef INT8 = KernelRef.of(WarpgroupQuantGemm.class, "int8Rows");
    public static final KernelRef PREPARE = KernelRef.of(WarpgroupQuantGemm.class, "prepare");

    /** The bf16 activations of each device. */
    private static final java.util.Map<Device, io.lightllm.tornado.runtime.GrowingScratch> SCRATCH = new java.util.concurrent.ConcurrentHashMap<>();

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

    /** out[m, n] = a[m, k] (f32 or bf16) · (w[n, k] int8 * scales[n])ᵀ + bias (or null). */
    public static void launchInt8(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, DeviceBuffer bias,
            int m, int n, int k) {
        int tiles = (n + TILE_N - 1) / TILE_N;
        int splits = Matmul.splitsToFill(device, tiles, k / STEP / 4);
        int zeros = splits > 1 ? m * n : 0;
        DeviceBuffer a16 = SCRATCH.computeIfAbsent(device, d -> new io.lightllm.tornado.runtime.GrowingScratch(d::allocate)).atLeast(DType.BF16,
                (long) m * k);
        device.launch(PREPARE, Grid.of(Math.max((long) m * (k / 8), (zeros + 3) / 4)), a16, a, out, m, k, zeros);
        device.launch(INT8, Grid.groups((long) tiles * splits, LOCAL), out, a16, w, scales, bias == null ? out : bias, bias != null, m, n, k, splits);
    }

    /**
     * out[r, :] = a[r, :] (f32 or bf16) rounded to bf16, eight values a work-item; the first {@code zeros} elements of
     * {@code zeroed} set to 0 on the way (four a work-item), for split k to add into: one launch for both.
     */
    public static void prepare(NativeArray out, NativeArray a, FloatArray zeroed, int m, int k, int zeros) {
        float[] x = new float[8];
        for (@Parallel int item = 0; item < Math.max(m * (k / 8), (zeros + 3) / 4); item++) {
            if (item < m * (k / 8)) {
                a.getFloats(8 * item, x, 0, 8);
                out.setFloats(8 * item, x, 0, 8);
            }
            for (int j = 0; j < 4; j++) {
                if (4 * item + j < zeros) {
                    zeroed.set(4 * item + j, 0f);
                }
            }
        }
    }

    public static void int8Rows(KernelContext ctx, FloatArray out, NativeArray a, ByteArray w, FloatArray scales, FloatArray bias, boolean hasBias,
            int m, int n, int k, int kSplits) {
        int[] aTile = ctx.allocateIntLocalArray(STAGES * A_STAGE);
        int[] raw = ctx.allocateIntLocalArray(STAGES * RAW_STAGE);
        int[] wTile = ctx.allocateIntLocalArray(W_INTS);
        float[] acc = new float[TILE_N / 2];
        int[] codes = new int[4];
        int split = ctx.groupIdx % kSplits;
        int col0 = (ctx.groupIdx / kSplits) * TILE_N;
        int allSteps = k / STEP;
        int share = (allSteps + kSplits - 1) / kSplits;
        int firstStep = split * share;
        int steps = Math.max(0, Math.min(allSteps, firstStep + share) - firstStep);
        // activations: item i copies chunk i % 8 (8 values) of rows i / 8, i / 8 + 16, ..: eight items read a row's 128
        // bytes; codes: run i % 4 (16 codes) of rows i / 4, i / 4 + 32, ..: four items read a row's 64 bytes, and widen
        // what they copied. Rows past m or n read the last row: they only feed outputs that are not stored
        int aChunk = ctx.localIdx % 8;
        int aRow0 = ctx.localIdx / 8;
        int wRun = ctx.localIdx % 4;
        int wRow0 = ctx.localIdx / 4;
        int aTo = WarpgroupMatmul.swizzle128(aRow0 * 32 + 4 * aChunk);
        for (int p = 0; p < AHEAD; p++) {
            if (p < steps) {
                copyStep(ctx, aTile, raw, p, a, w, m, n, k, (firstStep + p) * STEP, aRow0, aChunk, aTo, col0, wRow0, wRun);
            }
            ctx.copyAsyncCommit();
        }
        for (int step = 0; step < steps; step++) {
            int stage = step % STAGES;
            ctx.copyAsyncWait(AHEAD - 1); // this item's copies of the step are in (its own: no barrier needed to widen them)
            widenCodes(raw, wTile, stage, (step % 2) * W_STAGE, codes, wRow0, wRun);
            ctx.warpgroupFenceLocal();
            ctx.localBarrier(); // everyone's activations and weights are in; the last step's MMAs were waited for
            int ahead = step + AHEAD;
            if (ahead < steps) {
                copyStep(ctx, aTile, raw, ahead % STAGES, a, w, m, n, k, (firstStep + ahead) * STEP, aRow0, aChunk, aTo, col0, wRow0, wRun);
            }
            ctx.copyAsyncCommit();
            ctx.warpgroupArrive(acc);
            for (int s = 0; s < STEP / 16; s++) {
                ctx.warpgroupMmaBf16(acc, aTile, stage * A_STAGE + 8 * s, 256, wTile, (step % 2) * W_STAGE + 8 * s, 256, TILE_N);
            }
            ctx.warpgroupCommit();
            ctx.warpgroupWait(acc, 0);
        }
        store(ctx, wTile, acc, out, scales, bias, hasBias && split == 0, m, col0, n, kSplits);
    }

    /** This item's copies of the step from k0: bf16 activations into their swizzled tile, raw codes into the staging tile. */
    private static void copyStep(KernelContext ctx, int[] aTile, int[] raw, int stage, NativeArray a, ByteArray w, int m, int n, int k, int k0, int aRow0,
            int aChunk, int aTo, int col0, int wRow0, int wRun) {
        for (int j = 0; j < A_CHUNKS; j++) {
            int row = Math.min(aRow0 + 16 * j, m - 1);
            ctx.copyAsync(aTile, stage * A_STAGE + aTo + 16 * 32 * j, a, row * k + k0 + 8 * aChunk);
        }
        for (int j = 0; j < W_RUNS; j++) {
            int row = Math.min(col0 + wRow0 + 32 * j, n - 1);
            ctx.copyAsync(raw, stage * RAW_STAGE + (wRow0 + 32 * j) * 16 + 4 * wRun, w, row * k + k0 + 16 * wRun);
        }
    }

    /** The codes this item copied for stage {@code stage}, as bf16 (exact) into the weight tile at {@code at}, in the 128-byte swizzle. */
    private static void widenCodes(int[] raw, int[] wTile, int stage, int at, int[] codes, int wRow0, int wRun) {
        for (int j = 0; j < W_RUNS; j++) {
            int from = stage * RAW_STAGE + (wRow0 + 32 * j) * 16 + 4 * wRun;
            for (int e = 0; e < 4; e++) {
                codes[e] = raw[from + e];
            }
            // 16 codes: chunks 2 wRun and 2 wRun + 1 (8 values each) of the row
            int row = (wRow0 + 32 * j) * 32;
            int lo = at + WarpgroupMatmul.swizzle128(row + 8 * wRun);
            int hi = at + WarpgroupMatmul.swizzle128(row + 8 * wRun + 4);
            for (int e = 0; e < 2; e++) {
                wTile[lo + 2 * e] = KMath.int8x2ToBf16x2(codes[e], 0);
                wTile[lo + 2 * e + 1] = KMath.int8x2ToBf16x2(codes[e], 1);
                wTile[hi + 2 * e] = KMath.int8x2ToBf16x2(codes[2 + e], 0);
                wTile[hi + 2 * e + 1] = KMath.int8x2ToBf16x2(codes[2 + e], 1);
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
        TileStores.stageWarpgroupColumns(tile, acc, 0, warp, lane, OUT_ROW);
        TileStores.stageWarpgroupColumns(tile, acc, 8, warp, lane, OUT_ROW);
        ctx.localBarrier();
        for (int i = ctx.localIdx; i < TILE_M * TILE_N / 4; i += LOCAL) {
            int r = i / (TILE_N / 4);
            int c = 4 * (i % (TILE_N / 4));
            TileStores.storeQuad(ctx, out, tile, r * OUT_ROW + c, sums, true, scales, withBias, bias, r, col0 + c, m, n, kSplits, -1);
        }
    }
}
