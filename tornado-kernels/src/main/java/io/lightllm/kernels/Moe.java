package io.lightllm.kernels;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.compiler.Feature;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * A mixture-of-experts MLP (Mixtral) in four launches whose sizes depend only on the number of
 * tokens, so a decode step that routes tokens differently each time can still be recorded:
 *
 * <pre>
 * router logits [t, E] ─ route: top-k experts and weights per token ─► assignments [t·k]
 *   ─ group: assignments sorted by expert (counts, offsets, permutation; all on the device)
 *   ─ expertGatedUp: act[p] = act(x·w1ₑᵀ) · (x·w3ₑᵀ) for the rows p of each expert e
 *   ─ expertDown:    y[p]   = act[p] · w2ₑᵀ
 *   ─ combine:       out[t] = Σⱼ weight[t, j] · y[position of (t, j)]
 * </pre>
 *
 * Expert weights are stacked [E, out, in] (f32, f16 or bf16). The expert matmuls run over tiles of
 * {@link #ROWS} rows of one expert, so each weight row is read once per tile rather than once per
 * token; the grid has a tile for every row an expert could get (every token), and the tiles past an
 * expert's count return at once. From {@code moe.tc_min_tokens} tokens (prefills, on CUDA) the three expert products
 * run instead on tensor cores, 128 rows of one expert a tile ({@link TensorCoreMatmul#expertMatmul}).
 *
 * <p>Between {@code moe.dense_min_tokens} and {@code moe.dense_max_tokens} tokens (decode batches, on CUDA) every token
 * goes through every expert as one dense MLP of E·width rows ({@link #launchDense}): the router's weights, 0 for the
 * experts a token did not pick, scale the activations, so the down projection sums the picked experts alone. A decode
 * batch of 64 gives each of Mixtral's 8 experts ~16 rows, so all their weights are read anyway; the dense matmuls read
 * them once, at the vendor GEMM's rate, where the warp kernels read them once every {@link #ROWS} rows.
 */
public final class Moe {
    /** Rows of one expert that a work-item multiplies against each weight row it reads. */
    public static final int ROWS = 4;

    public static final KernelRef ROUTE = KernelRef.of(Moe.class, "route");
    public static final KernelRef GROUP = KernelRef.of(Moe.class, "groupByExpert");
    public static final KernelRef GATED_UP = KernelRef.of(Moe.class, "expertGatedUp");
    public static final KernelRef DOWN = KernelRef.of(Moe.class, "expertDown");
    public static final KernelRef COMBINE = KernelRef.of(Moe.class, "combine");
    public static final KernelRef ROUTED_ACTIVATION = KernelRef.of(Moe.class, "routedActivation");
    public static final KernelRef GATED_UP_WARPS = KernelRef.of(Moe.class, "expertGatedUpWarps");
    public static final KernelRef DOWN_WARPS = KernelRef.of(Moe.class, "expertDownWarps");
    /** The experts' GEMM on tensor cores over bf16 or f16 weights ({@link TensorCoreMatmul#expertMatmul}, bf16 bound: a launch leaves it out). */
    public static final KernelRef EXPERTS_TC_BF16 = KernelRef.of(TensorCoreMatmul.class, "expertMatmul").with("bf16", true);
    public static final KernelRef EXPERTS_TC_F16 = KernelRef.of(TensorCoreMatmul.class, "expertMatmul").with("bf16", false);
    /** Work-items of the warp kernels' groups: four warps, each one output column of one tile. */
    public static final int WARPS_LOCAL = 128;

    private Moe() {
    }

    /**
     * Per token: a softmax over its E router logits, the k largest (ties: the lower expert
     * first, as torch.topk on CPU), their probabilities divided by their sum when
     * {@code renormalize} is 1 (Mixtral) and kept as they are otherwise. Writes experts[t·k + j]
     * and weights[t·k + j], j = 0 for the largest.
     */
    public static void route(IntArray experts, FloatArray weights, FloatArray logits, int tokens, int numExperts, int k, int renormalize) {
        for (@Parallel int t = 0; t < tokens; t++) {
            int base = t * numExperts;
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < numExperts; e++) {
                max = KMath.max(max, logits.get(base + e));
            }
            float sum = 0f;
            for (int e = 0; e < numExperts; e++) {
                sum += KMath.exp(logits.get(base + e) - max);
            }
            // the j-th pick is the best expert ordered after the (j-1)-th in (logit desc, index asc)
            float lastValue = Float.POSITIVE_INFINITY;
            int lastExpert = -1;
            float picked = 0f;
            for (int j = 0; j < k; j++) {
                int best = -1;
                float bestValue = 0f;
                for (int e = 0; e < numExperts; e++) {
                    float v = logits.get(base + e);
                    boolean after = v < lastValue || (v == lastValue && e > lastExpert);
                    if (after && (best < 0 || v > bestValue)) {
                        best = e;
                        bestValue = v;
                    }
                }
                float p = KMath.exp(bestValue - max) / sum;
                experts.set(t * k + j, best);
                weights.set(t * k + j, p);
                picked += p;
                lastValue = bestValue;
                lastExpert = best;
            }
            if (renormalize == 1) {
                for (int j = 0; j < k; j++) {
                    weights.set(t * k + j, weights.get(t * k + j) / picked);
                }
            }
        }
    }

    /**
     * One work-item per expert e: counts[e] assignments go to it, at sorted positions
     * offsets[e] .. offsets[e] + counts[e] (experts in order, each expert's assignments in token
     * order); sorted[p] is the assignment at position p and positionOf[a] its inverse.
     */
    public static void groupByExpert(IntArray counts, IntArray offsets, IntArray sorted, IntArray positionOf, IntArray experts,
            int assignments, int numExperts) {
        for (@Parallel int e = 0; e < numExperts; e++) {
            int before = 0;
            for (int a = 0; a < assignments; a++) {
                if (experts.get(a) < e) {
                    before++;
                }
            }
            int n = 0;
            for (int a = 0; a < assignments; a++) {
                if (experts.get(a) == e) {
                    sorted.set(before + n, a);
                    positionOf.set(a, before + n);
                    n++;
                }
            }
            counts.set(e, n);
            offsets.set(e, before);
        }
    }

    /**
     * act[p, i] = act(x[token] · w1[e, i]) · (x[token] · w3[e, i]) for each sorted position p of
     * expert e (token = sorted[p] / k); a work-item takes one column i of up to {@link #ROWS} rows.
     * w1, w3: [E, width, hidden]; x: [tokens, hidden]; act: [tokens·k, width].
     */
    public static void expertGatedUp(FloatArray act, FloatArray x, NativeArray w1, NativeArray w3, IntArray sorted, IntArray counts,
            IntArray offsets, int k, int hidden, int width, int tilesPerExpert, int numExperts, int kind) {
        for (@Parallel int tile = 0; tile < numExperts * tilesPerExpert; tile++) {
            for (@Parallel int i = 0; i < width; i++) {
                int e = tile / tilesPerExpert;
                int first = (tile % tilesPerExpert) * ROWS;
                int count = counts.get(e);
                if (first < count) {
                    int offset = offsets.get(e) + first;
                    int rows = Math.min(ROWS, count - first);
                    int[] xRow = new int[ROWS];
                    float[] gate = new float[ROWS];
                    float[] up = new float[ROWS];
                    for (int r = 0; r < ROWS; r++) {
                        // rows past the expert's count repeat its first row and are not written
                        xRow[r] = (sorted.get(offset + Math.min(r, rows - 1)) / k) * hidden;
                        gate[r] = 0f;
                        up[r] = 0f;
                    }
                    int wBase = (e * width + i) * hidden;
                    for (int d = 0; d < hidden; d++) {
                        float g = w1.getFloat(wBase + d);
                        float u = w3.getFloat(wBase + d);
                        for (int r = 0; r < ROWS; r++) {
                            float v = x.get(xRow[r] + d);
                            gate[r] += v * g;
                            up[r] += v * u;
                        }
                    }
                    for (int r = 0; r < ROWS; r++) {
                        if (r < rows) {
                            act.set((offset + r) * width + i, Activations.activate(gate[r], kind) * up[r]);
                        }
                    }
                }
            }
        }
    }

    /** y[p, o] = act[p] · w2ₑ[o] for each sorted position p of expert e; w2: [hidden, E·width], expert e's columns e·width ... */
    public static void expertDown(FloatArray y, FloatArray act, NativeArray w2, IntArray counts, IntArray offsets, int width, int hidden,
            int tilesPerExpert, int numExperts) {
        for (@Parallel int tile = 0; tile < numExperts * tilesPerExpert; tile++) {
            for (@Parallel int o = 0; o < hidden; o++) {
                int e = tile / tilesPerExpert;
                int first = (tile % tilesPerExpert) * ROWS;
                int count = counts.get(e);
                if (first < count) {
                    int offset = offsets.get(e) + first;
                    int rows = Math.min(ROWS, count - first);
                    float[] acc = new float[ROWS];
                    for (int r = 0; r < ROWS; r++) {
                        acc[r] = 0f;
                    }
                    int wBase = o * numExperts * width + e * width;
                    for (int d = 0; d < width; d++) {
                        float w = w2.getFloat(wBase + d);
                        for (int r = 0; r < ROWS; r++) {
                            acc[r] += act.get((offset + Math.min(r, rows - 1)) * width + d) * w;
                        }
                    }
                    for (int r = 0; r < ROWS; r++) {
                        if (r < rows) {
                            y.set((offset + r) * hidden + o, acc[r]);
                        }
                    }
                }
            }
        }
    }

    /**
     * {@link #expertGatedUp} with a warp per (tile, column i): its lanes stream the weight rows in runs
     * of 8 (16 bytes of bf16) against the tile's token rows and add up in shuffles, so a warp reads
     * whole lines of one row; in the portable kernel each work-item walked a row of its own, and a
     * warp's 32 loads fell on 32 rows (Mixtral-8x7B decoded at 7 % of the H200's copy rate). Warp
     * {@code groupIdx * 4 + localIdx / 32} takes tile {@code warp / width} and column
     * {@code warp % width}; hidden must be a multiple of 8. Every warp meets the shuffles, also one
     * with no rows (their emulation on the JVM and OpenCL is a group-wide exchange).
     */
    public static void expertGatedUpWarps(KernelContext ctx, FloatArray act, FloatArray x, NativeArray w1, NativeArray w3, IntArray sorted,
            IntArray counts, IntArray offsets, int k, int hidden, int width, int tilesPerExpert, int numExperts, int kind) {
        float[] g8 = new float[8];
        float[] u8 = new float[8];
        float[] g8b = new float[8];
        float[] u8b = new float[8];
        float[] x8 = new float[8];
        int[] xRow = new int[ROWS];
        float[] gate = new float[ROWS];
        float[] up = new float[ROWS];
        int lane = ctx.laneId();
        int warp = ctx.groupIdx * (ctx.localGroupSizeX / KernelContext.WARP_SIZE) + ctx.localIdx / KernelContext.WARP_SIZE;
        int tile = warp / width;
        int i = warp % width;
        int e = tile / tilesPerExpert;
        int first = (tile % tilesPerExpert) * ROWS;
        int count = e < numExperts ? counts.get(e) : 0;
        int offset = first < count ? offsets.get(e) + first : 0;
        int rows = Math.min(ROWS, count - first);
        for (int r = 0; r < ROWS; r++) {
            gate[r] = 0f;
            up[r] = 0f;
        }
        if (first < count) {
            for (int r = 0; r < ROWS; r++) {
                // rows past the expert's count are neither read nor written
                xRow[r] = r < rows ? (sorted.get(offset + r) / k) * hidden : 0;
            }
            int wBase = (e * width + i) * hidden;
            int step = 8 * KernelContext.WARP_SIZE;
            int d = 8 * lane;
            // two runs of each row a lane in flight (four loads), as the dense GEMV keeps: with one, the batch-1 warps
            // streamed Mixtral's gate/up at 42 % of an H100's copy rate; rows past the expert's count are skipped
            for (; d + step < hidden; d += 2 * step) {
                w1.getFloats(wBase + d, g8, 0, 8);
                w3.getFloats(wBase + d, u8, 0, 8);
                w1.getFloats(wBase + d + step, g8b, 0, 8);
                w3.getFloats(wBase + d + step, u8b, 0, 8);
                for (int r = 0; r < ROWS; r++) {
                    if (r < rows) {
                        x.getFloats(xRow[r] + d, x8, 0, 8);
                        float g = Matmul.dot8(g8, x8);
                        float u = Matmul.dot8(u8, x8);
                        x.getFloats(xRow[r] + d + step, x8, 0, 8);
                        gate[r] += g + Matmul.dot8(g8b, x8);
                        up[r] += u + Matmul.dot8(u8b, x8);
                    }
                }
            }
            if (d < hidden) {
                w1.getFloats(wBase + d, g8, 0, 8);
                w3.getFloats(wBase + d, u8, 0, 8);
                for (int r = 0; r < ROWS; r++) {
                    if (r < rows) {
                        x.getFloats(xRow[r] + d, x8, 0, 8);
                        gate[r] += Matmul.dot8(g8, x8);
                        up[r] += Matmul.dot8(u8, x8);
                    }
                }
            }
        }
        for (int r = 0; r < ROWS; r++) {
            gate[r] = warpSum(ctx, gate[r]);
            up[r] = warpSum(ctx, up[r]);
        }
        if (first < count && lane == 0) {
            for (int r = 0; r < ROWS; r++) {
                if (r < rows) {
                    act.set((offset + r) * width + i, Activations.activate(gate[r], kind) * up[r]);
                }
            }
        }
    }

    /** {@link #expertDown} with a warp per (tile, output o), as {@link #expertGatedUpWarps}; width must be a multiple of 8. */
    public static void expertDownWarps(KernelContext ctx, FloatArray y, FloatArray act, NativeArray w2, IntArray counts, IntArray offsets,
            int width, int hidden, int tilesPerExpert, int numExperts) {
        float[] w8 = new float[8];
        float[] w8b = new float[8];
        float[] a8 = new float[8];
        float[] acc = new float[ROWS];
        int lane = ctx.laneId();
        int warp = ctx.groupIdx * (ctx.localGroupSizeX / KernelContext.WARP_SIZE) + ctx.localIdx / KernelContext.WARP_SIZE;
        int tile = warp / hidden;
        int o = warp % hidden;
        int e = tile / tilesPerExpert;
        int first = (tile % tilesPerExpert) * ROWS;
        int count = e < numExperts ? counts.get(e) : 0;
        int offset = first < count ? offsets.get(e) + first : 0;
        int rows = Math.min(ROWS, count - first);
        for (int r = 0; r < ROWS; r++) {
            acc[r] = 0f;
        }
        if (first < count) {
            int wBase = o * numExperts * width + e * width;
            int step = 8 * KernelContext.WARP_SIZE;
            int d = 8 * lane;
            // two runs a lane in flight, as in expertGatedUpWarps (one: 27 % of an H100's copy rate at batch 1)
            for (; d + step < width; d += 2 * step) {
                w2.getFloats(wBase + d, w8, 0, 8);
                w2.getFloats(wBase + d + step, w8b, 0, 8);
                for (int r = 0; r < ROWS; r++) {
                    if (r < rows) {
                        act.getFloats((offset + r) * width + d, a8, 0, 8);
                        float s = Matmul.dot8(w8, a8);
                        act.getFloats((offset + r) * width + d + step, a8, 0, 8);
                        acc[r] += s + Matmul.dot8(w8b, a8);
                    }
                }
            }
            if (d < width) {
                w2.getFloats(wBase + d, w8, 0, 8);
                for (int r = 0; r < ROWS; r++) {
                    if (r < rows) {
                        act.getFloats((offset + r) * width + d, a8, 0, 8);
                        acc[r] += Matmul.dot8(w8, a8);
                    }
                }
            }
        }
        for (int r = 0; r < ROWS; r++) {
            acc[r] = warpSum(ctx, acc[r]);
        }
        if (first < count && lane == 0) {
            for (int r = 0; r < ROWS; r++) {
                if (r < rows) {
                    y.set((offset + r) * hidden + o, acc[r]);
                }
            }
        }
    }

    /** The sum of v over a warp's 32 lanes, in every lane. */
    private static float warpSum(KernelContext ctx, float v) {
        for (int mask = KernelContext.WARP_SIZE / 2; mask > 0; mask >>= 1) {
            v += ctx.warpShuffleXor(v, mask);
        }
        return v;
    }

    /** out[t, o] = Σⱼ weights[t·k + j] · y[positionOf[t·k + j], o]. */
    public static void combine(FloatArray out, FloatArray y, FloatArray weights, IntArray positionOf, int tokens, int k, int hidden) {
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int o = 0; o < hidden; o++) {
                float sum = 0f;
                for (int j = 0; j < k; j++) {
                    sum += weights.get(t * k + j) * y.get(positionOf.get(t * k + j) * hidden + o);
                }
                out.set(t * hidden + o, sum);
            }
        }
    }

    /**
     * The dense experts' activations ({@link #launchDense}): act[t, e·width + i] = wₜₑ · act(gate[t, e·width + i]) ·
     * up[t, e·width + i], where wₜₑ is the router's weight of expert e for token t, and 0 where t did not pick e (written as
     * 0, not multiplied: an expert's product for a token that did not pick it may overflow). act is f32 (it may be gate
     * itself: each work-item reads its run before it writes it) or bf16/f16 rounded as stored, the down GEMM's input on
     * tensor cores ({@link Matmul#activationType}). A work-item takes a run of 4 of a row: with {@code vectors} (width a
     * multiple of 4, so a run lies in one expert and starts 16-byte aligned) as 16-byte loads, else one by one.
     */
    public static void routedActivation(NativeArray act, FloatArray gate, FloatArray up, IntArray experts, FloatArray weights, int tokens,
            int k, int numExperts, int width, int kind, boolean vectors) {
        float[] g = new float[4];
        float[] u = new float[4];
        int row = numExperts * width;
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int r = 0; r < (row + 3) / 4; r++) {
                int i = 4 * r;
                if (vectors) {
                    float w = routerWeight(experts, weights, t, k, i / width);
                    gate.getFloats(t * row + i, g, 0, 4);
                    up.getFloats(t * row + i, u, 0, 4);
                    for (int j = 0; j < 4; j++) {
                        g[j] = w == 0f ? 0f : w * Activations.activate(g[j], kind) * u[j];
                    }
                    act.setFloats(t * row + i, g, 0, 4);
                } else {
                    for (int j = i; j < Math.min(i + 4, row); j++) {
                        float w = routerWeight(experts, weights, t, k, j / width);
                        float v = w == 0f ? 0f : w * Activations.activate(gate.get(t * row + j), kind) * up.get(t * row + j);
                        act.setFloat(t * row + j, v);
                    }
                }
            }
        }
    }

    /** The router's weight of expert e for token t: the weight of its pick of e, 0 where it did not pick e. */
    private static float routerWeight(IntArray experts, FloatArray weights, int t, int k, int e) {
        float w = 0f;
        for (int j = 0; j < k; j++) {
            if (experts.get(t * k + j) == e) {
                w = weights.get(t * k + j);
            }
        }
        return w;
    }

    // ---- host side -------------------------------------------------------------------

    /**
     * The expert weights of one layer: w1 (gate) and w3 (up) stacked [E, width, hidden], which is [E·width, hidden]: every
     * expert's rows as one matrix; w2 (down) side by side [hidden, E·width]: every expert's columns, so that the down
     * projection of all experts is one matmul too ({@link #launchDense}).
     */
    public record Experts(DeviceBuffer w1, DeviceBuffer w3, DeviceBuffer w2, int numExperts, int topK, boolean renormalize, int hidden,
                          int width) {
    }

    /**
     * Device scratch of the routing for up to {@code tokens} tokens. For the dense path ({@link #usesDense}; else null),
     * for at most {@code moe.dense_max_tokens}: gate and up, [tokens, E·width] f32 each, and the activations in the down
     * GEMM's 16-bit input type where its largest token count reads one ({@link Matmul#activationType}; smaller counts,
     * on the GEMV, take them f32 in place over gate).
     */
    public record Scratch(DeviceBuffer experts, DeviceBuffer weights, DeviceBuffer counts, DeviceBuffer offsets, DeviceBuffer sorted,
                          DeviceBuffer positionOf, DeviceBuffer act, DeviceBuffer y, DeviceBuffer gate, DeviceBuffer up,
                          DeviceBuffer narrowedAct) implements AutoCloseable {
        public static Scratch allocate(Device device, int tokens, Experts e) {
            long assignments = (long) tokens * e.topK();
            int dense = Math.min(tokens, Tuning.get(device, "moe.dense_max_tokens", DEFAULT_DENSE_MAX));
            boolean anyDense = dense >= Tuning.get(device, "moe.dense_min_tokens", Integer.MAX_VALUE);
            long denseElements = (long) dense * e.numExperts() * e.width();
            DType narrowed = anyDense && e.w2() != null ? Matmul.activationType(device, e.w2(), dense, e.numExperts() * e.width()) : DType.F32;
            return new Scratch(device.allocate(DType.I32, assignments), device.allocate(DType.F32, assignments),
                    device.allocate(DType.I32, e.numExperts()), device.allocate(DType.I32, e.numExperts()),
                    device.allocate(DType.I32, assignments), device.allocate(DType.I32, assignments),
                    device.allocate(DType.F32, assignments * e.width()), device.allocate(DType.F32, assignments * e.hidden()),
                    anyDense ? device.allocate(DType.F32, denseElements) : null, anyDense ? device.allocate(DType.F32, denseElements) : null,
                    narrowed != DType.F32 ? device.allocate(narrowed, denseElements) : null);
        }

        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {experts, weights, counts, offsets, sorted, positionOf, act, y, gate, up, narrowedAct}) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    /** The largest token count of the dense path unless the tuning {@code moe.dense_max_tokens} says otherwise. */
    static final int DEFAULT_DENSE_MAX = 256;

    /**
     * Whether {@code tokens} tokens go through every expert as one dense MLP ({@link #launchDense}): where the device's
     * tunings {@code moe.dense_min_tokens} .. {@code moe.dense_max_tokens} cover them (CUDA: decode batches; off on the
     * JVM and OpenCL, whose matmuls gain nothing from reading the weights once) and they are too few for the tensor-core
     * experts.
     */
    static boolean usesDense(Device device, Experts e, int tokens) {
        return tokens >= Tuning.get(device, "moe.dense_min_tokens", Integer.MAX_VALUE)
                && tokens <= Tuning.get(device, "moe.dense_max_tokens", DEFAULT_DENSE_MAX) && !usesTensorCores(device, e, tokens);
    }

    /**
     * Whether this device runs the expert matmuls a warp per output ({@link #expertGatedUpWarps}) for {@code tiles}
     * tiles of tokens an expert: where its tuning {@code moe.warps} is 1 (CUDA), both widths are whole runs of 8, and
     * the warps fit a launch ({@link #warpGridFits}); otherwise the work-item kernels, which stride over their grid.
     */
    static boolean usesWarps(Device device, Experts e, int tiles) {
        return Tuning.get(device, "moe.warps", 0) == 1 && e.hidden() % 8 == 0 && e.width() % 8 == 0 && warpGridFits(e, tiles);
    }

    /**
     * Whether this device runs the expert matmuls on tensor cores ({@link TensorCoreMatmul#expertMatmul}, tiles of 128
     * rows of one expert) for {@code tokens} tokens: where its tuning {@code moe.tensor_cores} is 1 (CUDA), for at least
     * {@code moe.tc_min_tokens} tokens, bf16 or f16 experts the device has MMAs for, and both widths whole runs of 8. A
     * prefill reads each expert's weights once a tile of 128 rows instead of once every {@link #ROWS} rows, on tensor
     * cores; the activations are rounded to the weights' type on the way, as the dense tensor-core GEMM does.
     */
    static boolean usesTensorCores(Device device, Experts e, int tokens) {
        DType t = e.w1() == null ? DType.BF16 : e.w1().dtype();
        boolean mma = t == DType.BF16 ? device.supports(Feature.MMA_BF16) : t == DType.F16 && device.supports(Feature.MMA_F16);
        return Tuning.get(device, "moe.tensor_cores", 0) == 1 && tokens >= Tuning.get(device, "moe.tc_min_tokens", 1) && mma
                && e.hidden() % 8 == 0 && e.width() % 8 == 0;
    }

    /**
     * Whether a warp per (tile, output column) stays within a launch's int-indexed work-items: a decode batch does,
     * a prefill of thousands of tokens does not (Mixtral-8x7B shapes, 8,192 tokens: 1.9e9 work-items per matmul on
     * the H200, refused by the launcher; 64 tokens: 5.9e7).
     */
    static boolean warpGridFits(Experts e, int tiles) {
        return (long) e.numExperts() * tiles * Math.max(e.width(), e.hidden()) * KernelContext.WARP_SIZE <= Integer.MAX_VALUE;
    }

    /**
     * out [tokens, hidden] = the experts' MLP of x [tokens, hidden] under the router's
     * {@code logits} [tokens, E]; {@code activation} is applied to the gate (w1) projection.
     */
    public static void launchMoe(Device device, DeviceBuffer out, DeviceBuffer x, DeviceBuffer logits, Experts e, Scratch s,
            Activations.Kind activation, int tokens) {
        Shapes.positive(tokens, "tokens");
        if (e.topK() <= 0 || e.topK() > e.numExperts()) {
            throw new IllegalArgumentException(e.topK() + " experts per token out of " + e.numExperts());
        }
        long assignments = (long) tokens * e.topK();
        Shapes.intIndexable(assignments * Math.max(e.width(), e.hidden()), "expert rows");
        Shapes.atLeast(s.experts(), assignments, "routing scratch");
        Shapes.atLeast(x, (long) tokens * e.hidden(), "x");
        Shapes.atLeast(out, (long) tokens * e.hidden(), "out");
        Shapes.atLeast(logits, (long) tokens * e.numExperts(), "router logits");
        Shapes.atLeast(e.w1(), (long) e.numExperts() * e.width() * e.hidden(), "w1");
        Shapes.atLeast(e.w2(), (long) e.numExperts() * e.width() * e.hidden(), "w2");
        int tiles = (tokens + ROWS - 1) / ROWS; // an expert gets each token at most once
        device.launch(ROUTE, Grid.of(tokens), s.experts(), s.weights(), logits, tokens, e.numExperts(), e.topK(), e.renormalize() ? 1 : 0);
        if (usesDense(device, e, tokens)) {
            launchDense(device, out, x, e, s, activation, tokens);
            return;
        }
        device.launch(GROUP, Grid.of(e.numExperts()), s.counts(), s.offsets(), s.sorted(), s.positionOf(), s.experts(),
                (int) assignments, e.numExperts());
        if (usesTensorCores(device, e, tokens)) {
            // gate into act, then up with the activation of the gate fused into its epilogue, then down into y
            KernelRef gemm = e.w1().dtype() == DType.BF16 ? EXPERTS_TC_BF16 : EXPERTS_TC_F16;
            Shapes.intIndexable((long) e.numExperts() * e.width() * e.hidden(), "stacked expert weights");
            int rowTiles = (tokens + TensorCoreMatmul.TILE - 1) / TensorCoreMatmul.TILE;
            Grid up = TensorCoreMatmul.expertGrid(e.numExperts(), rowTiles, e.width());
            // gate/up: expert e's rows at e·width·hidden, a row every hidden; down (side by side): at e·width, a row every E·width
            int expertStride = e.width() * e.hidden(), downRow = e.numExperts() * e.width();
            device.launch(gemm, up, s.act(), x, e.w1(), s.sorted(), s.counts(), s.offsets(), e.topK(), -1, e.width(), e.hidden(), expertStride,
                    e.hidden(), rowTiles);
            device.launch(gemm, up, s.act(), x, e.w3(), s.sorted(), s.counts(), s.offsets(), e.topK(), activation.code, e.width(), e.hidden(),
                    expertStride, e.hidden(), rowTiles);
            device.launch(gemm, TensorCoreMatmul.expertGrid(e.numExperts(), rowTiles, e.hidden()), s.y(), s.act(), e.w2(), s.sorted(), s.counts(),
                    s.offsets(), 0, -1, e.hidden(), e.width(), e.width(), downRow, rowTiles);
        } else if (usesWarps(device, e, tiles)) {
            int warpsPerGroup = WARPS_LOCAL / KernelContext.WARP_SIZE;
            long up = ((long) e.numExperts() * tiles * e.width() + warpsPerGroup - 1) / warpsPerGroup;
            long down = ((long) e.numExperts() * tiles * e.hidden() + warpsPerGroup - 1) / warpsPerGroup;
            device.launch(GATED_UP_WARPS, Grid.groups(up, WARPS_LOCAL), s.act(), x, e.w1(), e.w3(), s.sorted(), s.counts(), s.offsets(),
                    e.topK(), e.hidden(), e.width(), tiles, e.numExperts(), activation.code);
            device.launch(DOWN_WARPS, Grid.groups(down, WARPS_LOCAL), s.y(), s.act(), e.w2(), s.counts(), s.offsets(), e.width(), e.hidden(),
                    tiles, e.numExperts());
        } else {
            device.launch(GATED_UP, Grid.of(e.numExperts() * tiles, e.width()), s.act(), x, e.w1(), e.w3(), s.sorted(), s.counts(), s.offsets(),
                    e.topK(), e.hidden(), e.width(), tiles, e.numExperts(), activation.code);
            device.launch(DOWN, Grid.of(e.numExperts() * tiles, e.hidden()), s.y(), s.act(), e.w2(), s.counts(), s.offsets(), e.width(),
                    e.hidden(), tiles, e.numExperts());
        }
        device.launch(COMBINE, Grid.of(tokens, e.hidden()), out, s.y(), s.weights(), s.positionOf(), tokens, e.topK(), e.hidden());
    }

    /**
     * The experts as one dense gated MLP of E·width rows: gate = x · w1ᵀ and up = x · w3ᵀ over all experts' rows, the
     * router-weighted activation ({@link #routedActivation}: 0 for the experts a token did not pick), out = act · w2ᵀ over
     * all experts' columns. Three matmuls of fixed shapes ({@link Matmul#launchMatmul}, cuBLAS on CUDA) and no grouping:
     * a recorded decode step replays them whatever the routing. Reads every expert's weights once; multiplies E / k times
     * the products the picked experts need, which a decode batch has to spare (Mixtral-8x7B at 64 tokens: ~5.8 TFLOP a
     * step against 90 GB of weights).
     */
    static void launchDense(Device device, DeviceBuffer out, DeviceBuffer x, Experts e, Scratch s, Activations.Kind activation, int tokens) {
        int all = e.numExperts() * e.width();
        if (s.gate() == null || s.gate().elements() < (long) tokens * all) {
            throw new IllegalStateException("the routing scratch has no dense buffers for " + tokens + " tokens");
        }
        Matmul.launchMatmul(device, s.gate(), x, e.w1(), null, tokens, all, e.hidden());
        Matmul.launchMatmul(device, s.up(), x, e.w3(), null, tokens, all, e.hidden());
        // the activations in the type the down GEMM reads as it is (no cast launch before cuBLAS), else f32 over gate
        DType actType = Matmul.activationType(device, e.w2(), tokens, all);
        DeviceBuffer act = s.narrowedAct() != null && s.narrowedAct().dtype() == actType ? s.narrowedAct() : s.gate();
        device.launch(ROUTED_ACTIVATION, Activations.grid(tokens, all), act, s.gate(), s.up(), s.experts(), s.weights(), tokens, e.topK(),
                e.numExperts(), e.width(), activation.code, e.width() % 4 == 0);
        Matmul.launchMatmul(device, out, act, e.w2(), null, tokens, e.hidden(), all);
    }
}
