package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Batch-1 GEMVs that take a decoder layer's residual norm and residual add into themselves, so that a decode step at
 * batch 1 launches no norm kernel: two of them a layer, each a few microseconds of one work-group's latency plus a
 * launch, some 0.45 ms of an 8B step of 5-6 ms on an H200 (docs/benchmarks.md, session 13's profile).
 *
 * <ul>
 *   <li><b>Normed</b>: y = W · rmsnorm(x) = (W · (x ∘ g)) / rms(x). Every team of a batch-1 GEMV reads all of x anyway;
 *       as it reads it multiplies each element by the norm's weight g and adds up the squares, and its first item
 *       scales the row sums by 1 / rms(x) = rsqrt(sum x² / k + eps) ({@link Matmul#foldNorm}, {@link Matmul#NORM_SLOT}).
 *       The input is the residual stream itself; the normed vector is never written.</li>
 *   <li><b>Adding</b>: out += W · x: the o and down projections add into the residual stream (each output element
 *       belongs to one team, and the GEMV reads another buffer), which the next normed GEMV reads.</li>
 * </ul>
 *
 * The sums are the unfused path's up to f32 rounding (the norm's factor applied after the dot product instead of to
 * each element). Float (f32/f16/bf16), int8 and int4 weights, at the GEMV shapes {@link Matmul} itself uses at
 * batch 1; GGUF blocks keep the unfused path. The int8-activation GEMVs ({@code matmul.int8_q8}, {@code matmul.int4_q8},
 * and their gated forms) fold where the tuning {@code matmul.gemv_fold_q8} is 1 as well (on for CUDA since session 32: 8B
 * int8 batch 1 +4 % on an H100): they round x ∘ g (not the normed vector) to int8, which is the same rounding up to the
 * norm's scalar factor 1 / rms(x), applied with the row scales.
 * Tuning {@code matmul.gemv_fold=1} turns it on ({@link #enabled}; on for CUDA since session 31: 8B bf16 batch 1 +1.7 % on an
 * H100). Session 14 had measured an earlier form slower (int8 240.2 -> 230.9 tok/s, int4 241.1 -> 222.0, bf16 unchanged).
 */
public final class FoldedGemv {
    public static final KernelRef FLOAT_NORMED = KernelRef.of(FoldedGemv.class, "floatNormed");
    public static final KernelRef FLOAT_ADDING = KernelRef.of(FoldedGemv.class, "floatAdding");
    public static final KernelRef GATED_NORMED = KernelRef.of(FoldedGemv.class, "gatedNormed");
    public static final KernelRef INT8_NORMED = KernelRef.of(FoldedGemv.class, "int8Normed");
    public static final KernelRef INT8_ADDING = KernelRef.of(FoldedGemv.class, "int8Adding");
    public static final KernelRef INT4_NORMED = KernelRef.of(FoldedGemv.class, "int4Normed");
    public static final KernelRef INT4_ADDING = KernelRef.of(FoldedGemv.class, "int4Adding");
    public static final KernelRef INT8_NORMED_Q8 = KernelRef.of(FoldedGemv.class, "int8NormedQ8");
    public static final KernelRef INT8_ADDING_Q8 = KernelRef.of(FoldedGemv.class, "int8AddingQ8");
    public static final KernelRef INT8_GATED_NORMED_Q8 = KernelRef.of(FoldedGemv.class, "int8GatedNormedQ8");
    public static final KernelRef INT4_NORMED_Q8 = KernelRef.of(FoldedGemv.class, "int4NormedQ8");
    public static final KernelRef INT4_ADDING_Q8 = KernelRef.of(FoldedGemv.class, "int4AddingQ8");
    public static final KernelRef INT4_GATED_NORMED_Q8 = KernelRef.of(FoldedGemv.class, "int4GatedNormedQ8");

    private FoldedGemv() {
    }

    /**
     * What a batch-1 GEMV takes into itself: the RMSNorm its input goes through ({@code normWeight}, {@code eps}), or
     * adding its product into the output instead of writing it.
     */
    public record Fold(DeviceBuffer normWeight, float eps, boolean adding) {
        public static Fold rmsNorm(DeviceBuffer weight, float eps) {
            return new Fold(weight, eps, false);
        }

        public static final Fold ADD = new Fold(null, 0f, true);

        boolean normed() {
            return normWeight != null;
        }
    }

    /** Whether this device folds norms and residual adds into its batch-1 GEMVs: tuning {@code matmul.gemv_fold} 1, not under batch invariance. */
    public static boolean enabled(Device device) {
        return Tuning.get(device, "matmul.gemv_fold", 0) == 1 && !BatchInvariance.enabled() && Matmul.useGemv(device, 1);
    }

    /** Whether a batch-1 product by float weights [n, k] of {@code dtype} folds here. */
    public static boolean floatApplies(Device device, DType dtype, int k) {
        return enabled(device) && (dtype == DType.F32 || dtype == DType.F16 || dtype == DType.BF16) && k % 8 == 0;
    }

    /** Whether a batch-1 gated [gate; up] product folds its input's norm here (where the gated GEMV runs at all). */
    public static boolean gatedApplies(Device device, DType dtype, int k) {
        return floatApplies(device, dtype, k) && Matmul.gatedGemvApplies(device, 1, k);
    }

    /** Whether the int8-activation GEMVs fold too: tuning {@code matmul.gemv_fold_q8} 1. */
    static boolean q8Folds(Device device) {
        return Tuning.get(device, "matmul.gemv_fold_q8", 0) == 1;
    }

    /**
     * Whether a batch-1 product by int8 rows folds here: four rows a team (k a multiple of 16); on int8 activations where
     * {@link #q8Folds}.
     */
    public static boolean int8Applies(Device device, int k) {
        return enabled(device) && Matmul.int8RowsPerTeam(1, k) > 1 && (q8Folds(device) || !Matmul.int8ActivationsApply(device, 1, k));
    }

    /** Whether a batch-1 gated [gate; up] product by int8 rows folds its input's norm here (where the int8 gated GEMV runs). */
    public static boolean int8GatedApplies(Device device, int k) {
        return enabled(device) && q8Folds(device) && Matmul.gatedInt8Applies(device, 1, k);
    }

    /**
     * Whether a batch-1 product by packed rows of {@code format} folds here: int4 blocks at four rows a team; on int8
     * activations where {@link #q8Folds}.
     */
    public static boolean packedApplies(Device device, QuantFormat format, int k) {
        return enabled(device) && packedRowsPerTeam(device, format, k) > 1 && (q8Folds(device) || !packedOnInt8(device, format, k));
    }

    /** Whether a batch-1 gated [gate; up] product by int4 blocks folds its input's norm here (where the int4 gated GEMV runs). */
    public static boolean packedGatedApplies(Device device, QuantFormat format, int k) {
        return enabled(device) && q8Folds(device) && !Int4TensorGemv.applies(device, format, 1, k) && QuantMatmul.gatedApplies(device, format, 1, k);
    }

    /** Whether the batch-1 int4 product of {@code format} over k runs on int8 activations here. */
    private static boolean packedOnInt8(Device device, QuantFormat format, int k) {
        return QuantMatmul.int8ActivationsApply(device, format.code(), packedRowsPerTeam(device, format, k));
    }

    /** Weight rows a team of the batch-1 GEMV over packed rows of {@code format} (as {@link QuantMatmul#launch} picks them). */
    private static int packedRowsPerTeam(Device device, QuantFormat format, int k) {
        return QuantMatmul.rowsPerTeam(format.code(), 1, k, Matmul.gemvLocal(device) / Matmul.gemvColumns(device, 1));
    }

    // ---- kernels -------------------------------------------------------------------------------

    public static void floatNormed(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, FloatArray bias, boolean hasBias, int n, int k,
            int columns, NativeArray normWeight, float eps) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        Matmul.gemvSums(ctx, partial, a, w, 1, n, k, columns, normWeight, true);
        Matmul.gemvEpilogue(ctx, partial, out, bias, false, bias, hasBias, 1, n, columns, 1, true, k, eps, false);
    }

    public static void floatAdding(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, FloatArray bias, boolean hasBias, int n, int k,
            int columns) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        Matmul.gemvSums(ctx, partial, a, w, 1, n, k, columns, w, false);
        Matmul.gemvEpilogue(ctx, partial, out, bias, false, bias, hasBias, 1, n, columns, 1, false, k, 0f, true);
    }

    public static void gatedNormed(KernelContext ctx, FloatArray out, FloatArray a, NativeArray w, FloatArray bias, boolean hasBias, int width,
            int k, int columns, int kind, NativeArray normWeight, float eps) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        Matmul.gatedSums(ctx, partial, out, a, w, bias, hasBias, width, k, columns, kind, normWeight, true, eps);
    }

    public static void int8Normed(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns, NativeArray normWeight, float eps) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        Matmul.int8RowSums(ctx, partial, a, w, n, k, columns, normWeight, true);
        Matmul.gemvEpilogue(ctx, partial, out, scales, true, bias, hasBias, 1, n, columns, Matmul.GEMV_ROWS_PER_TEAM, true, k, eps, false);
    }

    public static void int8Adding(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        Matmul.int8RowSums(ctx, partial, a, w, n, k, columns, w, false);
        Matmul.gemvEpilogue(ctx, partial, out, scales, true, bias, hasBias, 1, n, columns, Matmul.GEMV_ROWS_PER_TEAM, false, k, 0f, true);
    }

    public static void int4Normed(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns, NativeArray normWeight, float eps) {
        int4(ctx, out, a, w, format, bias, hasBias, n, k, columns, normWeight, true, eps, false);
    }

    public static void int4Adding(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns) {
        int4(ctx, out, a, w, format, bias, hasBias, n, k, columns, w, false, 0f, true);
    }

    /** {@link QuantMatmul#matmulQuantGemv}'s batch-1 int4 path (four rows a team) with a fold. */
    private static void int4(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias, int n,
            int k, int columns, NativeArray normWeight, boolean normed, float eps, boolean adding) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        float[] acc = new float[Matmul.GEMV_ROWS];
        for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        int team = ctx.localGroupSizeX / columns;
        int lane = ctx.localIdx % team;
        QuantMatmul.int4RowSums(acc, a, w, format, (ctx.groupIdx * columns + ctx.localIdx / team) * Matmul.GEMV_ROWS_PER_TEAM, n, lane, team, k,
                normWeight, normed);
        Matmul.gemvReduce(ctx, partial, acc, Matmul.GEMV_ROWS_PER_TEAM, team, normed);
        Matmul.gemvEpilogue(ctx, partial, out, bias, false, bias, hasBias, 1, n, columns, Matmul.GEMV_ROWS_PER_TEAM, normed, k, eps, adding);
    }

    public static void int8NormedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns, NativeArray normWeight, float eps) {
        Matmul.int8GemvQ8(ctx, out, a, w, scales, bias, hasBias, n, k, columns, normWeight, true, eps, false);
    }

    public static void int8AddingQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns) {
        Matmul.int8GemvQ8(ctx, out, a, w, scales, bias, hasBias, n, k, columns, w, false, 0f, true);
    }

    public static void int8GatedNormedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int width, int k, int columns, int kind, NativeArray normWeight, float eps) {
        Matmul.int8GatedQ8(ctx, out, a, w, scales, bias, hasBias, width, k, columns, kind, normWeight, true, eps);
    }

    public static void int4NormedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns, NativeArray normWeight, float eps) {
        QuantMatmul.int4GemvQ8(ctx, out, a, w, format, bias, hasBias, n, k, columns, normWeight, true, eps, false);
    }

    public static void int4AddingQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns) {
        QuantMatmul.int4GemvQ8(ctx, out, a, w, format, bias, hasBias, n, k, columns, w, false, 0f, true);
    }

    public static void int4GatedNormedQ8(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias,
            boolean hasBias, int width, int k, int columns, int kind, NativeArray normWeight, float eps) {
        QuantMatmul.int4GatedQ8(ctx, out, a, w, format, bias, hasBias, width, k, columns, kind, normWeight, true, eps);
    }

    // ---- launchers -----------------------------------------------------------------------------

    /** out[n] (=, or += with {@link Fold#ADD}) w[n, k] · x (normed as {@code fold} says) + bias; see {@link #floatApplies}. */
    public static void launchFloat(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, int n, int k, Fold fold) {
        check(device, floatApplies(device, w.dtype(), k), "float", out, x, w.elements(), (long) n * k, bias, n, k, fold);
        int columns = Matmul.gemvColumns(device, 1);
        DeviceBuffer b = bias == null ? out : bias;
        if (fold.normed()) {
            device.launch(FLOAT_NORMED, Matmul.gemvGrid(1, n, Matmul.gemvLocal(device), columns, 1), out, x, w, b, bias != null, n, k, columns,
                    fold.normWeight(), fold.eps());
        } else {
            device.launch(FLOAT_ADDING, Matmul.gemvGrid(1, n, Matmul.gemvLocal(device), columns, 1), out, x, w, b, bias != null, n, k, columns);
        }
    }

    /** out[width] = act(gate · x') * (up · x'), x' = rmsnorm(x) as {@code fold} says, w [gate; up] ({@link Matmul#launchGatedGemv}). */
    public static void launchGated(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, Activations.Kind act,
            int width, int k, Fold fold) {
        checkGated(device, gatedApplies(device, w.dtype(), k), w.dtype().toString(), out, x, w.elements(), 2L * width * k, bias, width, k, fold);
        int columns = Matmul.gemvColumns(device, 1);
        device.launch(GATED_NORMED, Matmul.gemvGrid(1, width, Matmul.gemvLocal(device), columns, 2), out, x, w, bias == null ? out : bias,
                bias != null, width, k, columns, act.code, fold.normWeight(), fold.eps());
    }

    /** {@link #launchFloat} over int8 rows with a scale each ({@link Matmul#quantizeInt8}); see {@link #int8Applies}. */
    public static void launchInt8(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer codes, DeviceBuffer scales, DeviceBuffer bias,
            int n, int k, Fold fold) {
        check(device, int8Applies(device, k), "int8", out, x, codes.elements(), (long) n * k, bias, n, k, fold);
        Shapes.atLeast(scales, n, "int8 scales");
        DeviceBuffer b = bias == null ? out : bias;
        boolean q8 = Matmul.int8ActivationsApply(device, 1, k); // the int8-activation GEMV, on its own grid (Matmul.launchMatmulInt8)
        if (q8 && StagedQ8Gemv.appliesInt8(device, k)) {
            StagedQ8Gemv.launchInt8(device, out, x, codes, scales, bias, n, k, fold);
            return;
        }
        int columns = q8 ? Matmul.int8Q8Columns(device, n) : Matmul.gemvColumns(device, 1);
        var grid = Matmul.gemvGrid(1, n, Matmul.gemvLocal(device), columns, Matmul.GEMV_ROWS_PER_TEAM);
        if (fold.normed()) {
            device.launch(q8 ? INT8_NORMED_Q8 : INT8_NORMED, grid, out, x, codes, scales, b, bias != null, n, k, columns, fold.normWeight(),
                    fold.eps());
        } else {
            device.launch(q8 ? INT8_ADDING_Q8 : INT8_ADDING, grid, out, x, codes, scales, b, bias != null, n, k, columns);
        }
    }

    /** {@link #launchFloat} over int4 blocks ({@link QuantMatmul#launch}'s batch-1 GEMV); see {@link #packedApplies}. */
    public static void launchPacked(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer blocks, QuantFormat format, DeviceBuffer bias,
            int n, int k, Fold fold) {
        check(device, packedApplies(device, format, k), format.toString(), out, x, blocks.byteSize(), n * format.rowBytes(k), bias, n, k, fold);
        boolean q8 = packedOnInt8(device, format, k);
        if (q8 && StagedQ8Gemv.appliesInt4(device, format, k)) {
            StagedQ8Gemv.launchInt4(device, out, x, blocks, format, bias, n, k, fold);
            return;
        }
        int columns = QuantMatmul.gemvColumns(device, 1, n, Matmul.GEMV_ROWS_PER_TEAM, q8);
        DeviceBuffer b = bias == null ? out : bias;
        var grid = Matmul.gemvGrid(1, n, Matmul.gemvLocal(device), columns, Matmul.GEMV_ROWS_PER_TEAM);
        if (fold.normed()) {
            device.launch(q8 ? INT4_NORMED_Q8 : INT4_NORMED, grid, out, x, blocks, format.code(), b, bias != null, n, k, columns,
                    fold.normWeight(), fold.eps());
        } else {
            device.launch(q8 ? INT4_ADDING_Q8 : INT4_ADDING, grid, out, x, blocks, format.code(), b, bias != null, n, k, columns);
        }
    }

    /**
     * Whether a fused q/k/v projection over int4 blocks folds the split after it too at batch 1 ({@link #launchPackedSplit}):
     * where it folds its norm ({@link #packedApplies}) on the staged int4 GEMV, {@link StagedQ8Gemv#splitApplies}.
     */
    public static boolean packedSplitApplies(Device device, QuantFormat format, int k, KvCache.QkvSplit split) {
        return packedApplies(device, format, k) && packedOnInt8(device, format, k) && StagedQ8Gemv.splitApplies(device, format, k, split);
    }

    /**
     * {@link #launchPacked} of a fused q/k/v projection with its norm folded, whose epilogue does {@link KvCache#splitQkv}'s
     * work for the one token ({@link StagedQ8Gemv#int4SplitNormed}): q, k and v apart and rotated, k and v into the pool.
     * The projection itself is written nowhere. See {@link #packedSplitApplies}.
     */
    public static void launchPackedSplit(Device device, DeviceBuffer x, DeviceBuffer blocks, QuantFormat format, DeviceBuffer bias, int k,
            Fold fold, KvCache.QkvSplit split) {
        int n = split.width();
        if (!fold.normed()) {
            throw new IllegalArgumentException("a q/k/v projection that splits its output folds its input's norm, not an add");
        }
        check(device, packedSplitApplies(device, format, k, split), format + " q/k/v", null, x, blocks.byteSize(), n * format.rowBytes(k), bias,
                n, k, fold);
        StagedQ8Gemv.launchInt4Split(device, x, blocks, format, bias, k, fold, split);
    }

    /** {@link #launchGated} over int8 rows [gate; up] with a scale each ({@link Matmul#launchGatedGemvInt8}); see {@link #int8GatedApplies}. */
    public static void launchInt8Gated(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer codes, DeviceBuffer scales, DeviceBuffer bias,
            Activations.Kind act, int width, int k, Fold fold) {
        checkGated(device, int8GatedApplies(device, k), "int8", out, x, codes.elements(), 2L * width * k, bias, width, k, fold);
        Shapes.atLeast(scales, 2L * width, "gated GEMV scales");
        if (StagedQ8Gemv.appliesInt8(device, k)) {
            StagedQ8Gemv.launchInt8Gated(device, out, x, codes, scales, bias, act, width, k, fold);
            return;
        }
        int columns = Matmul.gemvColumns(device, 1);
        device.launch(INT8_GATED_NORMED_Q8, Matmul.gemvGrid(1, width, Matmul.gemvLocal(device), columns, 2), out, x, codes, scales,
                bias == null ? out : bias, bias != null, width, k, columns, act.code, fold.normWeight(), fold.eps());
    }

    /** {@link #launchGated} over int4 blocks [gate; up] ({@link QuantMatmul#launchGated} at batch 1); see {@link #packedGatedApplies}. */
    public static void launchPackedGated(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer blocks, QuantFormat format, DeviceBuffer bias,
            Activations.Kind act, int width, int k, Fold fold) {
        checkGated(device, packedGatedApplies(device, format, k), format.toString(), out, x, blocks.byteSize(), 2L * width * format.rowBytes(k),
                bias, width, k, fold);
        if (StagedQ8Gemv.appliesInt4(device, format, k)) {
            StagedQ8Gemv.launchInt4Gated(device, out, x, blocks, format, bias, act, width, k, fold);
            return;
        }
        int columns = QuantMatmul.gatedColumns(device, width);
        device.launch(INT4_GATED_NORMED_Q8, Matmul.gemvGrid(1, width, Matmul.gemvLocal(device), columns, 2), out, x, blocks, format.code(),
                bias == null ? out : bias, bias != null, width, k, columns, act.code, fold.normWeight(), fold.eps());
    }

    /** The checks of a gated launch: a norm fold, then {@link #check} over [gate; up] and a bias of 2 width. */
    private static void checkGated(Device device, boolean applies, String what, DeviceBuffer out, DeviceBuffer x, long weightSize, long weightNeeds,
            DeviceBuffer bias, int width, int k, Fold fold) {
        if (!fold.normed()) {
            throw new IllegalArgumentException("the gated GEMV folds its input's norm, not an add into its output");
        }
        check(device, applies, "gated " + what, out, x, weightSize, weightNeeds, null, width, k, fold);
        if (bias != null) {
            Shapes.atLeast(bias, 2L * width, "gated GEMV bias [gate; up]");
        }
    }

    private static void check(Device device, boolean applies, String what, DeviceBuffer out, DeviceBuffer x, long weightSize, long weightNeeds,
            DeviceBuffer bias, int n, int k, Fold fold) {
        if (!applies) {
            throw new IllegalArgumentException("a batch-1 " + what + " GEMV with k = " + k + " does not fold a norm or an add on " + device.id()
                    + " (see FoldedGemv's applies checks)");
        }
        Shapes.positive(n, "folded GEMV n");
        Shapes.intIndexable(weightNeeds, "folded GEMV weight");
        if (weightSize < weightNeeds) {
            throw new IllegalArgumentException("the folded GEMV's weight holds " + weightSize + ", needs " + weightNeeds);
        }
        if (out != null) { // (null: the product is written nowhere, as where its epilogue splits it)
            Shapes.atLeast(out, n, "folded GEMV output");
        }
        Shapes.atLeast(x, k, "folded GEMV input");
        if (bias != null) {
            Shapes.atLeast(bias, n, "folded GEMV bias");
        }
        if (fold.normed()) {
            Shapes.atLeast(fold.normWeight(), k, "folded norm weight");
        }
    }
}
