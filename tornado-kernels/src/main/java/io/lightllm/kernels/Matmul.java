package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Linear layers: {@code out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias[n])}, with {@code w} in the
 * HF Linear layout [out_features, in_features]. Activations and results are f32; weights are
 * f32, f16 or bf16 (one kernel, specialised per dtype, widening in the kernel), or int8 with
 * one f32 scale per output row.
 *
 * <p>Two kernels per weight kind: a tiled kernel for prefill (many rows), and a GEMV kernel for
 * decode (few rows) that streams each weight row once; the GEMV takes the tiled kernel's
 * arguments and one more, the output columns per work-group.
 * {@link #launchMatmul} picks by {@code m}. Tensors must stay under 2^31 elements (int indexing).
 */
public final class Matmul {
    /** Largest tile edge of the tiled kernels (their local arrays hold two tiles, padded by one column). */
    public static final int MAX_TILE = 16;
    /** Largest work-group of the GEMV kernels (their local reduction array holds GEMV_ROWS x MAX_LOCAL). */
    public static final int MAX_LOCAL = 256;
    /** Activation rows one GEMV work-group computes; each work-item keeps this many private sums. */
    public static final int GEMV_ROWS = 8;

    /** Row stride of a local tile: one float of padding so column reads hit distinct banks. */
    static final int TILE_STRIDE = MAX_TILE + 1;

    public static final KernelRef MATMUL_TILED = KernelRef.of(Matmul.class, "matmulTiled");
    public static final KernelRef MATMUL_GEMV = KernelRef.of(Matmul.class, "matmulGemv");
    public static final KernelRef MATMUL_GEMV_GATED = KernelRef.of(Matmul.class, "matmulGemvGated");
    public static final KernelRef MATMUL_INT8_TILED = KernelRef.of(Matmul.class, "matmulInt8Tiled");
    public static final KernelRef MATMUL_INT8_GEMV = KernelRef.of(Matmul.class, "matmulInt8Gemv");
    public static final KernelRef MATMUL_INT8_GEMV_Q8 = KernelRef.of(Matmul.class, "matmulInt8GemvQ8");
    public static final KernelRef MATMUL_INT8_GEMV_GATED_Q8 = KernelRef.of(Matmul.class, "matmulInt8GemvGatedQ8");
    public static final KernelRef MATMUL_WARPGROUP_BF16 = KernelRef.of(WarpgroupMatmul.class, "matmulBf16");
    /**
     * The Java tensor-core GEMM (mma.sync): {@link TensorCoreMatmul#matmulHalves} bound to bf16 or f16 weights on 128 x 128
     * tiles, 128 x 256 ("wide") or with 64 of k a step ("deep"), and {@link TensorCoreMatmul#matmulInt8} on either tile. A
     * launch leaves the bound parameters out.
     */
    public static final KernelRef MATMUL_TC_BF16 = tensorCoreHalves(TensorCoreMatmul.TILE, TensorCoreMatmul.STEP, TensorCoreMatmul.STAGES, true);
    public static final KernelRef MATMUL_TC_F16 = tensorCoreHalves(TensorCoreMatmul.TILE, TensorCoreMatmul.STEP, TensorCoreMatmul.STAGES, false);
    public static final KernelRef MATMUL_TC_BF16_WIDE = tensorCoreHalves(TensorCoreMatmul.WIDE_TILE, TensorCoreMatmul.STEP, TensorCoreMatmul.STAGES,
            true);
    public static final KernelRef MATMUL_TC_F16_WIDE = tensorCoreHalves(TensorCoreMatmul.WIDE_TILE, TensorCoreMatmul.STEP, TensorCoreMatmul.STAGES,
            false);
    public static final KernelRef MATMUL_TC_BF16_DEEP = tensorCoreHalves(TensorCoreMatmul.TILE, TensorCoreMatmul.DEEP_STEP,
            TensorCoreMatmul.DEEP_STAGES, true);
    public static final KernelRef MATMUL_TC_F16_DEEP = tensorCoreHalves(TensorCoreMatmul.TILE, TensorCoreMatmul.DEEP_STEP,
            TensorCoreMatmul.DEEP_STAGES, false);
    public static final KernelRef MATMUL_TC_INT8 = KernelRef.of(TensorCoreMatmul.class, "matmulInt8").with("tileN", TensorCoreMatmul.TILE);
    public static final KernelRef MATMUL_TC_INT8_WIDE = KernelRef.of(TensorCoreMatmul.class, "matmulInt8").with("tileN", TensorCoreMatmul.WIDE_TILE);

    private Matmul() {
    }

    private static KernelRef tensorCoreHalves(int tileN, int depth, int stages, boolean bf16) {
        return KernelRef.of(TensorCoreMatmul.class, "matmulHalves").with("tileN", tileN).with("depth", depth).with("stages", stages)
                .with("bf16", bf16);
    }

    // ---- kernels ---------------------------------------------------------------------

    /**
     * One work-group per TILE x TILE block of {@code out}, TILE = the local size (square, at
     * most {@link #MAX_TILE}). Work-item (x, y) computes out[row = group y * TILE + y,
     * col = group x * TILE + x]; the group walks k in steps of TILE, staging a tile of
     * {@code a} rows and a tile of {@code w} rows in local memory. Edge tiles are padded with
     * zeros. {@code bias} is read only when {@code hasBias}.
     */
    public static void matmulTiled(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, FloatArray bias,
            boolean hasBias, int m, int n, int k) {
        float acc = tiledDot(ctx, a, w, m, n, k);
        int row = ctx.groupIdy * ctx.localGroupSizeX + ctx.localIdy;
        int col = ctx.groupIdx * ctx.localGroupSizeX + ctx.localIdx;
        if (row < m && col < n) {
            out.set(row * n + col, hasBias ? acc + bias.get(col) : acc);
        }
    }

    /**
     * The tiled kernels' shared part: this work-item's dot product of a's row and w's row (its
     * out[row, col]). {@code w} is read with getFloat, so an int8 array yields its codes.
     */
    static float tiledDot(KernelContext ctx, FloatArray a, NativeArray w, int m, int n, int k) {
        float[] aTile = ctx.allocateFloatLocalArray(MAX_TILE * TILE_STRIDE);
        float[] wTile = ctx.allocateFloatLocalArray(MAX_TILE * TILE_STRIDE);
        int tile = ctx.localGroupSizeX;
        int tx = ctx.localIdx;
        int ty = ctx.localIdy;
        int row = ctx.groupIdy * tile + ty;
        // the weight row this work-item stages: loads run along k, so they are contiguous in w
        int wRow = ctx.groupIdx * tile + ty;
        float acc = 0f;
        for (int k0 = 0; k0 < k; k0 += tile) {
            int kk = k0 + tx;
            aTile[ty * TILE_STRIDE + tx] = row < m && kk < k ? a.get(row * k + kk) : 0f;
            wTile[ty * TILE_STRIDE + tx] = wRow < n && kk < k ? w.getFloat(wRow * k + kk) : 0f;
            ctx.localBarrier();
            for (int j = 0; j < tile; j++) {
                acc += aTile[ty * TILE_STRIDE + j] * wTile[tx * TILE_STRIDE + j];
            }
            ctx.localBarrier();
        }
        return acc;
    }

    /**
     * One work-group per ({@code columns} output columns, block of {@link #GEMV_ROWS} rows): a
     * team of local size / columns items per column strides over k reading the weight row once,
     * each item keeping a private sum per row, and the team adds them up (see {@link #gemvSums}).
     * Local size: any power of two up to {@link #MAX_LOCAL}; columns: a power of two that divides it.
     */
    public static void matmulGemv(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, FloatArray bias,
            boolean hasBias, int m, int n, int k, int columns, int rowsPerTeam) {
        float[] partial = ctx.allocateFloatLocalArray(GEMV_ROWS * MAX_LOCAL);
        if (rowsPerTeam > 1) {
            floatRowSums(ctx, partial, a, w, n, k, columns, w, false);
        } else {
            gemvSums(ctx, partial, a, w, m, n, k, columns, w, false);
        }
        // no scales: bias stands in for them, unread (the epilogue after the branches: see matmulInt8Gemv)
        gemvEpilogue(ctx, partial, out, bias, false, bias, hasBias, m, n, columns, rowsPerTeam, false, k, 0f, false);
    }

    /**
     * The GEMV kernels' epilogue for teams of {@code rowsPerTeam} weight rows: {@link #gemvStoreRows}, or for one {@link #gemvStore}.
     * {@code normed} (batch 1, {@link FoldedGemv}): the sums are of the input times an RMSNorm's weight, and the team's
     * sum of squares of the input ({@link #NORM_SLOT}) gives the norm's 1 / rms over k; {@code adding}: out += the result.
     */
    static void gemvEpilogue(KernelContext ctx, float[] partial, FloatArray out, FloatArray scales, boolean scaled, FloatArray bias,
            boolean hasBias, int m, int n, int columns, int rowsPerTeam, boolean normed, int k, float eps, boolean adding) {
        float factor = normed ? normFactor(ctx, partial, columns, k, eps) : 1f;
        if (rowsPerTeam > 1) {
            gemvStoreRows(ctx, ctx.groupIdx, partial, out, scales, scaled, bias, hasBias, n, columns, GEMV_ROWS_PER_TEAM, factor, adding);
        } else {
            gemvStore(ctx, partial, out, scales, scaled, bias, hasBias, m, n, columns, factor, adding);
        }
    }

    /**
     * Accumulator slot of a batch-1 GEMV that folds an RMSNorm into its input ({@link FoldedGemv}): the sum of squares of
     * the input elements the item read. At m = 1 the row sums take slots 0 to {@link #GEMV_ROWS_PER_TEAM} - 1, never this.
     */
    static final int NORM_SLOT = GEMV_ROWS - 1;

    /**
     * The norm folded into a GEMV's input: x[from..from + 4) *= normW[at..] (the RMSNorm's weight, applied as the input is
     * read), returning the sum of their squares before it (the team adds these up into the norm's 1 / rms, {@link #normFactor}).
     */
    static float foldNorm(float[] x, int from, NativeArray normW, int at, float[] weights) {
        normW.getFloats(at, weights, 0, 4);
        float squares = 0f;
        for (int j = 0; j < 4; j++) {
            squares += x[from + j] * x[from + j];
            x[from + j] *= weights[j];
        }
        return squares;
    }

    /** {@link #foldNorm} over eight elements x[0..8) from normW[at..]. */
    static float foldNorm8(float[] x, NativeArray normW, int at, float[] weights) {
        return foldNorm(x, 0, normW, at, weights) + foldNorm(x, 4, normW, at + 4, weights);
    }

    /** 1 / rms of the GEMV's input row from its team's sum of squares (meaningful in the team's first item, which stores). */
    static float normFactor(KernelContext ctx, float[] partial, int columns, int k, float eps) {
        int team = ctx.localGroupSizeX / columns;
        int teamStart = ctx.localIdx / team * team;
        return KMath.rsqrt(partial[NORM_SLOT * ctx.localGroupSizeX + teamStart] / k + eps);
    }

    /**
     * Whether a gated MLP's [gate; up] projection of 16-bit or f32 rows over k inputs runs as one {@link #matmulGemvGated}
     * launch at batch 1 here: where the device's tuning {@code matmul.gemv_gated} is 1 (off by default: not measured on
     * a GPU yet) and k is a multiple of 8.
     */
    public static boolean gatedGemvApplies(Device device, int m, int k) {
        return m == 1 && k % 8 == 0 && Tuning.get(device, "matmul.gemv_gated", 0) == 1 && !BatchInvariance.enabled();
    }

    /** out[width] = act(gate . a) * (up . a) for one row a[k], w [gate; up] ({@link #matmulGemvGated}; see {@link #gatedGemvApplies}). */
    public static void launchGatedGemv(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer bias, Activations.Kind act,
            int width, int k) {
        if (w.dtype() != DType.F32 && w.dtype() != DType.F16 && w.dtype() != DType.BF16) {
            throw new IllegalArgumentException("the gated GEMV reads F32, F16 or BF16 weights, not " + w.dtype());
        }
        checkGatedShapes(out, a, bias, width, k);
        Shapes.intIndexable(2L * width * k, "gated GEMV weight");
        Shapes.atLeast(w, 2L * width * k, "gated GEMV weight [gate; up]");
        if (k % 8 != 0) {
            throw new IllegalArgumentException("the gated GEMV reads rows of a multiple of 8 weights, not " + k);
        }
        int columns = gemvColumns(device, 1);
        // a team per pair of outputs: the grid of a GEMV over width rows taken two a team
        device.launchPortable(MATMUL_GEMV_GATED, gemvGrid(1, width, gemvLocal(device), columns, 2), out, a, w, bias == null ? out : bias,
                bias != null, width, k, columns, act.code);
    }

    /** The gated GEMVs' shared checks (every weight format): a positive width, the input's k, the output's width, the bias's 2 width. */
    static void checkGatedShapes(DeviceBuffer out, DeviceBuffer a, DeviceBuffer bias, int width, int k) {
        Shapes.positive(width, "gated GEMV width");
        Shapes.atLeast(a, k, "gated GEMV input");
        Shapes.atLeast(out, width, "gated GEMV output");
        if (bias != null) {
            Shapes.atLeast(bias, 2L * width, "gated GEMV bias");
        }
    }

    /**
     * Whether a gated MLP's [gate; up] projection over int8 rows runs as one {@link #matmulInt8GemvGatedQ8} launch here:
     * at batch 1 where the gated GEMV and the int8-activation GEMV both apply ({@link #gatedGemvApplies},
     * {@link #int8ActivationsApply}).
     */
    public static boolean gatedInt8Applies(Device device, int m, int k) {
        return gatedGemvApplies(device, m, k) && int8ActivationsApply(device, m, k);
    }

    /** out[width] = act(gate . a) * (up . a) for one row a[k], w [gate; up] int8 rows with their scales ({@link #matmulInt8GemvGatedQ8}). */
    public static void launchGatedGemvInt8(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, DeviceBuffer bias,
            Activations.Kind act, int width, int k) {
        if (w.dtype() != DType.I8) {
            throw new IllegalArgumentException("the int8 gated GEMV reads int8 weights, not " + w.dtype());
        }
        if (k % 16 != 0) {
            throw new IllegalArgumentException("the int8 gated GEMV reads rows of a multiple of 16 codes, not " + k);
        }
        checkGatedShapes(out, a, bias, width, k);
        Shapes.intIndexable(2L * width * k, "gated GEMV weight");
        Shapes.atLeast(w, 2L * width * k, "gated GEMV weight [gate; up]");
        Shapes.atLeast(scales, 2L * width, "gated GEMV scales");
        int columns = gemvColumns(device, 1);
        device.launch(MATMUL_INT8_GEMV_GATED_Q8, gemvGrid(1, width, gemvLocal(device), columns, 2), out, a, w, scales, bias == null ? out : bias,
                bias != null, width, k, columns, act.code);
    }

    /**
     * Weight rows a team of the float-weight GEMV ({@link #matmulGemv}'s last argument): {@link #GEMV_ROWS_PER_TEAM} at batch 1
     * over rows of a multiple of 8 where the device's tuning {@code matmul.gemv_rows_per_team} asks for it, else 1. Off by
     * default: the int8 GEMV gained 1.5x from four rows a team on an H100, the bf16 one, at 88 % of the copy rate with one,
     * is not measured with four yet.
     */
    public static int floatRowsPerTeam(Device device, int m, int k) {
        return m == 1 && k % 8 == 0 && Tuning.get(device, "matmul.gemv_rows_per_team", 1) == GEMV_ROWS_PER_TEAM ? GEMV_ROWS_PER_TEAM : 1;
    }

    /**
     * A gated MLP's gate and up projections and its activation at batch 1, one launch: w holds the rows [gate; up]
     * ([2 width, k], f32/f16/bf16, k a multiple of 8), and out[i] = act(gate_i . a + bias_i) * (up_i . a + bias_{width + i}).
     * A team takes gate rows 2j, 2j + 1 and their up rows ({@link #floatRowSums}), so its two outputs need nothing
     * from another team; the activation kernel and its launch are gone from the decode step.
     */
    public static void matmulGemvGated(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, FloatArray bias, boolean hasBias,
            int width, int k, int columns, int kind) {
        float[] partial = ctx.allocateFloatLocalArray(GEMV_ROWS * MAX_LOCAL);
        gatedSums(ctx, partial, out, a, w, bias, hasBias, width, k, columns, kind, w, false, 0f);
    }

    /**
     * {@link #matmulGemvGated}'s body; with {@code normed}, its input goes through an RMSNorm of weight normW as it is
     * read ({@link FoldedGemv}).
     */
    static void gatedSums(KernelContext ctx, float[] partial, FloatArray out, FloatArray a, NativeArray w, FloatArray bias, boolean hasBias,
            int width, int k, int columns, int kind, NativeArray normW, boolean normed, float eps) {
        int team = ctx.localGroupSizeX / columns;
        int p = (ctx.groupIdx * columns + ctx.localIdx / team) * 2;
        int g0 = Math.min(p, width - 1);
        int g1 = Math.min(p + 1, width - 1);
        floatRowSums(ctx, partial, a, w, g0, g1, width + g0, width + g1, k, team, normW, normed);
        float factor = normed ? normFactor(ctx, partial, columns, k, eps) : 1f;
        gatedStore(ctx, ctx.groupIdx, partial, out, bias, false, bias, hasBias, width, columns, factor, kind);
    }

    /**
     * The gated GEMVs' epilogue: the team's first item writes out[p + c] = act(gate) * up for its two outputs p, p + 1
     * (p = 2 x its team, the teams of work-group {@code group} numbered from group x columns: ctx.groupIdx, or the tile a
     * looping group is on), gate and up the sums partial[c * localSize + teamStart] and partial[(c + 2) * ...] (rows p + c
     * and width + p + c) times {@code factor}, times their rows' scales when {@code scaled}, plus their biases.
     */
    static void gatedStore(KernelContext ctx, int group, float[] partial, FloatArray out, FloatArray scales, boolean scaled, FloatArray bias,
            boolean hasBias, int width, int columns, float factor, int kind) {
        int team = ctx.localGroupSizeX / columns;
        int teamStart = ctx.localIdx / team * team;
        int p = (group * columns + ctx.localIdx / team) * 2;
        if (ctx.localIdx == teamStart) {
            for (int c = 0; c < 2; c++) {
                if (p + c < width) {
                    float gate = partial[c * ctx.localGroupSizeX + teamStart] * factor * (scaled ? scales.get(p + c) : 1f)
                            + (hasBias ? bias.get(p + c) : 0f);
                    float up = partial[(c + 2) * ctx.localGroupSizeX + teamStart] * factor * (scaled ? scales.get(width + p + c) : 1f)
                            + (hasBias ? bias.get(width + p + c) : 0f);
                    out.set(p + c, Activations.activate(gate, kind) * up);
                }
            }
        }
    }

    /**
     * {@link #gemvSums} at batch 1 with {@link #GEMV_ROWS_PER_TEAM} weight rows a team ({@link #int8RowSums} over f32, f16
     * or bf16 rows): each item loads 8 weights of each row (four 16-byte loads of 16-bit weights in flight) and the 8
     * activations they meet once. Rows past n read row n - 1 and are not stored.
     */
    static void floatRowSums(KernelContext ctx, float[] partial, FloatArray a, NativeArray w, int n, int k, int columns, NativeArray normW,
            boolean normed) {
        int team = ctx.localGroupSizeX / columns;
        int row0 = (ctx.groupIdx * columns + ctx.localIdx / team) * GEMV_ROWS_PER_TEAM;
        floatRowSums(ctx, partial, a, w, Math.min(row0, n - 1), Math.min(row0 + 1, n - 1), Math.min(row0 + 2, n - 1), Math.min(row0 + 3, n - 1),
                k, team, normW, normed);
    }

    /** {@link #floatRowSums} over four given weight rows (sums of row r0 first); {@code normed}: see {@link #foldNorm}. */
    static void floatRowSums(KernelContext ctx, float[] partial, FloatArray a, NativeArray w, int r0, int r1, int r2, int r3, int k, int team,
            NativeArray normW, boolean normed) {
        float[] acc = new float[GEMV_ROWS];
        float[] nw = new float[8];
        float[] w0 = new float[8];
        float[] w1 = new float[8];
        float[] w2 = new float[8];
        float[] w3 = new float[8];
        float[] x = new float[8];
        int lane = ctx.localIdx % team;
        for (int c = 0; c < GEMV_ROWS; c++) {
            acc[c] = 0f;
        }
        int at0 = r0 * k;
        int at1 = r1 * k;
        int at2 = r2 * k;
        int at3 = r3 * k;
        for (int i = 8 * lane; i < k; i += 8 * team) {
            w.getFloats(at0 + i, w0, 0, 8);
            w.getFloats(at1 + i, w1, 0, 8);
            w.getFloats(at2 + i, w2, 0, 8);
            w.getFloats(at3 + i, w3, 0, 8);
            a.getFloats(i, x, 0, 8);
            if (normed) {
                acc[NORM_SLOT] += foldNorm8(x, normW, i, nw);
            }
            acc[0] += dot8(w0, x);
            acc[1] += dot8(w1, x);
            acc[2] += dot8(w2, x);
            acc[3] += dot8(w3, x);
        }
        gemvReduce(ctx, partial, acc, GEMV_ROWS_PER_TEAM, team, normed);
    }

    /**
     * The GEMV kernels' epilogue: the first item of each team writes its column of the block's
     * rows, the sums {@link #gemvSums} left, times {@code scales[col]} when {@code scaled}, plus the bias.
     */
    static void gemvStore(KernelContext ctx, float[] partial, FloatArray out, FloatArray scales, boolean scaled, FloatArray bias,
            boolean hasBias, int m, int n, int columns, float factor, boolean adding) {
        int team = ctx.localGroupSizeX / columns;
        int teamStart = ctx.localIdx / team * team;
        int col = ctx.groupIdx * columns + ctx.localIdx / team;
        int row0 = ctx.groupIdy * GEMV_ROWS;
        int rows = Math.min(GEMV_ROWS, m - row0);
        if (ctx.localIdx == teamStart && col < n) {
            float s = scaled ? scales.get(col) : 1f;
            float b = hasBias ? bias.get(col) : 0f;
            for (int r = 0; r < rows; r++) {
                int at = (row0 + r) * n + col;
                float v = partial[r * ctx.localGroupSizeX + teamStart] * factor * s + b;
                out.set(at, adding ? out.get(at) + v : v);
            }
        }
    }

    /**
     * The GEMV kernels' shared part: leaves in partial[r * localSize + teamStart] the dot product
     * of a's row (group y * GEMV_ROWS + r) with w's row of the team's column ({@link #gemvReduce}).
     * {@code w} is read with getFloat(s), so an int8 array yields its codes.
     */
    static void gemvSums(KernelContext ctx, float[] partial, FloatArray a, NativeArray w, int m, int n, int k, int columns, NativeArray normW,
            boolean normed) {
        float[] acc = new float[GEMV_ROWS];
        float[] nw = new float[8];
        float[] wRun0 = new float[8];
        float[] wRun1 = new float[8];
        float[] wRun2 = new float[8];
        float[] wRun3 = new float[8];
        float[] x = new float[8];
        int size = ctx.localGroupSizeX;
        int team = size / columns;
        int lid = ctx.localIdx;
        int lane = lid % team;
        int col = ctx.groupIdx * columns + lid / team;
        int row0 = ctx.groupIdy * GEMV_ROWS;
        int rows = Math.min(GEMV_ROWS, m - row0);
        for (int r = 0; r < GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        if (col < n && k % 8 == 0) {
            // rows of whole 8-element runs: each item loads 8 consecutive weights at once (16 bytes of
            // bf16/f16, 8 of int8, 32 of f32) and the matching 8 activations, two runs in flight;
            // element by element a warp had 4 loads of 1-4 bytes in flight, far too few to stream
            int base = col * k;
            int step = 8 * team;
            int i = 8 * lane;
            if (m == 1) {
                // batch 1: four runs in flight, 2 KB of the row a warp (with two, the 8B batch-1 step's plain GEMVs ran at
                // 68 % of the H100's copy rate; 14336 x 4096 bf16 44.0 -> 39.7 us with four, session 18)
                for (; i + 3 * step < k; i += 4 * step) {
                    w.getFloats(base + i, wRun0, 0, 8);
                    w.getFloats(base + i + step, wRun1, 0, 8);
                    w.getFloats(base + i + 2 * step, wRun2, 0, 8);
                    w.getFloats(base + i + 3 * step, wRun3, 0, 8);
                    float s = runDot(wRun0, a, i, x, acc, normed, normW, i, nw) + runDot(wRun1, a, i + step, x, acc, normed, normW, i + step, nw);
                    acc[0] += s + runDot(wRun2, a, i + 2 * step, x, acc, normed, normW, i + 2 * step, nw)
                            + runDot(wRun3, a, i + 3 * step, x, acc, normed, normW, i + 3 * step, nw);
                }
            }
            for (; i + step < k; i += 2 * step) {
                w.getFloats(base + i, wRun0, 0, 8);
                w.getFloats(base + i + step, wRun1, 0, 8);
                for (int r = 0; r < GEMV_ROWS; r++) {
                    if (r < rows) {
                        int at = (row0 + r) * k + i;
                        // normed: batch 1 (FoldedGemv), row 0 only
                        float s = runDot(wRun0, a, at, x, acc, normed, normW, i, nw);
                        acc[r] += s + runDot(wRun1, a, at + step, x, acc, normed, normW, i + step, nw);
                    }
                }
            }
            if (i < k) {
                w.getFloats(base + i, wRun0, 0, 8);
                for (int r = 0; r < GEMV_ROWS; r++) {
                    if (r < rows) {
                        acc[r] += runDot(wRun0, a, (row0 + r) * k + i, x, acc, normed, normW, i, nw);
                    }
                }
            }
        } else if (col < n) {
            int base = col * k;
            int i = lane;
            // four independent weight loads per item in flight: a GEMV is bound by memory latency
            for (; i + 3 * team < k; i += 4 * team) {
                float w0 = w.getFloat(base + i);
                float w1 = w.getFloat(base + i + team);
                float w2 = w.getFloat(base + i + 2 * team);
                float w3 = w.getFloat(base + i + 3 * team);
                // a constant trip count lets GPU compilers unroll this and keep acc in registers
                for (int r = 0; r < GEMV_ROWS; r++) {
                    if (r < rows) {
                        int at = (row0 + r) * k + i;
                        acc[r] += a.get(at) * w0 + a.get(at + team) * w1 + a.get(at + 2 * team) * w2 + a.get(at + 3 * team) * w3;
                    }
                }
            }
            for (; i < k; i += team) {
                float wv = w.getFloat(base + i);
                for (int r = 0; r < GEMV_ROWS; r++) {
                    if (r < rows) {
                        acc[r] += a.get((row0 + r) * k + i) * wv;
                    }
                }
            }
        }
        gemvReduce(ctx, partial, acc, rows, team, normed);
    }

    /**
     * A run of 8 weights times the activations a[at..at + 8) (loaded into x); {@code normed}: through the folded norm's
     * weight at element i, the activations' squares added into acc[NORM_SLOT] ({@link #foldNorm}).
     */
    static float runDot(float[] wRun, FloatArray a, int at, float[] x, float[] acc, boolean normed, NativeArray normW, int i, float[] nw) {
        a.getFloats(at, x, 0, 8);
        if (normed) {
            acc[NORM_SLOT] += foldNorm8(x, normW, i, nw);
        }
        return dot8(wRun, x);
    }

    /** u · v over 8 elements, as two independent chains. */
    static float dot8(float[] u, float[] v) {
        float s0 = u[0] * v[0] + u[1] * v[1] + u[2] * v[2] + u[3] * v[3];
        float s1 = u[4] * v[4] + u[5] * v[5] + u[6] * v[6] + u[7] * v[7];
        return s0 + s1;
    }

    /**
     * Adds up each team's private sums {@code acc} (one per row) into partial[r * localSize + teamStart].
     * A team that is exactly one sub-group (a warp on CUDA) adds with shuffles, without barriers;
     * otherwise it adds in local memory ({@link #gemvReduceTree}).
     */
    static void gemvReduce(KernelContext ctx, float[] partial, float[] acc, int rows, int team, boolean normed) {
        int size = ctx.localGroupSizeX;
        int lid = ctx.localIdx;
        int lane = lid % team;
        if (ctx.subGroupSize() == team) {
            for (int r = 0; r < GEMV_ROWS; r++) {
                if (r < rows) {
                    float sum = ctx.subGroupReduceAdd(acc[r]);
                    if (lane == 0) {
                        partial[r * size + lid] = sum;
                    }
                }
            }
            if (normed) {
                float squares = ctx.subGroupReduceAdd(acc[NORM_SLOT]);
                if (lane == 0) {
                    partial[NORM_SLOT * size + lid] = squares;
                }
            }
        } else {
            gemvReduceTree(ctx, partial, acc, rows, team, normed);
        }
    }

    /**
     * {@link #gemvReduce} for teams of one or several sub-groups: each sub-group's sums by shuffles, then a team of
     * several (warps) adds the others' at its first item, in registers, after one barrier, where the tree takes log2(team)
     * barriers. Only the int8 GEMVs on int8 activations take it: with their teams widened (matmul.int8_q8_items_per_unit)
     * it ran them 12-37 % faster than warp teams (H100, session 25), while in the 16-bit GEMVs it cost 3-17 % (its code
     * after the loop changed how ptxas scheduled their weight loads; docs/benchmarks.md).
     */
    static void gemvReduceByWarps(KernelContext ctx, float[] partial, float[] acc, int rows, int team, boolean normed) {
        int size = ctx.localGroupSizeX;
        int lid = ctx.localIdx;
        int lane = lid % team;
        int sub = ctx.subGroupSize();
        if (sub == team || sub > 1 && team % sub == 0) {
            for (int r = 0; r < GEMV_ROWS; r++) {
                if (r < rows) {
                    acc[r] = ctx.subGroupReduceAdd(acc[r]);
                }
            }
            if (normed) {
                acc[NORM_SLOT] = ctx.subGroupReduceAdd(acc[NORM_SLOT]);
            }
            if (team > sub) {
                if (lane != 0 && lid % sub == 0) {
                    gemvStoreSums(partial, acc, rows, normed, size, lid);
                }
                ctx.localBarrier();
                if (lane == 0) {
                    for (int from = lid + sub; from < lid + team; from += sub) {
                        for (int r = 0; r < GEMV_ROWS; r++) {
                            if (r < rows) {
                                acc[r] += partial[r * size + from];
                            }
                        }
                        if (normed) {
                            acc[NORM_SLOT] += partial[NORM_SLOT * size + from];
                        }
                    }
                }
            }
            if (lane == 0) {
                gemvStoreSums(partial, acc, rows, normed, size, lid);
            }
        } else {
            gemvReduceTree(ctx, partial, acc, rows, team, normed);
        }
    }

    /** {@link #gemvReduce} in local memory, for sub-groups of one item (the JVM, PoCL) or teams not of whole ones: log2(team) barriers. */
    private static void gemvReduceTree(KernelContext ctx, float[] partial, float[] acc, int rows, int team, boolean normed) {
        int size = ctx.localGroupSizeX;
        int lid = ctx.localIdx;
        int lane = lid % team;
        for (int r = 0; r < GEMV_ROWS; r++) {
            partial[r * size + lid] = acc[r];
        }
        for (int stride = team / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lane < stride) {
                for (int r = 0; r < rows; r++) {
                    partial[r * size + lid] += partial[r * size + lid + stride];
                }
                if (normed) {
                    partial[NORM_SLOT * size + lid] += partial[NORM_SLOT * size + lid + stride];
                }
            }
        }
    }

    /** A sub-group's or team's sums (rows, and the norm's squares where normed) into partial at column {@code at}. */
    private static void gemvStoreSums(float[] partial, float[] acc, int rows, boolean normed, int size, int at) {
        for (int r = 0; r < GEMV_ROWS; r++) {
            if (r < rows) {
                partial[r * size + at] = acc[r];
            }
        }
        if (normed) {
            partial[NORM_SLOT * size + at] = acc[NORM_SLOT];
        }
    }

    /** {@link #matmulTiled} with int8 weights: out = (a · wᵀ) * scales[col] (+ bias). */
    public static void matmulInt8Tiled(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales,
            FloatArray bias, boolean hasBias, int m, int n, int k) {
        float acc = tiledDot(ctx, a, w, m, n, k);
        int row = ctx.groupIdy * ctx.localGroupSizeX + ctx.localIdy;
        int col = ctx.groupIdx * ctx.localGroupSizeX + ctx.localIdx;
        if (row < m && col < n) {
            float v = acc * scales.get(col);
            out.set(row * n + col, hasBias ? v + bias.get(col) : v);
        }
    }

    /**
     * {@link #matmulGemv} with int8 weights: out = (a · wᵀ) * scales[col] (+ bias); at batch 1 a team takes
     * {@link #int8RowsPerTeam} weight rows (the grid: {@link #gemvGrid(int, int, int, int, int)}).
     */
    public static void matmulInt8Gemv(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales,
            FloatArray bias, boolean hasBias, int m, int n, int k, int columns) {
        float[] partial = ctx.allocateFloatLocalArray(GEMV_ROWS * MAX_LOCAL);
        int rowsPerTeam = int8RowsPerTeam(m, k);
        if (rowsPerTeam > 1) {
            int8RowSums(ctx, partial, a, w, n, k, columns, w, false);
        } else if (k % 16 == 0) {
            int8Sums(ctx, partial, a, w, m, n, k, columns);
        } else {
            gemvSums(ctx, partial, a, w, m, n, k, columns, w, false);
        }
        // the epilogue after the branches, not inside them: PoCL mis-ran a store that followed a reduction's
        // barriers within one branch of the kernel (every team's value wrong, MatmulTest on opencl:0:0)
        gemvEpilogue(ctx, partial, out, scales, true, bias, hasBias, m, n, columns, rowsPerTeam, false, k, 0f, false);
    }

    /**
     * {@link #gemvSums} over int8 rows whose length is a multiple of 16: each item loads 16 codes at
     * once (one 16-byte load, as the bf16 path's 8 weights are) and two such runs are in flight. With
     * runs of 8 codes a warp moved half the bytes per load of the bf16 GEMV, and int8 decoded at
     * batch 1 only 1.08x bf16's speed on the H200 for half the bytes.
     */
    static void int8Sums(KernelContext ctx, float[] partial, FloatArray a, ByteArray w, int m, int n, int k, int columns) {
        float[] acc = new float[GEMV_ROWS];
        int[] codes = new int[8];
        float[] x = new float[8];
        int team = ctx.localGroupSizeX / columns;
        int lane = ctx.localIdx % team;
        int col = ctx.groupIdx * columns + ctx.localIdx / team;
        int row0 = ctx.groupIdy * GEMV_ROWS;
        int rows = Math.min(GEMV_ROWS, m - row0);
        for (int r = 0; r < GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        if (col < n) {
            int base = col * k;
            int step = 16 * team;
            for (int i = 16 * lane; i < k; i += 2 * step) {
                boolean second = i + step < k;
                w.getWords(base + i, codes, 0, 4);
                w.getWords(base + (second ? i + step : i), codes, 4, 4);
                for (int run = 0; run < 2; run++) {
                    if (run == 0 || second) {
                        int at = i + run * step;
                        for (int r = 0; r < GEMV_ROWS; r++) {
                            if (r < rows) {
                                float sum = 0f;
                                for (int part = 0; part < 2; part++) {
                                    a.getFloats((row0 + r) * k + at + 8 * part, x, 0, 8);
                                    int lo = codes[4 * run + 2 * part], hi = codes[4 * run + 2 * part + 1];
                                    sum += dot8Codes(x, lo, hi);
                                }
                                acc[r] += sum;
                            }
                        }
                    }
                }
            }
        }
        gemvReduce(ctx, partial, acc, rows, ctx.localGroupSizeX / columns, false);
    }

    /** x[0..7] . the int8 codes of two words (bytes low first). */
    static float dot8Codes(float[] x, int lo, int hi) {
        return x[0] * (byte) lo + x[1] * (byte) (lo >> 8) + x[2] * (byte) (lo >> 16) + x[3] * (lo >> 24)
                + x[4] * (byte) hi + x[5] * (byte) (hi >> 8) + x[6] * (byte) (hi >> 16) + x[7] * (hi >> 24);
    }

    /**
     * Weight rows a GEMV team takes together at batch 1 ({@link #int8RowSums}, {@code QuantMatmul.int4RowSums}): each
     * activation load serves this many rows. With one row a team, every weight byte cost 4 (int8) to 8 (int4) bytes of
     * f32 activations read again from L1/L2, and the bf16, int8 and int4 GEMVs all ran at 1.1-1.6 T weights/s on the
     * H100 whatever their weights' bytes: 5-7 TB/s of activation reads, the likely bound (inferred, not profiled; the
     * effect of four rows is not measured yet, docs/benchmarks.md).
     */
    public static final int GEMV_ROWS_PER_TEAM = 4;

    /**
     * The batch-1 int8 GEMV on int8 activations: {@link #matmulInt8Gemv}'s grid, teams of four rows and loads, but each
     * item rounds its 16 activations to int8 with their own scale (max |x| / 127) and meets each row's 16 codes with four
     * {@link KMath#dot4I8} (CUDA {@code dp4a}), one float multiply-add a row. The float path converts every code to a
     * float (a quarter-rate instruction on Hopper) before its multiply-add: 64 conversions an item a step, where here
     * there are none. Error: the activations' rounding, at most the sum over groups of 16 of (max |x| / 127) / 2 times
     * the group's sum of |w| ({@code MatmulTest}). Tuning {@code matmul.int8_q8} ({@link #int8ActivationsApply}).
     */
    public static void matmulInt8GemvQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales,
            FloatArray bias, boolean hasBias, int m, int n, int k, int columns) {
        int8GemvQ8(ctx, out, a, w, scales, bias, hasBias, n, k, columns, w, false, 0f, false);
    }

    /**
     * {@link #matmulInt8GemvQ8}'s body; with {@code normed} its input goes through an RMSNorm of weight normW as it is read,
     * with {@code adding} its product is added into out ({@link FoldedGemv}).
     */
    static void int8GemvQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias, boolean hasBias,
            int n, int k, int columns, NativeArray normW, boolean normed, float eps, boolean adding) {
        float[] partial = ctx.allocateFloatLocalArray(GEMV_ROWS * MAX_LOCAL);
        float[] acc = new float[GEMV_ROWS];
        int team = ctx.localGroupSizeX / columns;
        int row0 = (ctx.groupIdx * columns + ctx.localIdx / team) * GEMV_ROWS_PER_TEAM;
        int8RowSumsQ8(acc, a, w, Math.min(row0, n - 1), Math.min(row0 + 1, n - 1), Math.min(row0 + 2, n - 1), Math.min(row0 + 3, n - 1), k,
                ctx.localIdx % team, team, normW, normed);
        gemvReduceByWarps(ctx, partial, acc, GEMV_ROWS_PER_TEAM, team, normed);
        gemvEpilogue(ctx, partial, out, scales, true, bias, hasBias, 1, n, columns, GEMV_ROWS_PER_TEAM, normed, k, eps, adding);
    }

    /**
     * A gated MLP's gate and up projections over int8 rows [gate; up] ([2 width, k], one scale a row) and its activation
     * at batch 1, one launch on int8 activations: {@link #matmulGemvGated}'s teams (gate rows p, p + 1 and their up rows)
     * over {@link #matmulInt8GemvQ8}'s sums. The activation kernel's launch and its round trip through [2 width] are gone.
     */
    public static void matmulInt8GemvGatedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int width, int k, int columns, int kind) {
        int8GatedQ8(ctx, out, a, w, scales, bias, hasBias, width, k, columns, kind, w, false, 0f);
    }

    /** {@link #matmulInt8GemvGatedQ8}'s body; with {@code normed}, its input goes through an RMSNorm of weight normW ({@link FoldedGemv}). */
    static void int8GatedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias, boolean hasBias,
            int width, int k, int columns, int kind, NativeArray normW, boolean normed, float eps) {
        float[] partial = ctx.allocateFloatLocalArray(GEMV_ROWS * MAX_LOCAL);
        float[] acc = new float[GEMV_ROWS];
        int team = ctx.localGroupSizeX / columns;
        int p = (ctx.groupIdx * columns + ctx.localIdx / team) * 2;
        int g0 = Math.min(p, width - 1);
        int g1 = Math.min(p + 1, width - 1);
        int8RowSumsQ8(acc, a, w, g0, g1, width + g0, width + g1, k, ctx.localIdx % team, team, normW, normed);
        gemvReduceByWarps(ctx, partial, acc, GEMV_ROWS_PER_TEAM, team, normed);
        float factor = normed ? normFactor(ctx, partial, columns, k, eps) : 1f;
        gatedStore(ctx, ctx.groupIdx, partial, out, scales, true, bias, hasBias, width, columns, factor, kind);
    }

    /**
     * The sums of {@link #matmulInt8GemvQ8} over int8 rows r0..r3 into acc[0..3] (the item's part; {@link #gemvReduce}
     * adds a team's): each item rounds its 16 activations of a step to int8 with their own scale (max |x| / 127) and
     * meets each row's 16 codes with four dp4a, one float multiply-add a row. {@code normed}: the activations are
     * multiplied by the norm's weight before they are rounded, their squares added into acc[NORM_SLOT] ({@link #foldNorm}).
     */
    static void int8RowSumsQ8(float[] acc, FloatArray a, ByteArray w, int r0, int r1, int r2, int r3, int k, int lane, int team,
            NativeArray normW, boolean normed) {
        int[] codes = new int[4 * GEMV_ROWS_PER_TEAM];
        int[] q = new int[4];
        float[] x0 = new float[8];
        float[] x1 = new float[8];
        float[] nw = new float[4];
        for (int c = 0; c < GEMV_ROWS; c++) {
            acc[c] = 0f;
        }
        for (int i = 16 * lane; i < k; i += 16 * team) {
            loadRowCodes(w, codes, r0, r1, r2, r3, k, i);
            a.getFloats(i, x0, 0, 8);
            a.getFloats(i + 8, x1, 0, 8);
            if (normed) {
                acc[NORM_SLOT] += foldNorm8(x0, normW, i, nw) + foldNorm8(x1, normW, i + 8, nw);
            }
            float most = 0f;
            for (int j = 0; j < 8; j++) {
                most = KMath.max(most, KMath.max(KMath.abs(x0[j]), KMath.abs(x1[j])));
            }
            float inverse = most > 0f ? 127f / most : 0f;
            q[0] = int8Codes(x0, 0, inverse);
            q[1] = int8Codes(x0, 4, inverse);
            q[2] = int8Codes(x1, 0, inverse);
            q[3] = int8Codes(x1, 4, inverse);
            float scale = most / 127f;
            for (int c = 0; c < GEMV_ROWS_PER_TEAM; c++) {
                int dot = KMath.dot4I8(codes[4 * c], q[0], KMath.dot4I8(codes[4 * c + 1], q[1],
                        KMath.dot4I8(codes[4 * c + 2], q[2], KMath.dot4I8(codes[4 * c + 3], q[3], 0))));
                acc[c] += scale * dot;
            }
        }
    }

    /**
     * x[from..from + 3] times {@code inverse}, rounded to the nearest integer (ties to even; |x inverse| <= 127 here), as
     * the four bytes of an int: adding 1.5 * 2^23 leaves the rounded integer in the float's low bits, two's complement
     * (the JVM's Int4Gemv rounds so too), with no float-to-int conversion.
     */
    static int int8Codes(float[] x, int from, float inverse) {
        int r = 0;
        for (int j = 0; j < 4; j++) {
            r |= (Float.floatToRawIntBits(x[from + j] * inverse + ROUNDER) & 255) << (8 * j);
        }
        return r;
    }

    /** 1.5 * 2^23: see {@link #int8Codes}. */
    private static final float ROUNDER = 0x1.8p23f;

    /**
     * Whether a batch-1 int8 GEMV of four rows a team runs {@link #matmulInt8GemvQ8} here: where the device's tuning
     * {@code matmul.int8_q8} is 1 (on for CUDA: 8B int8 batch 1 240.2 -> 253.0 tok/s on an H100, session 14).
     */
    static boolean int8ActivationsApply(Device device, int m, int k) {
        return int8RowsPerTeam(m, k) > 1 && Tuning.get(device, "matmul.int8_q8", 0) == 1 && !BatchInvariance.enabled();
    }

    /** Output columns a work-group of {@link #matmulInt8GemvQ8} over n rows (its teams widened, see launchMatmulInt8). */
    static int int8Q8Columns(Device device, int n) {
        return fillingGemvColumns(device, 1, n, GEMV_ROWS_PER_TEAM, Tuning.get(device, "matmul.int8_q8_items_per_unit", 0));
    }

    /** Weight rows per team of the int8 GEMV: {@link #GEMV_ROWS_PER_TEAM} at batch 1 over rows of a multiple of 16 codes, else 1. */
    public static int int8RowsPerTeam(int m, int k) {
        return m == 1 && k % 16 == 0 ? GEMV_ROWS_PER_TEAM : 1;
    }

    /**
     * {@link #int8Sums} at batch 1 with {@link #GEMV_ROWS_PER_TEAM} weight rows a team: each item loads 16 codes of
     * each row (four 16-byte loads in flight) and the 16 activations they meet once, and leaves row c's sum in
     * partial[c * localSize + teamStart]. Rows past n read row n - 1 and are not stored.
     */
    static void int8RowSums(KernelContext ctx, float[] partial, FloatArray a, ByteArray w, int n, int k, int columns, NativeArray normW,
            boolean normed) {
        float[] acc = new float[GEMV_ROWS];
        float[] nw = new float[8];
        int[] codes = new int[4 * GEMV_ROWS_PER_TEAM];
        float[] x = new float[8];
        int team = ctx.localGroupSizeX / columns;
        int lane = ctx.localIdx % team;
        int row0 = (ctx.groupIdx * columns + ctx.localIdx / team) * GEMV_ROWS_PER_TEAM;
        int r0 = Math.min(row0, n - 1);
        int r1 = Math.min(row0 + 1, n - 1);
        int r2 = Math.min(row0 + 2, n - 1);
        int r3 = Math.min(row0 + 3, n - 1);
        for (int c = 0; c < GEMV_ROWS; c++) {
            acc[c] = 0f;
        }
        for (int i = 16 * lane; i < k; i += 16 * team) {
            loadRowCodes(w, codes, r0, r1, r2, r3, k, i);
            for (int part = 0; part < 2; part++) {
                a.getFloats(i + 8 * part, x, 0, 8);
                if (normed) {
                    acc[NORM_SLOT] += foldNorm8(x, normW, i + 8 * part, nw);
                }
                for (int c = 0; c < GEMV_ROWS_PER_TEAM; c++) {
                    acc[c] += dot8Codes(x, codes[4 * c + 2 * part], codes[4 * c + 2 * part + 1]);
                }
            }
        }
        gemvReduce(ctx, partial, acc, GEMV_ROWS_PER_TEAM, team, normed);
    }

    /**
     * Codes i..i+15 of the int8 rows r0..r3 (of k codes each) into codes[0..15], four words a row: four 16-byte loads in
     * flight, written out with constant offsets into codes (a loop index there is a dynamic one for the compilers).
     */
    static void loadRowCodes(ByteArray w, int[] codes, int r0, int r1, int r2, int r3, int k, int i) {
        w.getWords(r0 * k + i, codes, 0, 4);
        w.getWords(r1 * k + i, codes, 4, 4);
        w.getWords(r2 * k + i, codes, 8, 4);
        w.getWords(r3 * k + i, codes, 12, 4);
    }

    /**
     * The batch-1 epilogue of teams of {@code rowsPerTeam} weight rows: the team's first item writes out[col] for each
     * of its rows' columns, partial[c * localSize + teamStart] ({@link #int8RowSums}) times scales[col] when
     * {@code scaled}, plus the bias; the teams of work-group {@code group} as in {@link #gatedStore}.
     */
    static void gemvStoreRows(KernelContext ctx, int group, float[] partial, FloatArray out, FloatArray scales, boolean scaled, FloatArray bias,
            boolean hasBias, int n, int columns, int rowsPerTeam, float factor, boolean adding) {
        int team = ctx.localGroupSizeX / columns;
        int teamStart = ctx.localIdx / team * team;
        int col0 = (group * columns + ctx.localIdx / team) * rowsPerTeam;
        if (ctx.localIdx == teamStart) {
            for (int c = 0; c < rowsPerTeam; c++) {
                int col = col0 + c;
                if (col < n) {
                    float s = scaled ? scales.get(col) : 1f;
                    float b = hasBias ? bias.get(col) : 0f;
                    float v = partial[c * ctx.localGroupSizeX + teamStart] * factor * s + b;
                    out.set(col, adding ? out.get(col) + v : v);
                }
            }
        }
    }

    // ---- launchers -------------------------------------------------------------------

    /**
     * out[m, n] (f32) = a[m, k] (f32) · w[n, k]ᵀ (f32, f16 or bf16) + bias[n] (f32, or null for none).
     * Decode-sized {@code m} (up to the tuning value {@code matmul.gemv_max_m}) runs the GEMV
     * kernel, larger {@code m} the tiled one (under {@link BatchInvariance}, every m: see {@link #useGemv}).
     */
    public static void launchMatmul(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer bias,
            int m, int n, int k) {
        if (w.dtype() != DType.F32 && w.dtype() != DType.F16 && w.dtype() != DType.BF16) {
            throw new IllegalArgumentException("matmul weights must be F32, F16 or BF16, got " + w.dtype()
                    + (w.dtype() == DType.I8 ? " (int8 weights go through launchMatmulInt8)" : ""));
        }
        checkShapes(out, a, w, bias, m, n, k);
        DeviceBuffer b = bias == null ? out : bias;
        if (useGemv(device, m)) {
            int rowsPerTeam = floatRowsPerTeam(device, m, k);
            int columns = gemvColumns(device, m);
            device.launch(MATMUL_GEMV, gemvGrid(m, n, gemvLocal(device), columns, rowsPerTeam), out, a, w, b, bias != null, m, n, k, columns,
                    rowsPerTeam);
        } else if (usesTensorCores(device, w, k)) {
            launchTensorCores(device, out, a, w, bias, m, n, k);
        } else {
            BatchInvariance.launch(device, MATMUL_TILED, tiledGrid(m, n, Tuning.get(device, "matmul.tile", 16)), out, a, w, b, bias != null, m,
                    n, k);
        }
    }

    /**
     * The type {@link #launchMatmul} of m rows by w reads its activations in as they are: w's bf16 or f16 where it runs on
     * tensor cores (the Java kernel would round f32 ones as it reads them, and cuBLAS standing in for it narrows them in a
     * launch of their own: 4 launches a layer, 6.5 % of an 8B prefill step on an H100), else f32. A norm or an activation
     * that writes this type gives the GEMM the very values it would have rounded. Tuning {@code matmul.narrow_inputs=0}
     * keeps them f32 (the same sums, bit for bit: the model test compares both).
     */
    public static DType activationType(Device device, DeviceBuffer w, int m, int k) {
        return activationType(device, w.dtype(), m, k);
    }

    /** {@link #activationType(Device, DeviceBuffer, int, int)} for weights of type {@code weights}. */
    static DType activationType(Device device, DType weights, int m, int k) {
        return !useGemv(device, m) && usesTensorCores(device, weights, k) && Tuning.get(device, "matmul.narrow_inputs", 1) == 1 ? weights : DType.F32;
    }

    /**
     * The type {@link #launchMatmulInt8} of m rows reads its activations in as they are: where it dequantises the rows for
     * the bf16 GEMM ({@link DequantizedGemm}), that GEMM's ({@link #activationType}: bf16 where it runs on tensor cores), else
     * f32. Before, an int8 prefill's activations went to cuBLAS through a narrowing launch each, 4 a layer: 14.3 of an 8B
     * 64 x 128-token prefill's 214 ms on an H100 (session 32, gpu-check.sh quantprof).
     */
    public static DType int8ActivationType(Device device, int m, int k) {
        return int8Dequantises(device, m, k) ? activationType(device, DType.BF16, m, k) : DType.F32;
    }

    /** Whether {@link #launchMatmulInt8} of m rows dequantises them for the bf16 GEMM: no tensor-core int8 kernel takes m first. */
    static boolean int8Dequantises(Device device, int m, int k) {
        return !Int8TensorGemv.applies(device, m, k) && !QuantTensorGemm.applies(device, m, k) && DequantizedGemm.applies(device, m, k);
    }

    /**
     * Whether a matmul with more rows than the GEMV takes runs on tensor cores here: where the
     * device's tuning {@code matmul.tensor_cores} is 1 and it has them, for bf16/f16 weights and k a
     * multiple of 8. (On CUDA with vendor GEMMs, cuBLAS stands in for that kernel: KernelLibrary.)
     */
    public static boolean usesTensorCores(Device device, DeviceBuffer w, int k) {
        return usesTensorCores(device, w.dtype(), k);
    }

    private static boolean usesTensorCores(Device device, DType weights, int k) {
        boolean bf16 = weights == DType.BF16;
        return Tuning.get(device, "matmul.tensor_cores", 0) == 1 && (bf16 || weights == DType.F16) && k % 8 == 0
                && device.supports(bf16 ? Feature.MMA_BF16 : Feature.MMA_F16);
    }

    /**
     * out[m, n] (f32) = a[m, k] · w[n, k]ᵀ + bias[n] on tensor cores ({@link TensorCoreMatmul}): w bf16
     * or f16, a f32 (rounded to w's type as it is read) or of w's type; k a multiple of 8.
     */
    public static void launchTensorCores(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer bias, int m, int n, int k) {
        if (w.dtype() != DType.F16 && w.dtype() != DType.BF16) {
            throw new IllegalArgumentException("the tensor-core matmul takes f16 or bf16 weights, not " + w.dtype());
        }
        if (a.dtype() != DType.F32 && a.dtype() != w.dtype()) {
            throw new IllegalArgumentException("the tensor-core matmul takes f32 activations or the weights' " + w.dtype() + ", not " + a.dtype());
        }
        if (k % 8 != 0) {
            throw new IllegalArgumentException("the tensor-core matmul needs k to be a multiple of 8, got " + k);
        }
        checkShapes(out, a, w, bias, m, n, k);
        KernelRef kernel = w.dtype() == DType.BF16 ? MATMUL_TC_BF16 : MATMUL_TC_F16;
        if (usesWarpgroupMma(device, kernel, a, w, m)) {
            device.launch(MATMUL_WARPGROUP_BF16, WarpgroupMatmul.grid(m, n), out, a, w, bias == null ? out : bias, bias != null, m, n, k);
            return;
        }
        boolean wide = wideTensorCores(device, kernel);
        // k 64 a step (matmul.tc_deep, off until measured), where no vendor GEMM stands in for the kernel
        boolean deep = !wide && Tuning.get(device, "matmul.tc_deep", 0) == 1 && !device.hasOverride(kernel);
        int splits = prepareSplitK(device, kernel, out, m, n, k, wide);
        KernelRef chosen = wide ? (w.dtype() == DType.BF16 ? MATMUL_TC_BF16_WIDE : MATMUL_TC_F16_WIDE)
                : deep ? (w.dtype() == DType.BF16 ? MATMUL_TC_BF16_DEEP : MATMUL_TC_F16_DEEP) : kernel;
        BatchInvariance.launch(device, chosen, TensorCoreMatmul.grid(m, n, splits, wide), out, a, w, bias == null ? out : bias, bias != null, m, n,
                k, a.dtype() == DType.F32, splits);
    }

    /**
     * out[m, n] = a[m, k] · (w[n, k] (int8) * scales[n])ᵀ + bias[n] (or null); see {@link #quantizeInt8}.
     * Up to 8 rows the tensor-core GEMV where the device tunes it ({@link Int8TensorGemv}); the GEMV for decode-sized m;
     * larger m the tensor-core GEMM that dequantises in registers
     * ({@link QuantTensorGemm}) or the vendor GEMM over dequantised rows ({@link DequantizedGemm}) where the
     * device tunes them, else the tensor-core or tiled int8 kernel.
     */
    public static void launchMatmulInt8(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales,
            DeviceBuffer bias, int m, int n, int k) {
        checkShapes(out, a, w, bias, m, n, k);
        Shapes.atLeast(scales, n, "int8 matmul scales");
        DeviceBuffer b = bias == null ? out : bias;
        if (Int8TensorGemv.applies(device, m, k)) {
            Int8TensorGemv.launch(device, out, a, w, scales, bias, m, n, k);
        } else if (QuantTensorGemm.applies(device, m, k)) {
            QuantTensorGemm.launchInt8(device, out, a, w, scales, bias, m, n, k);
        } else if (int8Dequantises(device, m, k)) {
            DequantizedGemm.launchInt8(device, out, a, w, scales, bias, m, n, k);
        } else if (useGemv(device, m)) {
            // a warp per team of four rows, or on int8 activations teams of several warps where the tuning
            // matmul.int8_q8_items_per_unit asks the launch for that many items per compute unit (fillingGemvColumns, as int4
            // does): 4,096 rows in warp teams are 1,024 warps, 8 an SM of an H100's 132, each with 64 bytes in flight
            boolean q8 = int8ActivationsApply(device, m, k);
            int rowsPerTeam = int8RowsPerTeam(m, k);
            int columns = q8 ? int8Q8Columns(device, n) : gemvColumns(device, m);
            device.launch(q8 ? MATMUL_INT8_GEMV_Q8 : MATMUL_INT8_GEMV,
                    gemvGrid(m, n, gemvLocal(device), columns, rowsPerTeam), out, a, w, scales, b, bias != null, m, n, k, columns);
        } else if (Tuning.get(device, "matmul.tensor_cores", 0) == 1 && k % 8 == 0 && device.supports(Feature.MMA_BF16)) {
            boolean wide = wideTensorCores(device, MATMUL_TC_INT8);
            int splits = prepareSplitK(device, MATMUL_TC_INT8, out, m, n, k, wide);
            BatchInvariance.launch(device, wide ? MATMUL_TC_INT8_WIDE : MATMUL_TC_INT8, TensorCoreMatmul.grid(m, n, splits, wide), out, a, w,
                    scales, b, bias != null, m, n, k, a.dtype() == DType.F32, splits);
        } else {
            BatchInvariance.launch(device, MATMUL_INT8_TILED, tiledGrid(m, n, Tuning.get(device, "matmul.tile", 16)), out, a, w, scales, b, bias != null,
                    m, n, k);
        }
    }

    /**
     * Whether {@link #launchTensorCores} takes Hopper's warpgroup MMA ({@link WarpgroupMatmul}): bf16 weights and activations, at least
     * {@link WarpgroupMatmul#TILE_M} rows, where the device has it and tunes {@code matmul.tc_warpgroup} to 1, and no vendor GEMM
     * stands in for the tensor-core kernel; never under {@link BatchInvariance} (a row's sums would depend on m picking the kernel).
     */
    static boolean usesWarpgroupMma(Device device, KernelRef kernel, DeviceBuffer a, DeviceBuffer w, int m) {
        return w.dtype() == DType.BF16 && a.dtype() == DType.BF16 && m >= WarpgroupMatmul.TILE_M && Tuning.get(device, "matmul.tc_warpgroup", 0) == 1
                && device.supports(Feature.WARPGROUP_MMA) && !device.hasOverride(kernel) && !BatchInvariance.enabled();
    }

    /** The grid of the tensor-core kernels: a group of {@link TensorCoreMatmul#LOCAL} per 128 x 128 tile of out[m, n] and split of k. */
    public static Grid tensorCoreGrid(int m, int n, int kSplits) {
        return TensorCoreMatmul.grid(m, n, kSplits, false);
    }

    /**
     * Whether the Java tensor-core GEMM runs on 128 x 256 tiles here ({@link #MATMUL_TC_BF16_WIDE}): where the
     * device's tuning {@code matmul.tc_wide} is 1 (off by default: no gain on an H100, session 14), and never where a vendor
     * GEMM stands in for {@code narrow}. Each output's sums are the same in either (same k order, no split-k change).
     */
    static boolean wideTensorCores(Device device, KernelRef narrow) {
        return Tuning.get(device, "matmul.tc_wide", 0) == 1 && !device.hasOverride(narrow);
    }

    /**
     * Prepares a tensor-core launch's split-k and returns its number of k-splits; when that is more
     * than one, it also launches the zeroing of {@code out} that the split groups add into. Splits:
     * as many as bring the launch's work-groups up to the tuning value {@code matmul.tc_groups} (0:
     * never split; CUDA: two groups per SM of an H200), each split at least 8 steps of k. A decode-sized m has one row of tiles: 64 x 4096 x 4096 is 32
     * groups, a quarter of the SMs, each walking all of k. A device that runs its own GEMM for the
     * kernel (cuBLAS) is not split, nor is anything under {@link BatchInvariance} (its atomic adds land in any order).
     */
    static int prepareSplitK(Device device, KernelRef kernel, DeviceBuffer out, int m, int n, int k, boolean wide) {
        if (device.hasOverride(kernel) || BatchInvariance.enabled()) {
            return 1;
        }
        int steps = (k + TensorCoreMatmul.STEP - 1) / TensorCoreMatmul.STEP;
        int splits = splitsToFill(device, TensorCoreMatmul.tiles(m, n, wide), steps / 8);
        if (splits > 1) {
            Elementwise.launchFill(device, out, 0f, m * n);
        }
        return splits;
    }

    /**
     * Splits of k that bring a launch of {@code tiles} work-groups up to the tuning value {@code matmul.tc_groups}
     * (0: never split), at most {@code maxSplits}, at least 1: the tensor-core GEMMs' split-k.
     */
    static int splitsToFill(Device device, long tiles, int maxSplits) {
        int want = Tuning.get(device, "matmul.tc_groups", 0);
        return (int) Math.max(1, Math.min((want + tiles - 1) / tiles, maxSplits));
    }

    /** The grid of the tiled kernels: tile x tile groups covering out[m, n], x along n. */
    public static Grid tiledGrid(int m, int n, int tile) {
        if (tile < 1 || tile > MAX_TILE) {
            throw new IllegalArgumentException("matmul tile must be 1 to " + MAX_TILE + ", got " + tile);
        }
        return Grid.of(roundUp(n, tile), roundUp(m, tile)).local(tile, tile);
    }

    /**
     * The grid of the GEMV kernels: one group of {@code local} items per ({@code columns} columns,
     * block of GEMV_ROWS rows); {@code columns} is a power of two that divides {@code local}.
     */
    public static Grid gemvGrid(int m, int n, int local, int columns) {
        Shapes.localSize(local, MAX_LOCAL, "matmul GEMV");
        if (columns < 1 || Integer.bitCount(columns) != 1 || local % columns != 0) {
            throw new IllegalArgumentException("GEMV columns per group must be a power of two dividing the local size " + local + ", got " + columns);
        }
        return Grid.of((long) (n + columns - 1) / columns * local, (m + GEMV_ROWS - 1) / GEMV_ROWS).local(local, 1);
    }

    /** The GEMV grid for teams of {@code rowsPerTeam} weight rows each (see {@link #GEMV_ROWS_PER_TEAM}). */
    public static Grid gemvGrid(int m, int n, int local, int columns, int rowsPerTeam) {
        return gemvGrid(m, (n + rowsPerTeam - 1) / rowsPerTeam, local, columns);
    }

    /**
     * Output columns (teams) per GEMV work-group for {@code n} weight rows taken {@code rowsPerTeam} a team: the
     * tuning's {@link #gemvColumns}, halved (each team twice the items, splitting k wider) while the launch has
     * fewer than {@code matmul.gemv_items_per_unit} work-items per compute unit (CUDA: 3,072, some four waves of
     * resident warps on an H100). Four rows a team cut the batch-1 GEMV's grid fourfold (a 4096-row matrix got
     * 128 groups for 132 SMs). The int4 GEMV takes it (8B decode 148 -> 161 tok/s on an H100); the int8 one does
     * not (190 -> 158: its warp teams reduce with shuffles, wider ones through local memory and barriers).
     */
    public static int fillingGemvColumns(Device device, int m, int n, int rowsPerTeam) {
        return fillingGemvColumns(device, m, n, rowsPerTeam, Tuning.get(device, "matmul.gemv_items_per_unit", 0));
    }

    /** {@link #fillingGemvColumns} towards {@code itemsPerUnit} work-items per compute unit instead of the tuning's. */
    public static int fillingGemvColumns(Device device, int m, int n, int rowsPerTeam, int itemsPerUnit) {
        int columns = gemvColumns(device, m);
        long target = (long) itemsPerUnit * device.computeUnits();
        int local = gemvLocal(device);
        long teams = (n + rowsPerTeam - 1) / rowsPerTeam;
        while (rowsPerTeam > 1 && columns > 1 && teams * (local / columns) < target) {
            columns /= 2;
        }
        return columns;
    }

    /** The GEMV's work-group size on {@code device}. */
    public static int gemvLocal(Device device) {
        return Tuning.get(device, "reduce.local", 64);
    }

    /**
     * Output columns per GEMV work-group: the tuning {@code matmul.gemv_columns} for one row (batch-1
     * decode, where a warp per column streams the weights fastest on the H100), one column for more
     * rows (where the whole group on one column was faster; docs/benchmarks.md).
     */
    public static int gemvColumns(Device device, int m) {
        return m == 1 ? Tuning.get(device, "matmul.gemv_columns", 1) : 1;
    }

    /**
     * Whether m rows take the GEMV kernels (decode-sized m, the tuning {@code matmul.gemv_max_m}); never under
     * {@link BatchInvariance}, where one kernel serves every m so that a row's sums do not depend on it.
     */
    static boolean useGemv(Device device, int m) {
        return !BatchInvariance.enabled() && m <= Tuning.get(device, "matmul.gemv_max_m", 16);
    }

    private static long roundUp(long x, long multiple) {
        return (x + multiple - 1) / multiple * multiple;
    }

    private static void checkShapes(DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer bias, int m, int n, int k) {
        Shapes.positive(m, "matmul m");
        Shapes.positive(n, "matmul n");
        Shapes.positive(k, "matmul k");
        Shapes.intIndexable((long) m * k, "matmul input a");
        Shapes.intIndexable((long) n * k, "matmul weight");
        Shapes.intIndexable((long) m * n, "matmul output");
        Shapes.atLeast(out, (long) m * n, "matmul output");
        Shapes.atLeast(a, (long) m * k, "matmul input a");
        Shapes.atLeast(w, (long) n * k, "matmul weight");
        if (bias != null) {
            Shapes.atLeast(bias, n, "matmul bias");
        }
    }

    // ---- int8 weight quantisation ----------------------------------------------------------

    /** Int8 weights [rows, cols] and their per-row f32 scales. */
    public record Int8Weights(ByteArray weights, FloatArray scales) {
    }

    /**
     * Symmetric per-row int8 quantisation of a weight [rows, cols] of any float dtype:
     * scale = max|w| / 127, q = round-half-even(w / scale), so |w - q * scale| <= scale / 2.
     * An all-zero row gets scale 0 (and zero weights).
     */
    public static Int8Weights quantizeInt8(NativeArray w, int rows, int cols) {
        Shapes.positive(rows, "rows");
        Shapes.positive(cols, "cols");
        if ((long) rows * cols != w.getSize()) {
            throw new IllegalArgumentException("weight has " + w.getSize() + " elements, not " + rows + " x " + cols);
        }
        if (w.dtype() != DType.F32 && w.dtype() != DType.F16 && w.dtype() != DType.BF16) {
            throw new IllegalArgumentException("only float weights can be quantised, got " + w.dtype());
        }
        ByteArray q = ByteArray.allocate(rows * cols);
        FloatArray scales = FloatArray.allocate(rows);
        for (int r = 0; r < rows; r++) {
            float maxAbs = 0f;
            for (int c = 0; c < cols; c++) {
                maxAbs = Math.max(maxAbs, Math.abs(w.getFloat(r * cols + c)));
            }
            if (!Float.isFinite(maxAbs)) {
                throw new IllegalArgumentException("weight row " + r + " holds a non-finite value");
            }
            float scale = maxAbs / 127f;
            scales.set(r, scale);
            for (int c = 0; c < cols; c++) {
                float v = scale == 0f ? 0f : w.getFloat(r * cols + c) / scale;
                q.set(r * cols + c, (byte) Math.max(-127, Math.min(127, (int) Math.rint(v))));
            }
        }
        return new Int8Weights(q, scales);
    }
}
