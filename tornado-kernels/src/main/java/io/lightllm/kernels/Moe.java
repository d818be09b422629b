package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

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
 * expert's count return at once.
 */
public final class Moe {
    /** Rows of one expert that a work-item multiplies against each weight row it reads. */
    public static final int ROWS = 4;

    public static final KernelRef ROUTE = KernelRef.of(Moe.class, "route");
    public static final KernelRef GROUP = KernelRef.of(Moe.class, "groupByExpert");
    public static final KernelRef GATED_UP = KernelRef.of(Moe.class, "expertGatedUp");
    public static final KernelRef DOWN = KernelRef.of(Moe.class, "expertDown");
    public static final KernelRef COMBINE = KernelRef.of(Moe.class, "combine");

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

    /** y[p, o] = act[p] · w2[e, o] for each sorted position p of expert e; w2: [E, hidden, width]. */
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
                    int wBase = (e * hidden + o) * width;
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

    // ---- host side -------------------------------------------------------------------

    /** The stacked expert weights of one layer: w1 (gate) and w3 (up) [E, width, hidden], w2 (down) [E, hidden, width]. */
    public record Experts(DeviceBuffer w1, DeviceBuffer w3, DeviceBuffer w2, int numExperts, int topK, boolean renormalize, int hidden,
                          int width) {
    }

    /** Device scratch of the routing for up to {@code tokens} tokens. */
    public record Scratch(DeviceBuffer experts, DeviceBuffer weights, DeviceBuffer counts, DeviceBuffer offsets, DeviceBuffer sorted,
                          DeviceBuffer positionOf, DeviceBuffer act, DeviceBuffer y) implements AutoCloseable {
        public static Scratch allocate(Device device, int tokens, Experts e) {
            long assignments = (long) tokens * e.topK();
            return new Scratch(device.allocate(io.lightllm.tornado.api.DType.I32, assignments),
                    device.allocate(io.lightllm.tornado.api.DType.F32, assignments),
                    device.allocate(io.lightllm.tornado.api.DType.I32, e.numExperts()),
                    device.allocate(io.lightllm.tornado.api.DType.I32, e.numExperts()),
                    device.allocate(io.lightllm.tornado.api.DType.I32, assignments),
                    device.allocate(io.lightllm.tornado.api.DType.I32, assignments),
                    device.allocate(io.lightllm.tornado.api.DType.F32, assignments * e.width()),
                    device.allocate(io.lightllm.tornado.api.DType.F32, assignments * e.hidden()));
        }

        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {experts, weights, counts, offsets, sorted, positionOf, act, y}) {
                b.close();
            }
        }
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
        device.launch(GROUP, Grid.of(e.numExperts()), s.counts(), s.offsets(), s.sorted(), s.positionOf(), s.experts(),
                (int) assignments, e.numExperts());
        device.launch(GATED_UP, Grid.of(e.numExperts() * tiles, e.width()), s.act(), x, e.w1(), e.w3(), s.sorted(), s.counts(), s.offsets(),
                e.topK(), e.hidden(), e.width(), tiles, e.numExperts(), activation.code);
        device.launch(DOWN, Grid.of(e.numExperts() * tiles, e.hidden()), s.y(), s.act(), e.w2(), s.counts(), s.offsets(), e.width(), e.hidden(),
                tiles, e.numExperts());
        device.launch(COMBINE, Grid.of(tokens, e.hidden()), out, s.y(), s.weights(), s.positionOf(), tokens, e.topK(), e.hidden());
    }
}
