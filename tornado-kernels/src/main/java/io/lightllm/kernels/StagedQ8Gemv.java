package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The batch-1 GEMVs on int8 activations ({@link Matmul#matmulInt8GemvQ8}, {@link QuantMatmul#matmulInt4GemvQ8} and their
 * folds and gated forms, {@link FoldedGemv}) with the activations rounded once a work-group, into local memory, before
 * any weight row meets them ("staged").
 *
 * <p>Those kernels round the activations inside their weight loop: every team reads all of x (and the norm's weight) as
 * f32, finds each group's largest magnitude (with shuffles, for int4's groups of 128) and rounds it, again for each team
 * of four rows. Over int4 rows that is some five instructions and three bytes of L1 traffic a weight byte, and an item
 * has one 4-byte word of each row in flight: the int4 GEMVs streamed at 1.1-1.7 TB/s of an H100's 3.0 (session 33's
 * profile), half of the bf16 ones. Here the group's items first round x (times the norm's weight where a norm is
 * folded) into codes in local memory, one scale a group (16 elements over int8 rows, a block's 128 over int4: the same
 * groups and the same codes as before, so the same results up to the order of f32 additions), then stream their rows
 * in 16-byte loads, four rows and the next step's loads in flight, meeting the codes with {@link KMath#dot4I8}.
 *
 * <p>k up to {@link #MAX_K} (the local arrays' size); the tunings {@code matmul.q8_staged_int4} and {@code matmul.q8_staged_int8}
 * turn it on ({@link #appliesInt4}, {@link #appliesInt8}), {@code matmul.q8_staged_items_per_unit} sizes its teams.
 */
public final class StagedQ8Gemv {
    /** The longest input row the local arrays hold (Qwen2-7B's down projection has k = 18,944). */
    public static final int MAX_K = 20480;
    /** Elements a staging item rounds at once (four words of codes), and the int8 rows' activation group. */
    static final int CHUNK = 16;
    /** Int4 codes of a row a weight-loop item meets at a step: one 16-byte load, a quarter of a block. */
    static final int INT4_STEP = 32;
    /** The int4 blocks' activation group: a block's elements, which share a weight scale. */
    static final int INT4_GROUP = 128;
    /**
     * Where in partial the staging leaves its sub-groups' sums of squares: past the rows' sums the reduction after the
     * weight loop writes (four rows of localSize), so an item still adding them up never meets a faster one's stores.
     */
    private static final int SQUARES_AT = Matmul.GEMV_ROWS_PER_TEAM * Matmul.MAX_LOCAL;

    public static final KernelRef INT8_NORMED = KernelRef.of(StagedQ8Gemv.class, "int8Normed");
    public static final KernelRef INT8_ADDING = KernelRef.of(StagedQ8Gemv.class, "int8Adding");
    public static final KernelRef INT8_GATED_NORMED = KernelRef.of(StagedQ8Gemv.class, "int8GatedNormed");

    private StagedQ8Gemv() {
    }

    /**
     * The int4 kernel {@code kernel} ({@link #int4Normed}, {@link #int4Adding} or {@link #int4GatedNormed}) for
     * {@code launch}: its weight stream {@code matmul.q8_staged_depth} steps deep ({@link #int4Rows}: 2, the default, or 3),
     * and where the launch's groups loop (capped at N a compute unit), compiled for N resident groups of its items (launch
     * bounds: at 256 items, 128 registers for two, 80 for three).
     */
    private static KernelRef int4Kernel(Device device, String kernel, Int4Launch launch) {
        int depth = Tuning.get(device, "matmul.q8_staged_depth", 2);
        if (depth != 2 && depth != 3) {
            throw new IllegalArgumentException("matmul.q8_staged_depth must be 2 or 3, not " + depth);
        }
        int local = (int) launch.grid().localSize(0);
        return INT4_KERNELS.computeIfAbsent(List.of(kernel, depth, launch.groupsPerUnit(), local), key -> {
            KernelRef ref = KernelRef.of(StagedQ8Gemv.class, kernel).with("depth", depth);
            return launch.groupsPerUnit() > 0 ? ref.withLaunchBounds(local, launch.groupsPerUnit()) : ref;
        });
    }

    /** The int4 kernels' refs by (name, depth, groups a unit, items a group). */
    private static final Map<List<Object>, KernelRef> INT4_KERNELS = new ConcurrentHashMap<>();

    // ---- kernels: the int8 rows (one f32 scale a row, applied by the epilogue) ----------------------------------------------

    public static void int8Normed(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns, NativeArray normW, float eps) {
        int8Rows(ctx, out, a, w, scales, bias, hasBias, n, k, columns, normW, true, eps, false, false, 0);
    }

    public static void int8Adding(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns) {
        int8Rows(ctx, out, a, w, scales, bias, hasBias, n, k, columns, w, false, 0f, true, false, 0);
    }

    /** A gated MLP's [gate; up] int8 rows and its activation (teams as {@link Matmul#int8GatedQ8}), the input normed. */
    public static void int8GatedNormed(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int width, int k, int columns, int kind, NativeArray normW, float eps) {
        int8Rows(ctx, out, a, w, scales, bias, hasBias, width, k, columns, normW, true, eps, false, true, kind);
    }

    /** The int8 kernels' body: n output rows, or with {@code gated} n outputs of [gate; up] rows ({@link #teamRows}). */
    private static void int8Rows(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, FloatArray scales, FloatArray bias,
            boolean hasBias, int n, int k, int columns, NativeArray normW, boolean normed, float eps, boolean adding, boolean gated, int kind) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        int[] codes = ctx.allocateIntLocalArray(MAX_K / 4);
        float[] steps = ctx.allocateFloatLocalArray(MAX_K / CHUNK);
        float[] acc = new float[Matmul.GEMV_ROWS];
        int[] rows = new int[Matmul.GEMV_ROWS_PER_TEAM];
        int team = ctx.localGroupSizeX / columns;
        teamRows(ctx, ctx.groupIdx, rows, n, columns, gated ? GATED : ROWS);
        float factor = int8Sums(ctx, acc, partial, codes, steps, a, normW, normed, eps, w, rows[0], rows[1], rows[2], rows[3], k, team);
        Matmul.gemvReduceByWarps(ctx, partial, acc, Matmul.GEMV_ROWS_PER_TEAM, team, false);
        store(ctx, ctx.groupIdx, partial, out, scales, true, bias, hasBias, n, columns, factor, adding, gated, kind);
    }

    // ---- kernels: the int4 blocks (QuantBlocks.INT4, INT4_ZP) -----------------------------------------------------------------

    public static void int4Normed(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns, NativeArray normW, float eps, int depth) {
        int4Rows(ctx, out, a, w, format, bias, hasBias, n, k, columns, normW, true, eps, false, false, 0, depth);
    }

    public static void int4Adding(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns, int depth) {
        int4Rows(ctx, out, a, w, format, bias, hasBias, n, k, columns, w, false, 0f, true, false, 0, depth);
    }

    /** A gated MLP's [gate; up] int4 rows and its activation (teams as {@link QuantMatmul#int4GatedQ8}), the input normed. */
    public static void int4GatedNormed(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias,
            boolean hasBias, int width, int k, int columns, int kind, NativeArray normW, float eps, int depth) {
        int4Rows(ctx, out, a, w, format, bias, hasBias, width, k, columns, normW, true, eps, false, true, kind, depth);
    }

    /**
     * The int4 kernels' body. The group stages its activations once ({@link #stage}), then takes its tiles of
     * {@code columns} teams: tiles groupIdx, groupIdx + groups, .. of {@link #tiles} (one, where the grid has a group a
     * tile; several, where {@code matmul.q8_staged_groups_per_unit} caps the grid, {@link #int4Launch}). A team's four rows
     * meet the staged codes a step at a time ({@link #int4Step}); the sums are reduced and stored as {@link #int8Rows}'s
     * (the blocks' scales applied in the sums, so the epilogue has none).
     *
     * <p>An item's weight loads are one stream over its tiles (position p: step p % perTile of its p / perTile-th tile) kept
     * {@code depth} steps deep (2 or 3, bound at the kernel ref) in a ring of that many register buffers: step p meets
     * buffer p % depth, which then loads step p + depth. No buffer is copied into another, so the loads in flight are never
     * waited for before the step that needs them (copying the next step's registers into the current one's, as this loop
     * first did, made each item wait for step p + 1 before it could issue p + 2: one step in flight, not two). The first
     * tile's first steps load while the group stages; a tile's last steps load the next tile's first.
     */
    private static void int4Rows(KernelContext ctx, FloatArray out, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias,
            int n, int k, int columns, NativeArray normW, boolean normed, float eps, boolean adding, boolean gated, int kind, int depth) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        int[] codes = ctx.allocateIntLocalArray(MAX_K / 4);
        float[] steps = ctx.allocateFloatLocalArray(MAX_K / INT4_GROUP);
        float[] acc = new float[Matmul.GEMV_ROWS];
        int[] rows = new int[Matmul.GEMV_ROWS_PER_TEAM];
        int[] aheadRows = new int[Matmul.GEMV_ROWS_PER_TEAM];
        int[] q0 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] q1 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] q2 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        float[] terms0 = new float[2 * Matmul.GEMV_ROWS_PER_TEAM];
        float[] terms1 = new float[2 * Matmul.GEMV_ROWS_PER_TEAM];
        float[] terms2 = new float[2 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] word = new int[1];
        int[] lo = new int[4];
        int[] hi = new int[4];
        int layout = gated ? GATED : ROWS;
        int team = ctx.localGroupSizeX / columns;
        int groups = ctx.globalGroupSizeX / ctx.localGroupSizeX;
        int mine = (tiles(n, columns, gated) - ctx.groupIdx + groups - 1) / groups; // this group's tiles (every group has one)
        int lane = ctx.localIdx % team;
        int perTile = perTile(lane, k, team);
        int rowBytes = k / INT4_GROUP * QuantBlocks.blockBytes(format);
        loadFirst(ctx, w, q0, q1, q2, terms0, terms1, terms2, word, format, aheadRows, k, lane, perTile, rowBytes, mine, groups, team, n, columns,
                layout, depth);
        float factor = stage(ctx, partial, codes, steps, a, k, INT4_GROUP, normW, normed, eps);
        for (int t = 0; t < mine; t++) {
            int tile = ctx.groupIdx + t * groups;
            int4TileSums(ctx, partial, acc, codes, steps, w, q0, q1, q2, terms0, terms1, terms2, word, lo, hi, format, rows, aheadRows, k, lane,
                    perTile, rowBytes, t, tile, mine, groups, team, n, columns, layout, depth);
            store(ctx, tile, partial, out, bias, false, bias, hasBias, n, columns, factor, adding, gated, kind);
            ctx.localBarrier(); // the next tile's reduction writes partial where this one's store reads
        }
    }

    /**
     * A fused q/k/v projection's int4 rows at batch 1, its input normed, with {@link KvCache#splitQkv}'s work as its
     * epilogue: q and k rotated, q, k and v apart, k and v into the pools (the split's arguments after eps, as
     * {@link KvCache.QkvSplit} gives them), so that no split kernel runs after it. Its teams take their four rows as two
     * rotary pairs ({@link #pairLayout}), so that the item storing a team's sums holds both elements of each pair.
     */
    public static void int4SplitNormed(KernelContext ctx, FloatArray a, ByteArray w, int format, FloatArray bias, boolean hasBias, int n, int k,
            int columns, NativeArray normW, float eps, NativeArray q, FloatArray kOut, FloatArray vOut, NativeArray kPool, NativeArray vPool,
            boolean toPool, IntArray destIndex, IntArray positions, FloatArray invFreq, int qHeads, int kvHeads, int headDim, int rotaryDim,
            boolean interleaved, float attentionScaling, float queryScale, int slots, int depth) {
        float[] partial = ctx.allocateFloatLocalArray(Matmul.GEMV_ROWS * Matmul.MAX_LOCAL);
        int[] codes = ctx.allocateIntLocalArray(MAX_K / 4);
        float[] steps = ctx.allocateFloatLocalArray(MAX_K / INT4_GROUP);
        float[] acc = new float[Matmul.GEMV_ROWS];
        int[] rows = new int[Matmul.GEMV_ROWS_PER_TEAM];
        int[] aheadRows = new int[Matmul.GEMV_ROWS_PER_TEAM];
        int[] q0 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] q1 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] q2 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        float[] terms0 = new float[2 * Matmul.GEMV_ROWS_PER_TEAM];
        float[] terms1 = new float[2 * Matmul.GEMV_ROWS_PER_TEAM];
        float[] terms2 = new float[2 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] word = new int[1];
        int[] lo = new int[4];
        int[] hi = new int[4];
        int layout = pairLayout(headDim, rotaryDim, interleaved);
        int team = ctx.localGroupSizeX / columns;
        int groups = ctx.globalGroupSizeX / ctx.localGroupSizeX;
        int mine = (tiles(n, columns, false) - ctx.groupIdx + groups - 1) / groups;
        int lane = ctx.localIdx % team;
        int perTile = perTile(lane, k, team);
        int rowBytes = k / INT4_GROUP * QuantBlocks.blockBytes(format);
        loadFirst(ctx, w, q0, q1, q2, terms0, terms1, terms2, word, format, aheadRows, k, lane, perTile, rowBytes, mine, groups, team, n, columns,
                layout, depth);
        float factor = stage(ctx, partial, codes, steps, a, k, INT4_GROUP, normW, true, eps);
        for (int t = 0; t < mine; t++) {
            int tile = ctx.groupIdx + t * groups;
            int4TileSums(ctx, partial, acc, codes, steps, w, q0, q1, q2, terms0, terms1, terms2, word, lo, hi, format, rows, aheadRows, k, lane,
                    perTile, rowBytes, t, tile, mine, groups, team, n, columns, layout, depth);
            storeSplit(ctx, tile, partial, rows, bias, hasBias, n, columns, factor, layout, q, kOut, vOut, kPool, vPool, toPool, destIndex,
                    positions, invFreq, qHeads, kvHeads, headDim, rotaryDim, interleaved, attentionScaling, queryScale, slots);
            ctx.localBarrier(); // the next tile's reduction writes partial where this one's store reads
        }
    }

    /**
     * {@link #int4SplitNormed}'s epilogue: the first item of each team of tile {@code tile} takes its two rotary pairs (rows
     * c and c + 2 of its four where they are the halves' pairs, else rows 2c and 2c + 1) through {@link KvCache#storePair}.
     */
    private static void storeSplit(KernelContext ctx, int tile, float[] partial, int[] rows, FloatArray bias, boolean hasBias, int n, int columns,
            float factor, int layout, NativeArray q, FloatArray kOut, FloatArray vOut, NativeArray kPool, NativeArray vPool, boolean toPool,
            IntArray destIndex, IntArray positions, FloatArray invFreq, int qHeads, int kvHeads, int headDim, int rotaryDim, boolean interleaved,
            float attentionScaling, float queryScale, int slots) {
        int team = ctx.localGroupSizeX / columns;
        int teamStart = ctx.localIdx / team * team;
        if (ctx.localIdx == teamStart && Matmul.GEMV_ROWS_PER_TEAM * (tile * columns + ctx.localIdx / team) < n) {
            for (int c = 0; c < 2; c++) {
                int first = layout == ROWS ? 2 * c : c;
                int second = layout == ROWS ? 2 * c + 1 : c + 2;
                int row = rows[first];
                float x0 = partial[first * ctx.localGroupSizeX + teamStart] * factor + (hasBias ? bias.get(row) : 0f);
                float x1 = partial[second * ctx.localGroupSizeX + teamStart] * factor + (hasBias ? bias.get(rows[second]) : 0f);
                int d = row % headDim; // the pair's index in its head: d within the first half, d / 2 where pairs are neighbours
                KvCache.storePair(x0, x1, 0, row / headDim, layout == ROWS ? d / 2 : d, q, kOut, vOut, kPool, vPool, toPool, destIndex, positions,
                        invFreq, qHeads, kvHeads, headDim, rotaryDim, interleaved, attentionScaling, queryScale, slots);
            }
        }
    }

    /**
     * The team layout that puts each of a team's rotary pairs ({@link KvCache#pairFirst}, {@link KvCache#pairSecond}) in
     * the team: {@link #ROWS} where a pair's elements are neighbours (interleaved rotary, or none), else (rotary over the
     * whole head in halves) the halves' offset, headDim / 2. Other geometries (a partial rotary in halves) have none:
     * {@link #splitApplies} turns them away.
     */
    static int pairLayout(int headDim, int rotaryDim, boolean interleaved) {
        return rotaryDim == 0 || interleaved ? ROWS : headDim / 2;
    }

    /** Team layouts ({@link #teamRows}): four neighbouring rows; a gated MLP's two gate rows and their up rows. */
    static final int ROWS = 0;
    static final int GATED = 1;

    /** An item's first {@code depth} steps of its weight stream into the ring's buffers ({@link #loadAhead}). */
    private static void loadFirst(KernelContext ctx, ByteArray w, int[] q0, int[] q1, int[] q2, float[] terms0, float[] terms1, float[] terms2,
            int[] word, int format, int[] aheadRows, int k, int lane, int perTile, int rowBytes, int mine, int groups, int team, int n, int columns,
            int layout, int depth) {
        boolean zeroPoint = format == QuantBlocks.INT4_ZP;
        int blocks = k / INT4_GROUP;
        loadAhead(ctx, w, q0, terms0, word, format, blocks, rowBytes, zeroPoint, aheadRows, 0, perTile, mine, groups, lane, team, n, columns, layout);
        loadAhead(ctx, w, q1, terms1, word, format, blocks, rowBytes, zeroPoint, aheadRows, 1, perTile, mine, groups, lane, team, n, columns, layout);
        if (depth == 3) {
            loadAhead(ctx, w, q2, terms2, word, format, blocks, rowBytes, zeroPoint, aheadRows, 2, perTile, mine, groups, lane, team, n, columns,
                    layout);
        }
    }

    /** The steps of a tile an item of lane {@code lane} takes: steps lane, lane + team, .. of a row's k / INT4_STEP. */
    private static int perTile(int lane, int k, int team) {
        int stepsPerRow = k / INT4_STEP;
        return lane < stepsPerRow ? (stepsPerRow - lane + team - 1) / team : 0;
    }

    /**
     * The t-th of this group's tiles, {@code tile}: its rows into {@code rows}, the team's four sums reduced into partial
     * ({@link Matmul#gemvReduceByWarps}), the item's weight stream run through the tile and on into the next's. The item's
     * lane, steps a tile and row length come from the caller, computed once (recomputed here each tile, nvcc 13 kept 15-22
     * more registers for the loop).
     */
    private static void int4TileSums(KernelContext ctx, float[] partial, float[] acc, int[] codes, float[] steps, ByteArray w, int[] q0, int[] q1,
            int[] q2, float[] terms0, float[] terms1, float[] terms2, int[] word, int[] lo, int[] hi, int format, int[] rows, int[] aheadRows,
            int k, int lane, int perTile, int rowBytes, int t, int tile, int mine, int groups, int team, int n, int columns, int layout, int depth) {
        boolean zeroPoint = format == QuantBlocks.INT4_ZP;
        int blocks = k / INT4_GROUP;
        int stepsPerRow = k / INT4_STEP;
        teamRows(ctx, tile, rows, n, columns, layout);
        for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        for (int j = 0; j < perTile; j++) {
            int s = lane + j * team;
            int position = t * perTile + j;
            int slot = position % depth;
            // a branch a buffer, so that each keeps its registers (an index into one array of buffers would not)
            if (slot == 0) {
                int4Step(acc, codes, steps, q0, terms0, lo, hi, s, zeroPoint);
                loadStream(ctx, w, q0, terms0, word, format, blocks, rowBytes, zeroPoint, rows, aheadRows, s, stepsPerRow, position, depth,
                        perTile, mine, groups, lane, team, n, columns, layout);
            } else if (slot == 1 || depth == 2) {
                int4Step(acc, codes, steps, q1, terms1, lo, hi, s, zeroPoint);
                loadStream(ctx, w, q1, terms1, word, format, blocks, rowBytes, zeroPoint, rows, aheadRows, s, stepsPerRow, position, depth,
                        perTile, mine, groups, lane, team, n, columns, layout);
            } else {
                int4Step(acc, codes, steps, q2, terms2, lo, hi, s, zeroPoint);
                loadStream(ctx, w, q2, terms2, word, format, blocks, rowBytes, zeroPoint, rows, aheadRows, s, stepsPerRow, position, depth,
                        perTile, mine, groups, lane, team, n, columns, layout);
            }
        }
        Matmul.gemvReduceByWarps(ctx, partial, acc, Matmul.GEMV_ROWS_PER_TEAM, team, false);
    }

    /**
     * Into the buffer dst, dstTerms that step s (stream position {@code position}) has just met: the stream's position
     * position + depth, from this tile's rows while the tile has that step ({@link #loadInt4Step}), else from the next
     * tile's ({@link #loadAhead}).
     */
    private static void loadStream(KernelContext ctx, ByteArray w, int[] dst, float[] dstTerms, int[] word, int format, int blocks, int rowBytes,
            boolean zeroPoint, int[] rows, int[] aheadRows, int s, int stepsPerRow, int position, int depth, int perTile, int mine, int groups,
            int lane, int team, int n, int columns, int layout) {
        if (s + depth * team < stepsPerRow) {
            loadInt4Step(w, dst, dstTerms, word, format, blocks, rows[0] * rowBytes, rows[1] * rowBytes, rows[2] * rowBytes, rows[3] * rowBytes,
                    s + depth * team, zeroPoint);
        } else {
            loadAhead(ctx, w, dst, dstTerms, word, format, blocks, rowBytes, zeroPoint, aheadRows, position + depth, perTile, mine, groups, lane,
                    team, n, columns, layout);
        }
    }

    /**
     * Position {@code position} of an item's stream of weight steps (step j = position % perTile of its t = position /
     * perTile-th tile, t < mine) into dst and dstTerms, where the stream has one; the tile's rows through {@code aheadRows}.
     */
    private static void loadAhead(KernelContext ctx, ByteArray w, int[] dst, float[] dstTerms, int[] word, int format, int blocks, int rowBytes,
            boolean zeroPoint, int[] aheadRows, int position, int perTile, int mine, int groups, int lane, int team, int n, int columns,
            int layout) {
        if (perTile > 0 && position / perTile < mine) {
            teamRows(ctx, ctx.groupIdx + position / perTile * groups, aheadRows, n, columns, layout);
            loadInt4Step(w, dst, dstTerms, word, format, blocks, aheadRows[0] * rowBytes, aheadRows[1] * rowBytes, aheadRows[2] * rowBytes,
                    aheadRows[3] * rowBytes, lane + position % perTile * team, zeroPoint);
        }
    }

    /**
     * Step s of the team's four rows (q and terms: a quarter of a block of each, 16 code bytes as words 4j..4j+3 of block
     * g, whose low nibbles are the block's elements 16j.., the high ones 64 + 16j..; the block's scale and offset) against
     * the staged codes, into acc[0..3]. A block's scale s and offset o factor out as in {@link QuantMatmul#int4RowTermQ8}:
     * s (sum q x) - 8 s (sum x) for INT4, s (sum q x) - o (sum x) for INT4_ZP, in the codes' units times the block's
     * activation step.
     */
    private static void int4Step(float[] acc, int[] codes, float[] steps, int[] q, float[] terms, int[] lo, int[] hi, int s, boolean zeroPoint) {
        int g = s / 4;
        int j = s % 4;
        for (int i = 0; i < 4; i++) {
            lo[i] = codes[32 * g + 4 * j + i];
            hi[i] = codes[32 * g + 16 + 4 * j + i];
        }
        int codeSum = 0;
        for (int i = 0; i < 4; i++) {
            codeSum = KMath.dot4I8(lo[i], 0x01010101, KMath.dot4I8(hi[i], 0x01010101, codeSum));
        }
        float step = steps[g];
        for (int r = 0; r < Matmul.GEMV_ROWS_PER_TEAM; r++) {
            int dot = 0;
            for (int i = 0; i < 4; i++) {
                int word4 = q[4 * r + i];
                dot = KMath.dot4I8(word4 & 0x0F0F0F0F, lo[i], KMath.dot4I8((word4 >>> 4) & 0x0F0F0F0F, hi[i], dot));
            }
            float term = zeroPoint ? terms[r] * dot - terms[Matmul.GEMV_ROWS_PER_TEAM + r] * codeSum : terms[r] * (dot - 8 * codeSum);
            acc[r] += step * term;
        }
    }

    /** Tiles of {@code columns} teams over n outputs (four rows a team; gated: two outputs, their gate and up rows). */
    static int tiles(int n, int columns, boolean gated) {
        int outputsPerTeam = gated ? 2 : Matmul.GEMV_ROWS_PER_TEAM;
        int teams = (n + outputsPerTeam - 1) / outputsPerTeam;
        return (teams + columns - 1) / columns;
    }

    /**
     * The four weight rows of this item's team t in tile {@code tile} (of {@code columns} teams), by {@code layout}:
     * {@link #ROWS}, rows 4t..4t+3 of n; {@link #GATED}, gate rows 2t, 2t + 1 and their up rows n + 2t, n + 2t + 1 of
     * [gate; up]; or a rotary's halves' offset h (from 2 on: heads of 2h rows, {@link #pairLayout}), team t being the
     * j-th of its head (j = t % (h / 2)), rows 4t - 2j and the next, then both h rows on (two pairs, each a row and its
     * partner in the other half). Rows past the end read the last one and are not stored.
     */
    private static void teamRows(KernelContext ctx, int tile, int[] rows, int n, int columns, int layout) {
        int teamIndex = tile * columns + ctx.localIdx / (ctx.localGroupSizeX / columns);
        if (layout == GATED) {
            int g0 = Math.min(2 * teamIndex, n - 1);
            int g1 = Math.min(2 * teamIndex + 1, n - 1);
            rows[0] = g0;
            rows[1] = g1;
            rows[2] = n + g0;
            rows[3] = n + g1;
        } else if (layout == ROWS) {
            for (int r = 0; r < Matmul.GEMV_ROWS_PER_TEAM; r++) {
                rows[r] = Math.min(Matmul.GEMV_ROWS_PER_TEAM * teamIndex + r, n - 1);
            }
        } else {
            int first = 4 * teamIndex - 2 * (teamIndex % (layout / 2));
            rows[0] = Math.min(first, n - 1);
            rows[1] = Math.min(first + 1, n - 1);
            rows[2] = Math.min(first + layout, n - 1);
            rows[3] = Math.min(first + layout + 1, n - 1);
        }
    }

    /** The team's sums of tile {@code tile} out: {@link Matmul#gatedStore} where {@code gated}, else {@link Matmul#gemvStoreRows}. */
    private static void store(KernelContext ctx, int tile, float[] partial, FloatArray out, FloatArray scales, boolean scaled, FloatArray bias,
            boolean hasBias, int n, int columns, float factor, boolean adding, boolean gated, int kind) {
        if (gated) {
            Matmul.gatedStore(ctx, tile, partial, out, scales, scaled, bias, hasBias, n, columns, factor, kind);
        } else {
            Matmul.gemvStoreRows(ctx, tile, partial, out, scales, scaled, bias, hasBias, n, columns, Matmul.GEMV_ROWS_PER_TEAM, factor, adding);
        }
    }

    // ---- the stages ---------------------------------------------------------------------------------------------------------

    /**
     * Rounds x = a[0..k) (times normW where {@code normed}) to int8 codes in local memory: codes[e / 4] holds elements e..e+3
     * (byte j element e + j), steps[e / group] their group's step max |x| / 127 (a code times it is the element). The group's
     * items take chunks of {@link #CHUNK} elements in one pass: a group of elements is group / 16 neighbouring items of one
     * warp, which find its largest magnitude with shuffles (every item runs every trip, so the shuffles see whole warps).
     * Returns the norm's 1 / rms(x) where {@code normed}, else 1. Ends with a barrier; every item of the group must call it.
     */
    static float stage(KernelContext ctx, float[] partial, int[] codes, float[] steps, FloatArray a, int k, int group, NativeArray normW,
            boolean normed, float eps) {
        float[] x = new float[CHUNK];
        float[] nw = new float[4];
        int chunks = k / CHUNK;
        int size = ctx.localGroupSizeX;
        int perGroup = group / CHUNK;
        int trips = (chunks + size - 1) / size;
        float squares = 0f;
        for (int trip = 0; trip < trips; trip++) {
            // a trip's chunks start at a multiple of the group, so items past the last chunk make up whole groups of their own
            int c = trip * size + ctx.localIdx;
            boolean valid = c < chunks;
            int chunk = Math.min(c, chunks - 1);
            float chunkSquares = loadChunk(a, chunk * CHUNK, x, normW, normed, nw);
            squares += valid ? chunkSquares : 0f;
            float most = 0f;
            for (int j = 0; j < CHUNK; j++) {
                most = KMath.max(most, KMath.abs(x[j]));
            }
            for (int span = perGroup / 2; span >= 1; span /= 2) {
                most = KMath.max(most, ctx.warpShuffleXor(most, span));
            }
            float inverse = most > 0f ? 127f / most : 0f;
            if (valid) {
                for (int j = 0; j < 4; j++) {
                    codes[4 * chunk + j] = Matmul.int8Codes(x, 4 * j, inverse);
                }
                if (chunk % perGroup == 0) {
                    steps[chunk / perGroup] = most / 127f;
                }
            }
        }
        int sub = ctx.subGroupSize();
        float subSquares = ctx.subGroupReduceAdd(squares);
        if (ctx.localIdx % sub == 0) {
            partial[SQUARES_AT + ctx.localIdx / sub] = subSquares;
        }
        ctx.localBarrier();
        float total = 0f;
        for (int i = 0; i < size / sub; i++) {
            total += partial[SQUARES_AT + i];
        }
        return normed ? KMath.rsqrt(total / k + eps) : 1f;
    }

    /** x[0..16) = a[e..e+16), times normW[e..] where {@code normed}; returns the sum of their squares before it (else 0). */
    private static float loadChunk(FloatArray a, int e, float[] x, NativeArray normW, boolean normed, float[] nw) {
        a.getFloats(e, x, 0, 8);
        a.getFloats(e + 8, x, 8, 8);
        float squares = 0f;
        if (normed) {
            for (int j = 0; j < CHUNK; j += 4) {
                squares += Matmul.foldNorm(x, j, normW, e + j, nw);
            }
        }
        return squares;
    }

    /**
     * Int8 rows r0..r3 against the staged codes into acc[0..3] (zeroed here), in the codes' units times their steps (the
     * rows' scales are the epilogue's), the activations staged by {@link #stage} (whose factor it returns) after the item's
     * first two steps of weights are loading: a step is 16 codes of each row (four 16-byte loads), four
     * {@link KMath#dot4I8} a row and one multiply-add. Two register buffers take the steps in turn, each loading the step
     * two on once it is met (as {@link #int4Rows}'s ring): two steps in flight, none waited for early.
     */
    static float int8Sums(KernelContext ctx, float[] acc, float[] partial, int[] codes, float[] steps, FloatArray a, NativeArray normW,
            boolean normed, float eps, ByteArray w, int r0, int r1, int r2, int r3, int k, int team) {
        int[] q0 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] q1 = new int[4 * Matmul.GEMV_ROWS_PER_TEAM];
        int[] x = new int[4];
        for (int r = 0; r < Matmul.GEMV_ROWS; r++) {
            acc[r] = 0f;
        }
        int lane = ctx.localIdx % team;
        int chunks = k / CHUNK;
        if (lane < chunks) {
            Matmul.loadRowCodes(w, q0, r0, r1, r2, r3, k, CHUNK * lane);
        }
        if (lane + team < chunks) {
            Matmul.loadRowCodes(w, q1, r0, r1, r2, r3, k, CHUNK * (lane + team));
        }
        float factor = stage(ctx, partial, codes, steps, a, k, CHUNK, normW, normed, eps);
        int parity = 0;
        for (int c = lane; c < chunks; c += team) {
            for (int j = 0; j < 4; j++) {
                x[j] = codes[4 * c + j];
            }
            float step = steps[c];
            boolean ahead = c + 2 * team < chunks;
            if (parity == 0) { // a branch a buffer, so that each keeps its registers
                int8Step(acc, q0, x, step);
                if (ahead) {
                    Matmul.loadRowCodes(w, q0, r0, r1, r2, r3, k, CHUNK * (c + 2 * team));
                }
            } else {
                int8Step(acc, q1, x, step);
                if (ahead) {
                    Matmul.loadRowCodes(w, q1, r0, r1, r2, r3, k, CHUNK * (c + 2 * team));
                }
            }
            parity = 1 - parity;
        }
        return factor;
    }

    /** 16 codes of each of four rows (q) against 16 activation codes (x) of one step, into acc[0..3]. */
    private static void int8Step(float[] acc, int[] q, int[] x, float step) {
        for (int r = 0; r < Matmul.GEMV_ROWS_PER_TEAM; r++) {
            int dot = KMath.dot4I8(q[4 * r], x[0], KMath.dot4I8(q[4 * r + 1], x[1], KMath.dot4I8(q[4 * r + 2], x[2],
                    KMath.dot4I8(q[4 * r + 3], x[3], 0))));
            acc[r] += step * dot;
        }
    }

    /**
     * Step s's 16 code bytes of each of the four rows at at0..at3 (rows of {@code blocks} blocks) into q, their block's
     * scales (and offsets) into terms.
     */
    private static void loadInt4Step(ByteArray w, int[] q, float[] terms, int[] word, int format, int blocks, int at0, int at1, int at2, int at3,
            int s, boolean zeroPoint) {
        int g = s / 4;
        int offset = QuantBlocks.int4CodesAt(0, g) + 16 * (s % 4);
        w.getWords(at0 + offset, q, 0, 4);
        w.getWords(at1 + offset, q, 4, 4);
        w.getWords(at2 + offset, q, 8, 4);
        w.getWords(at3 + offset, q, 12, 4);
        int termsAt = QuantBlocks.int4ScaleAt(format, 0, blocks, g);
        terms[0] = QuantBlocks.int4Word(w, at0 + termsAt, word);
        terms[1] = QuantBlocks.int4Word(w, at1 + termsAt, word);
        terms[2] = QuantBlocks.int4Word(w, at2 + termsAt, word);
        terms[3] = QuantBlocks.int4Word(w, at3 + termsAt, word);
        terms[4] = zeroPoint ? QuantBlocks.int4Word(w, at0 + termsAt + 4, word) : 0f;
        terms[5] = zeroPoint ? QuantBlocks.int4Word(w, at1 + termsAt + 4, word) : 0f;
        terms[6] = zeroPoint ? QuantBlocks.int4Word(w, at2 + termsAt + 4, word) : 0f;
        terms[7] = zeroPoint ? QuantBlocks.int4Word(w, at3 + termsAt + 4, word) : 0f;
    }

    // ---- launchers ----------------------------------------------------------------------------------------------------------

    /**
     * Whether the batch-1 int8-activation GEMV over int8 rows of k stages its activations here: tuning
     * {@code matmul.q8_staged_int8} 1 and k within {@link #MAX_K}. Callers ask only where the int8-activation GEMV runs at
     * all (k a multiple of 16).
     */
    public static boolean appliesInt8(Device device, int k) {
        return Tuning.get(device, "matmul.q8_staged_int8", 0) == 1 && k <= MAX_K && k % CHUNK == 0;
    }

    /**
     * The same for rows of int4 blocks of {@code format}: tuning {@code matmul.q8_staged_int4} 1, k within {@link #MAX_K},
     * every row 16-byte aligned for the code loads ({@link QuantBlocks#int4RowsAligned}: k a multiple of 512 for INT4, of
     * 256 for INT4_ZP).
     */
    public static boolean appliesInt4(Device device, QuantFormat format, int k) {
        return Tuning.get(device, "matmul.q8_staged_int4", 0) == 1 && k <= MAX_K && k % INT4_GROUP == 0
                && QuantBlocks.int4RowsAligned(format.code(), k / INT4_GROUP);
    }

    /**
     * Teams a work-group for n rows of k: {@link Matmul#fillingGemvColumns} towards {@code matmul.q8_staged_items_per_unit}
     * items a compute unit, or for rows of {@link #LONG_K} and more (a down projection's) towards
     * {@code matmul.q8_staged_long_items_per_unit} where set. Each group stages all of x, so fewer groups stage less: at the
     * int8 GEMV's 768, two columns a group of a 4096-row matrix, int4 decode lost 4 % where 256 gained 11 % (H100, session
     * 35); the down projection, whose groups stage 14,336 inputs each, gained nothing at 256 (not yet measured apart).
     */
    static int columns(Device device, int n, int k) {
        int items = Tuning.get(device, "matmul.q8_staged_items_per_unit", 0);
        if (k >= LONG_K) {
            items = Tuning.get(device, "matmul.q8_staged_long_items_per_unit", items);
        }
        return Matmul.fillingGemvColumns(device, 1, n, Matmul.GEMV_ROWS_PER_TEAM, items);
    }

    /** Inputs from which a row counts as long for {@link #columns}: twice an 8B's hidden size, below its MLP's 14,336. */
    static final int LONG_K = 8192;

    /**
     * An int4 launch's teams a work-group ({@code columns}, as the kernels take it), its grid, and the groups a compute
     * unit its grid is capped at (0: a group a tile).
     */
    record Int4Launch(int columns, Grid grid, int groupsPerUnit) {
    }

    /**
     * The int4 kernels' launch for {@code outputs} outputs of k inputs ({@code gated}: a gated MLP's outputs, each a gate and
     * an up row): {@link #columns} teams a tile and a group a tile; or, where the tuning {@code matmul.q8_staged_groups_per_unit}
     * caps the grid at that many groups a compute unit, groups that loop over their tiles ({@link #int4Rows}: each stages its
     * activations once for all of them, and its weight loads run on from one tile's rows into the next's), with the
     * columns {@link #balancedColumns} gives.
     */
    static Int4Launch int4Launch(Device device, int outputs, int k, boolean gated) {
        int local = Matmul.gemvLocal(device);
        int columns = columns(device, gated ? 2 * outputs : outputs, k);
        int perUnit = Tuning.get(device, "matmul.q8_staged_groups_per_unit", 0);
        long groups = tiles(outputs, columns, gated);
        if (perUnit > 0) {
            long cap = (long) perUnit * device.computeUnits();
            columns = balancedColumns(outputs, gated, columns, cap);
            groups = Math.min(tiles(outputs, columns, gated), cap);
        }
        return new Int4Launch(columns, Grid.of(groups * local, 1).local(local, 1), Math.max(perUnit, 0));
    }

    /**
     * Of {@code columns} and its halvings, the columns whose tiles share out most evenly over at most {@code cap} looping
     * groups: a group's time goes as the tiles it takes (the most, ceil(tiles / groups)) times a tile's rows (columns), and a
     * narrower tile is taken only where that falls by more than 3 % (each tile ends in a reduction over its teams, wider
     * teams cross more warps), and only where the tiles outnumber the groups. An 8B's [gate; up] at two groups of 256
     * items an H100 SM (264 groups): 896 tiles of 8 teams take the busiest groups 4 tiles, 3.4 on average (in the last
     * round 104 of the 264 groups work); 1,792 tiles of 4 teams take them 7 of half the rows, 6.8 on average: 12.5 % less
     * by that count (measured with the looping: 33.6 -> 28.2 us). Where one round holds every tile (q/k/v: 192 tiles of
     * 8), narrower tiles in more rounds ran slower (9.8 -> 11.2 us): a tile's reduction and store do not shrink with it.
     */
    static int balancedColumns(int outputs, boolean gated, int columns, long cap) {
        int tiles = tiles(outputs, columns, gated);
        if (tiles <= cap) {
            return columns; // a group a tile already: narrower tiles only add rounds (q/k/v 9.8 -> 11.2 us, H100, session 37)
        }
        int best = columns;
        long bestTime = (tiles + cap - 1) / cap * columns;
        for (int c = columns / 2; c >= 1; c /= 2) {
            long time = (tiles(outputs, c, gated) + cap - 1) / cap * c;
            if (time < 0.97 * bestTime) {
                best = c;
                bestTime = time;
            }
        }
        return best;
    }

    /** {@link FoldedGemv#launchInt8}'s product here (the caller checked the shapes and {@link #appliesInt8}). */
    static void launchInt8(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer codes, DeviceBuffer scales, DeviceBuffer bias, int n,
            int k, FoldedGemv.Fold fold) {
        int columns = columns(device, n, k);
        var grid = Matmul.gemvGrid(1, n, Matmul.gemvLocal(device), columns, Matmul.GEMV_ROWS_PER_TEAM);
        DeviceBuffer b = bias == null ? out : bias;
        if (fold.normed()) {
            device.launch(INT8_NORMED, grid, out, x, codes, scales, b, bias != null, n, k, columns, fold.normWeight(), fold.eps());
        } else {
            device.launch(INT8_ADDING, grid, out, x, codes, scales, b, bias != null, n, k, columns);
        }
    }

    /** {@link FoldedGemv#launchPacked}'s product over int4 blocks here. */
    static void launchInt4(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer blocks, QuantFormat format, DeviceBuffer bias, int n,
            int k, FoldedGemv.Fold fold) {
        Int4Launch launch = int4Launch(device, n, k, false);
        DeviceBuffer b = bias == null ? out : bias;
        if (fold.normed()) {
            device.launch(int4Kernel(device, "int4Normed", launch), launch.grid(), out, x, blocks, format.code(), b, bias != null, n, k,
                    launch.columns(), fold.normWeight(), fold.eps());
        } else {
            device.launch(int4Kernel(device, "int4Adding", launch), launch.grid(), out, x, blocks, format.code(), b, bias != null, n, k,
                    launch.columns());
        }
    }

    /**
     * Whether the q/k/v projection of {@code split} over int4 blocks of {@code format} and k inputs may do the split's work
     * as its epilogue ({@link #int4SplitNormed}): the staged int4 GEMV runs ({@link #appliesInt4}), the tuning
     * {@code matmul.q8_staged_split} is 1, the split pools its k and v and writes f32 queries, and each rotary pair lies in
     * one team ({@link #pairLayout}: a rotary over whole heads or interleaved, or none; heads of a multiple of 4).
     */
    public static boolean splitApplies(Device device, QuantFormat format, int k, KvCache.QkvSplit split) {
        int headDim = split.heads().headDim();
        Rotary.Rope rope = split.rope();
        return Tuning.get(device, "matmul.q8_staged_split", 0) == 1 && appliesInt4(device, format, k) && split.keys() != null
                && split.q().dtype() == DType.F32 && headDim % 4 == 0 && (rope == null || rope.interleaved() || rope.rotaryDim() == headDim);
    }

    /** {@link FoldedGemv#launchPackedSplit}'s product and split here (the caller checked the shapes and {@link #splitApplies}). */
    static void launchInt4Split(Device device, DeviceBuffer x, DeviceBuffer blocks, QuantFormat format, DeviceBuffer bias, int k,
            FoldedGemv.Fold fold, KvCache.QkvSplit split) {
        int n = split.width();
        Int4Launch launch = int4Launch(device, n, k, false);
        Object[] product = {x, blocks, format.code(), bias == null ? x : bias, bias != null, n, k, launch.columns(), fold.normWeight(), fold.eps()};
        Object[] epilogue = split.epilogueArguments(1);
        Object[] arguments = java.util.Arrays.copyOf(product, product.length + epilogue.length);
        System.arraycopy(epilogue, 0, arguments, product.length, epilogue.length);
        device.launch(int4Kernel(device, "int4SplitNormed", launch), launch.grid(), arguments);
    }

    /** {@link FoldedGemv#launchInt8Gated}'s product here. */
    static void launchInt8Gated(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer codes, DeviceBuffer scales, DeviceBuffer bias,
            Activations.Kind act, int width, int k, FoldedGemv.Fold fold) {
        int columns = columns(device, 2 * width, k); // a team's four rows: two gate rows and their up rows
        device.launch(INT8_GATED_NORMED, Matmul.gemvGrid(1, width, Matmul.gemvLocal(device), columns, 2), out, x, codes, scales,
                bias == null ? out : bias, bias != null, width, k, columns, act.code, fold.normWeight(), fold.eps());
    }

    /** {@link FoldedGemv#launchPackedGated}'s product over int4 blocks here. */
    static void launchInt4Gated(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer blocks, QuantFormat format, DeviceBuffer bias,
            Activations.Kind act, int width, int k, FoldedGemv.Fold fold) {
        Int4Launch launch = int4Launch(device, width, k, true); // a team's four rows: two gate rows and their up rows
        device.launch(int4Kernel(device, "int4GatedNormed", launch), launch.grid(), out, x, blocks, format.code(), bias == null ? out : bias,
                bias != null, width, k, launch.columns(), act.code, fold.normWeight(), fold.eps());
    }
}
