package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Int8 rows ({@link Matmul#quantizeInt8}: codes [n, k], one f32 scale a row) times a decode batch of up to
 * {@link #MAX_M} rows on tensor cores with no launch before it: {@link Int4TensorGemv}'s shape for int8
 * codes. A warp's 16 weight rows are the m16n8k16 MMA's A operand, the batch rows its B. Lane (g, t) loads 16
 * consecutive codes of rows g and g + 8 of each run of 64 columns (columns 16t..16t+15: one 16-byte load a row); its
 * word j goes to k-step j of the run, bytes 0-1 as fragment columns 2t, 2t+1 and bytes 2-3 as 2t+8, 2t+9 (exact in
 * bf16: {@link KMath#int8x2ToBf16x2}), and its B registers are batch row g's activations at the same four columns (a
 * 16-byte load, the run's four loaded at once). Each row's scale multiplies its sum once, at the end. A tile's runs are
 * shared by {@code parts} warps of a group in turn and added after one barrier (as {@link Int4TensorGemv}, whose
 * launch sizing and reduction this reuses).
 */
public final class Int8TensorGemv {
    public static final KernelRef GEMV = KernelRef.of(Int8TensorGemv.class, "gemv");
    /** Columns of a run: four k-steps of 16. */
    static final int RUN = 64;
    /** Batch rows at most: one B fragment. */
    public static final int MAX_M = Int4TensorGemv.COLUMNS;

    private Int8TensorGemv() {
    }

    /**
     * out[r, row] = scales[row] (a[r, :] · codes[row, :]) (+ bias[row]) for r &lt; m &lt;= 8, k a multiple of 64; a group of
     * max(8, parts) warps per {@code warps / parts} tiles of 16 rows ({@link Int4TensorGemv#grid}).
     */
    public static void gemv(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int m, int n, int k, int parts) {
        float[] partial = ctx.allocateFloatLocalArray(Int4TensorGemv.MAX_PARTS * Int4TensorGemv.TILE * Int4TensorGemv.COLUMNS);
        float[] acc = new float[4];
        int[] codes = new int[8];
        int[] nextCodes = new int[8];
        int[] af = new int[4];
        int[] bf = new int[2];
        float[] x = new float[16];
        int warp = ctx.localIdx / KernelContext.WARP_SIZE;
        int tiles = ctx.localGroupSizeX / KernelContext.WARP_SIZE / parts;
        int lane = ctx.laneId();
        int g = lane / 4;
        int t = lane % 4;
        int row0 = (ctx.groupIdx * tiles + warp / parts) * Int4TensorGemv.TILE + g;
        int rowA = Math.min(row0, n - 1);
        int rowB = Math.min(row0 + 8, n - 1);
        int part = warp % parts;
        int runs = k / RUN;
        int trips = (runs + parts - 1) / parts;
        for (int i = 0; i < 4; i++) {
            acc[i] = 0f;
        }
        // every warp of the group runs the same trips (OpenCL's MMA meets the whole group); a trip past the last run reads
        // the last one and adds nothing (its activations are taken as zeros)
        loadRun(w, codes, rowA, rowB, k, Math.min(part, runs - 1), t);
        for (int trip = 0; trip < trips; trip++) {
            int run = Math.min(part + trip * parts, runs - 1);
            boolean valid = part + trip * parts < runs;
            if (trip + 1 < trips) {
                loadRun(w, nextCodes, rowA, rowB, k, Math.min(part + (trip + 1) * parts, runs - 1), t);
            }
            if (valid && g < m) {
                for (int j = 0; j < 4; j++) {
                    a.getFloats(g * k + run * RUN + 16 * t + 4 * j, x, 4 * j, 4);
                }
            }
            for (int j = 0; j < 4; j++) {
                bf[0] = valid && g < m ? KMath.packBf16x2(x[4 * j], x[4 * j + 1]) : 0;
                bf[1] = valid && g < m ? KMath.packBf16x2(x[4 * j + 2], x[4 * j + 3]) : 0;
                af[0] = KMath.int8x2ToBf16x2(codes[j], 0);
                af[1] = KMath.int8x2ToBf16x2(codes[4 + j], 0);
                af[2] = KMath.int8x2ToBf16x2(codes[j], 1);
                af[3] = KMath.int8x2ToBf16x2(codes[4 + j], 1);
                ctx.mmaBf16(acc, 0, af, 0, bf, 0);
            }
            for (int i = 0; i < 8; i++) {
                codes[i] = nextCodes[i];
            }
        }
        Int4TensorGemv.storePartial(ctx, partial, 0, acc, 0, warp, 0, Int4TensorGemv.COLUMNS);
        ctx.localBarrier();
        for (int i = ctx.localIdx; i < tiles * Int4TensorGemv.TILE * m; i += ctx.localGroupSizeX) {
            int tile = i / (Int4TensorGemv.TILE * m);
            int r = i / m % Int4TensorGemv.TILE;
            int b = i % m;
            int row = (ctx.groupIdx * tiles + tile) * Int4TensorGemv.TILE + r;
            if (row < n) {
                float sum = Int4TensorGemv.partSum(partial, 0, tile, parts, r, b, Int4TensorGemv.COLUMNS);
                out.set(b * n + row, sum * scales.get(row) + (hasBias ? bias.get(row) : 0f));
            }
        }
    }

    /** Codes 16t..16t+15 of a run of rows A (codes[0..3]) and B (codes[4..7]): one 16-byte load each. */
    private static void loadRun(ByteArray w, int[] codes, int rowA, int rowB, int k, int run, int t) {
        w.getWords(rowA * k + run * RUN + 16 * t, codes, 0, 4);
        w.getWords(rowB * k + run * RUN + 16 * t, codes, 4, 4);
    }

    /**
     * Whether an int8 matmul of m rows over rows of k goes this way on {@code device}: m from the tuning
     * {@code matmul.int8_mma_gemv_min_m} (default 1) up to {@code matmul.int8_mma_gemv_max_m} (0: never; at most 8), k a
     * multiple of 64, bf16 tensor cores, not under {@link BatchInvariance}.
     */
    public static boolean applies(Device device, int m, int k) {
        return m >= Math.max(1, Tuning.get(device, "matmul.int8_mma_gemv_min_m", 1))
                && m <= Math.min(MAX_M, Tuning.get(device, "matmul.int8_mma_gemv_max_m", 0)) && k % RUN == 0
                && device.supports(Feature.MMA_BF16) && !BatchInvariance.enabled();
    }

    /** out[m, n] = a · (w (int8 rows) * scales)ᵀ + bias (or null); m within {@link #applies}. */
    public static void launch(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, DeviceBuffer bias,
            int m, int n, int k) {
        if (!applies(device, m, k)) {
            throw new IllegalArgumentException("no int8 tensor-core GEMV for " + m + " rows of " + k + " here");
        }
        int tiles = (n + Int4TensorGemv.TILE - 1) / Int4TensorGemv.TILE;
        int parts = Int4TensorGemv.parts(device, tiles, k / RUN);
        device.launch(GEMV, Int4TensorGemv.grid(tiles, parts), out, a, w, scales, bias == null ? out : bias, bias != null, m, n, k, parts);
    }
}
