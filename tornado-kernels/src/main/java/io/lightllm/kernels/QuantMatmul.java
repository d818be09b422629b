package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
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
            wTile[ty * Matmul.TILE_STRIDE + tx] = wRow < n && kk < k ? QuantBlocks.rowWeight(w, format, wRow * rowBytes, kk) : 0f;
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
        if (col < n) {
            int size = QuantBlocks.blockSize(format);
            int bytes = QuantBlocks.blockBytes(format);
            int rowAt = col * QuantBlocks.rowBlocks(format, k) * bytes;
            for (int u = lane * QuantBlocks.UNIT; u < k; u += team * QuantBlocks.UNIT) {
                int at = rowAt + u / size * bytes;
                int j0 = u % size;
                float s = QuantBlocks.scale(w, format, at, j0);
                float o = QuantBlocks.offset(w, format, at, j0);
                int end = Math.min(QuantBlocks.UNIT, k - u); // a run short of UNIT ends an int4 row of a partial group
                for (int j = 0; j < end; j++) {
                    float wv = s * QuantBlocks.code(w, format, at, j0 + j) - o;
                    for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
                        if (r < rows) {
                            acc[r] += a.get((row0 + r) * k + u + j) * wv;
                        }
                    }
                }
            }
        }
        Matmul.gemvReduce(ctx, partial, acc, rows, team);
        Matmul.gemvStore(ctx, partial, out, bias, false, bias, hasBias, m, n, columns);
    }

    /**
     * out[m, n] (f32) = a[m, k] (f32) · w[n, k]ᵀ + bias[n] (or null), w packed in {@code format}
     * (n rows of {@link QuantFormat#rowBytes}). Decode-sized m runs the GEMV kernel, larger m the tiled one.
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
        if (Matmul.useGemv(device, m)) {
            device.launch(GEMV, Matmul.gemvGrid(device, m, n), out, a, w, format.code(), b, bias != null, m, n, k, Matmul.gemvColumns(device, m));
        } else {
            device.launch(TILED, Matmul.tiledGrid(m, n, Tuning.get(device, "matmul.tile", 16)), out, a, w, format.code(), b, bias != null, m, n, k);
        }
    }
}
