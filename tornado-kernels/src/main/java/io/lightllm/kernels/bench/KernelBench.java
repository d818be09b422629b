package io.lightllm.kernels.bench;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Attention;
import io.lightllm.kernels.Embedding;
import io.lightllm.kernels.FoldedGemv;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.Norms;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.kernels.Rotary;
import io.lightllm.kernels.RopeScaling;
import io.lightllm.kernels.Sampling;
import io.lightllm.kernels.Softmax;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Throughput of the kernel library on one device at LLM shapes: GB/s for memory-bound
 * kernels (bytes each kernel must read and write at least once), GFLOP/s for matmul. Each
 * case is warmed up, then timed over enough launches to take a few hundred milliseconds,
 * with a synchronize before reading the clock.
 *
 * Run it with {@code scripts/lightllm bench kernels --device D}.
 */
public final class KernelBench {
    /** One measured case. */
    public record Result(String kernel, String shape, double microsPerLaunch, double gbPerSecond, double gflopPerSecond) {
        public String row() {
            return String.format(Locale.ROOT, "| %-26s | %-30s | %10.1f | %8s | %9s |", kernel, shape, microsPerLaunch,
                    gbPerSecond > 0 ? String.format(Locale.ROOT, "%.1f", gbPerSecond) : "",
                    gflopPerSecond > 0 ? String.format(Locale.ROOT, "%.1f", gflopPerSecond) : "");
        }

        public String json() {
            return String.format(Locale.ROOT, "{\"kernel\":\"%s\",\"shape\":\"%s\",\"us\":%.2f,\"gbps\":%.2f,\"gflops\":%.2f}",
                    kernel, shape, microsPerLaunch, gbPerSecond, gflopPerSecond);
        }
    }

    /** Model shapes: hidden size, heads, kv heads, head dim, intermediate size, vocab. */
    public record Shape(int hidden, int heads, int kvHeads, int headDim, int intermediate, int vocab) {
        public static final Shape LLAMA_8B = new Shape(4096, 32, 8, 128, 14336, 128256);
        public static final Shape SMALL = new Shape(512, 8, 2, 64, 1408, 8192);
        /** bench/configs/llama-1b-32k.json: the CPU comparisons' model. */
        public static final Shape LLAMA_1B = new Shape(2048, 32, 8, 64, 8192, 32000);
    }

    private final Device device;
    private final double targetSeconds;
    private final List<Result> results = new ArrayList<>();

    private final boolean graphs;
    /** Whether decode attention's token table lists the pool slots in order (a request's tokens side by side) instead of shuffled. */
    private boolean orderedSlots;

    public KernelBench(Device device, double targetSeconds) {
        this(device, targetSeconds, false);
    }

    /** With {@code graphs}, devices that record graphs (CUDA) are timed by replaying launches recorded in one. */
    public KernelBench(Device device, double targetSeconds, boolean graphs) {
        this.device = device;
        this.targetSeconds = targetSeconds;
        this.graphs = graphs;
    }

    public Device device() {
        return device;
    }

    /**
     * Decode attention over a pool whose token table lists the slots in order (as a fresh server allocates them: a
     * request's tokens side by side) where {@code ordered}, else shuffled (the default: every key row is a random read,
     * 128 bytes a head for an int8 pool of head dimension 128, 256 for f16).
     */
    public KernelBench orderedSlots(boolean ordered) {
        this.orderedSlots = ordered;
        return this;
    }

    public List<Result> results() {
        return results;
    }

    /** Runs the memory-bound cases for {@code shape} with {@code tokens} rows. */
    public void run(Shape s, int tokens) {
        int hidden = s.hidden;
        int qDim = s.heads * s.headDim, kvDim = s.kvHeads * s.headDim;
        try (Scope sc = new Scope()) {
            DeviceBuffer x = sc.random(DType.F32, (long) tokens * hidden);
            DeviceBuffer out = sc.buffer(DType.F32, (long) tokens * hidden);
            DeviceBuffer residual = sc.random(DType.F32, (long) tokens * hidden);
            DeviceBuffer w = sc.random(DType.F32, hidden);
            long rowBytes = (long) tokens * hidden * 4;
            time("rmsnorm", tokens + "x" + hidden, 2 * rowBytes + hidden * 4L, 0,
                    () -> Norms.launchRmsNorm(device, out, x, w, 1e-5f, tokens, hidden));
            time("rmsnorm+residual", tokens + "x" + hidden, 4 * rowBytes + hidden * 4L, 0,
                    () -> Norms.launchRmsNormAddResidual(device, out, residual, x, w, 1e-5f, tokens, hidden));

            DeviceBuffer q = sc.random(DType.F32, (long) tokens * qDim);
            DeviceBuffer k = sc.random(DType.F32, (long) tokens * kvDim);
            DeviceBuffer positions = sc.ints(tokens, 4096);
            DeviceBuffer invFreq = device.upload(RopeScaling.none(500000).inverseFrequencies(s.headDim, 0));
            sc.own(invFreq);
            time("rotary", tokens + " tok, " + s.heads + "/" + s.kvHeads + " heads", 2L * tokens * (qDim + kvDim) * 4, 0,
                    () -> Rotary.launchRotary(device, q, k, positions, new Rotary.Rope(invFreq, s.headDim, false, 1f), tokens, s.heads, s.kvHeads,
                            s.headDim));

            int slots = Math.max(tokens * 4, 1024);
            DeviceBuffer pool = sc.buffer(DType.F16, (long) slots * kvDim);
            DeviceBuffer dest = sc.permutation(tokens, slots);
            time("kv copy (f16 pool)", tokens + " tok x " + kvDim, (long) tokens * kvDim * (4 + 2), 0,
                    () -> KvCache.launchCopyToPool(device, pool, k, dest, tokens, s.kvHeads, s.headDim));

            DeviceBuffer gate = sc.random(DType.F32, (long) tokens * s.intermediate);
            DeviceBuffer up = sc.random(DType.F32, (long) tokens * s.intermediate);
            DeviceBuffer act = sc.buffer(DType.F32, (long) tokens * s.intermediate);
            time("silu*up", tokens + "x" + s.intermediate, 3L * tokens * s.intermediate * 4, 0,
                    () -> Activations.launchGated(device, Activations.Kind.SILU, act, gate, up, tokens, s.intermediate));

            int rows = Math.min(tokens, 64);
            DeviceBuffer logits = sc.random(DType.F32, (long) rows * s.vocab);
            time("softmax", rows + "x" + s.vocab, 2L * rows * s.vocab * 4, 0,
                    () -> Softmax.launchSoftmax(device, logits, rows, s.vocab));

            DeviceBuffer nextIds = sc.buffer(DType.I32, rows);
            time("argmax", rows + "x" + s.vocab, (long) rows * s.vocab * 4, 0,
                    () -> Sampling.launchArgmax(device, nextIds, logits, rows, s.vocab));

            // sampled decoding: its softmax (in place, again and again: a row of probabilities is as good a row as any), then
            // LightLLM's and vLLM's usual top-k 50, top-p 0.9 over fixed probabilities (softmax of logits in [-3.3, 3.3)): the
            // portable threshold kernel searches 16 ways a pass, some 17 reads of the row; the JVM's radix selection
            // ({@code kernels.jvm.JvmSampling}) reads it once and its keys a few times
            DeviceBuffer scaled = sc.random(DType.F32, (long) rows * s.vocab), temperatures = sc.filled(rows, 1f);
            time("temperature softmax", rows + "x" + s.vocab, 2L * rows * s.vocab * 4, 0,
                    () -> Sampling.launchTemperatureSoftmax(device, scaled, temperatures, rows, s.vocab));
            DeviceBuffer probs = sc.random(DType.F32, (long) rows * s.vocab);
            Sampling.launchTemperatureSoftmax(device, probs, sc.filled(rows, 0.3f), rows, s.vocab);
            DeviceBuffer topP = sc.filled(rows, 0.9f), uniforms = sc.filled(rows, 0.5f), threshold = sc.buffer(DType.F32, rows);
            int[] fifty = new int[rows];
            java.util.Arrays.fill(fifty, 50);
            DeviceBuffer topK = sc.own(device.upload(IntArray.fromArray(fifty)));
            time("top-k 50, top-p 0.9 threshold", rows + "x" + s.vocab, (long) rows * s.vocab * 4, 0,
                    () -> Sampling.launchTopKTopPThreshold(device, threshold, probs, topK, topP, rows, s.vocab));
            // each search alone: top-k 50 without top-p, top-p 0.9 without top-k (its search from 0)
            DeviceBuffer noTopP = sc.filled(rows, 1f), noTopK = sc.own(device.upload(IntArray.allocate(rows)));
            time("top-k 50 threshold", rows + "x" + s.vocab, (long) rows * s.vocab * 4, 0,
                    () -> Sampling.launchTopKTopPThreshold(device, threshold, probs, topK, noTopP, rows, s.vocab));
            time("top-p 0.9 threshold", rows + "x" + s.vocab, (long) rows * s.vocab * 4, 0,
                    () -> Sampling.launchTopKTopPThreshold(device, threshold, probs, noTopK, topP, rows, s.vocab));
            time("sample from threshold", rows + "x" + s.vocab, (long) rows * s.vocab * 4, 0,
                    () -> Sampling.launchSampleFromThreshold(device, nextIds, probs, threshold, uniforms, rows, s.vocab));

            DeviceBuffer table = sc.random(DType.BF16, (long) Math.min(s.vocab, 32000) * hidden);
            DeviceBuffer ids = sc.ints(tokens, Math.min(s.vocab, 32000));
            time("embedding (bf16)", tokens + "x" + hidden, (long) tokens * hidden * (2 + 4), 0,
                    () -> Embedding.launchGather(device, out, table, ids, tokens, hidden));
        }
    }

    /**
     * Matmul at decode shapes (m = batch) against bf16 weights [n = k = hidden]: through the
     * launcher (the backend's override: Vector API, cuBLAS) and the portable Java kernel; plus
     * square m = n = k = {@code square} when positive.
     */
    public void runMatmul(Shape s, int[] batches, int square) {
        int k = s.hidden, n = s.hidden;
        try (Scope sc = new Scope()) {
            DeviceBuffer w = sc.random(DType.BF16, (long) n * k);
            for (int m : batches) {
                DeviceBuffer a = sc.random(DType.F32, (long) m * k);
                DeviceBuffer out = sc.buffer(DType.F32, (long) m * n);
                long flops = 2L * m * n * k;
                long bytes = (long) n * k * 2 + (long) m * (k + n) * 4;
                time("matmul bf16", m + "x" + n + "x" + k, bytes, flops,
                        () -> io.lightllm.kernels.Matmul.launchMatmul(device, out, a, w, null, m, n, k));
                if (m <= Tuning.get(device, "matmul.gemv_max_m", 16)) {
                    int columns = io.lightllm.kernels.Matmul.gemvColumns(device, m);
                    int rowsPerTeam = io.lightllm.kernels.Matmul.floatRowsPerTeam(device, m, k);
                    io.lightllm.tornado.runtime.Grid grid = io.lightllm.kernels.Matmul.gemvGrid(m, n, io.lightllm.kernels.Matmul.gemvLocal(device),
                            columns, rowsPerTeam);
                    time("matmul bf16 (Java kernel)", m + "x" + n + "x" + k, bytes, flops, () -> device.launchPortable(
                            io.lightllm.kernels.Matmul.MATMUL_GEMV, grid, out, a, w, out, false, m, n, k, columns, rowsPerTeam));
                } else if (io.lightllm.kernels.Matmul.usesTensorCores(device, w, k)) {
                    time("matmul bf16 (Java tensor cores)", m + "x" + n + "x" + k, bytes, flops, () -> launchJavaTensorCores(out, a, w, m, n, k));
                } else {
                    io.lightllm.tornado.runtime.Grid grid = io.lightllm.kernels.Matmul.tiledGrid(m, n, Tuning.get(device, "matmul.tile", 16));
                    time("matmul bf16 (Java kernel)", m + "x" + n + "x" + k, bytes, flops,
                            () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TILED, grid, out, a, w, out, false, m, n, k));
                }
            }
        }
        if (square > 0) {
            try (Scope sc = new Scope()) {
                DeviceBuffer w = sc.random(DType.BF16, (long) square * square);
                DeviceBuffer a = sc.random(DType.F32, (long) square * square);
                DeviceBuffer out = sc.buffer(DType.F32, (long) square * square);
                long flops = 2L * square * square * square;
                time("matmul bf16", square + "^3", 0, flops,
                        () -> io.lightllm.kernels.Matmul.launchMatmul(device, out, a, w, null, square, square, square));
                if (io.lightllm.kernels.Matmul.usesTensorCores(device, w, square)) {
                    time("matmul bf16 (Java tensor cores)", square + "^3", 0, flops, () -> launchJavaTensorCores(out, a, w, square, square, square));
                    // both operands bf16: the GEMM itself, against the vendor's (cuBLAS) where there is one
                    DeviceBuffer a16 = sc.random(DType.BF16, (long) square * square);
                    io.lightllm.tornado.runtime.Grid grid = io.lightllm.kernels.Matmul.tensorCoreGrid(square, square, 1);
                    time("matmul bf16*bf16 (vendor)", square + "^3", 0, flops,
                            () -> device.launch(io.lightllm.kernels.Matmul.MATMUL_TC_BF16, grid, out, a16, w, out, false, square, square, square, false, 1));
                    time("matmul bf16*bf16 (Java tensor cores)", square + "^3", 0, flops,
                            () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TC_BF16, grid, out, a16, w, out, false, square, square, square, false, 1));
                    io.lightllm.tornado.runtime.Grid wide = io.lightllm.kernels.TensorCoreMatmul.grid(square, square, 1, true);
                    time("matmul bf16*bf16 (Java tensor cores, 128x256 tiles)", square + "^3", 0, flops,
                            () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TC_BF16_WIDE, wide, out, a16, w, out, false, square, square, square, false, 1));
                    time("matmul bf16*bf16 (Java tensor cores, k 64 a step)", square + "^3", 0, flops,
                            () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TC_BF16_DEEP, grid, out, a16, w, out, false, square, square, square, false, 1));
                    if (device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA)) {
                        time("matmul bf16*bf16 (Java warpgroup MMA)", square + "^3", 0, flops,
                                () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_WARPGROUP_BF16, io.lightllm.kernels.WarpgroupMatmul.grid(square, square),
                                        out, a16, w, out, false, square, square, square));
                    }
                } else {
                    io.lightllm.tornado.runtime.Grid grid = io.lightllm.kernels.Matmul.tiledGrid(square, square, Tuning.get(device, "matmul.tile", 16));
                    time("matmul bf16 (Java kernel)", square + "^3", 0, flops,
                            () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TILED, grid, out, a, w, out, false, square, square, square));
                }
            }
        }
    }

    /**
     * Decode matmuls (m = each of {@code batches}) at the shape's own matrices (q/o, k/v, gate/up, down, the LM head):
     * bf16, int8 rows and int4 blocks, through the launchers (on CUDA, -Dlightllm.tuning.cuda.matmul.vendor_min_m=1
     * times cuBLAS for bf16 at batch 1). GB/s counts the weight bytes (packed size) and the f32 activations once. Each
     * case cycles through copies of its weights that together exceed {@link #CYCLED_BYTES}, as a model's layers do: one
     * matrix launched again and again is read from the L2 (50 MB on an H100) when it fits there, and its
     * int8/int4 4096 x 4096 GEMVs once read 2-4 TB/s, above the copy rate (before 2026-12-05).
     */
    public void runDecodeMatmuls(Shape s, int[] batches) {
        int[][] nk = {{s.heads * s.headDim, s.hidden}, {s.kvHeads * s.headDim, s.hidden}, {s.intermediate, s.hidden},
                {s.hidden, s.intermediate}, {s.vocab, s.hidden}};
        for (int m : batches) {
            for (int[] shape : nk) {
                int n = shape[0], k = shape[1];
                try (Scope sc = new Scope()) {
                    DeviceBuffer a = sc.random(DType.F32, (long) m * k);
                    DeviceBuffer out = sc.buffer(DType.F32, (long) m * n);
                    long act = 4L * m * (k + n);
                    String label = m + "x" + n + "x" + k;
                    long flops = 2L * m * n * k;
                    DeviceBuffer[] w = sc.cycled(2L * n * k, () -> sc.random(DType.BF16, (long) n * k));
                    time("decode matmul bf16", label, 2L * n * k + act, flops,
                            cycling(w, b -> io.lightllm.kernels.Matmul.launchMatmul(device, out, a, b, null, m, n, k)));
                    sc.releaseAll(w);
                    DeviceBuffer[] codes = sc.cycled((long) n * k, () -> sc.random(DType.I8, (long) n * k));
                    DeviceBuffer scales = sc.random(DType.F32, n);
                    time("decode matmul int8", label, (long) n * k + 4L * n + act, flops,
                            cycling(codes, c -> io.lightllm.kernels.Matmul.launchMatmulInt8(device, out, a, c, scales, null, m, n, k)));
                    sc.releaseAll(codes);
                    long rowBytes = io.lightllm.kernels.QuantFormat.INT4.rowBytes(k);
                    io.lightllm.tornado.api.ByteArray packed = int4Blocks(n, k);
                    DeviceBuffer[] blocks = sc.cycled(n * rowBytes, () -> sc.own(device.upload(packed)));
                    time("decode matmul int4", label, n * rowBytes + act, flops, cycling(blocks,
                            b -> io.lightllm.kernels.QuantMatmul.launch(device, out, a, b, io.lightllm.kernels.QuantFormat.INT4, null, m, n, k)));
                }
            }
            if (m == 1) {
                runGatedGemvs(s.intermediate, s.hidden);
            }
        }
    }

    /**
     * The batch-1 gated MLP launches (gate and up rows [2 width, k] and the activation in one GEMV) where the device runs
     * them: bf16, int8 rows and int4 blocks, through the launchers; GB/s counts the weight bytes and the f32 activations.
     */
    private void runGatedGemvs(int width, int k) {
        io.lightllm.kernels.Activations.Kind silu = io.lightllm.kernels.Activations.Kind.SILU;
        String label = "1x2x" + width + "x" + k;
        long act = 4L * (k + width);
        long flops = 4L * width * k;
        try (Scope sc = new Scope()) {
            DeviceBuffer a = sc.random(DType.F32, k);
            DeviceBuffer out = sc.buffer(DType.F32, width);
            if (io.lightllm.kernels.Matmul.gatedGemvApplies(device, 1, k)) {
                DeviceBuffer[] w = sc.cycled(4L * width * k, () -> sc.random(DType.BF16, 2L * width * k));
                time("decode gated bf16", label, 4L * width * k + act, flops,
                        cycling(w, b -> io.lightllm.kernels.Matmul.launchGatedGemv(device, out, a, b, null, silu, width, k)));
                sc.releaseAll(w);
            }
            if (io.lightllm.kernels.Matmul.gatedInt8Applies(device, 1, k)) {
                DeviceBuffer[] codes = sc.cycled(2L * width * k, () -> sc.random(DType.I8, 2L * width * k));
                DeviceBuffer scales = sc.random(DType.F32, 2L * width);
                time("decode gated int8", label, 2L * width * k + 8L * width + act, flops,
                        cycling(codes, c -> io.lightllm.kernels.Matmul.launchGatedGemvInt8(device, out, a, c, scales, null, silu, width, k)));
                sc.releaseAll(codes);
            }
            io.lightllm.kernels.QuantFormat int4 = io.lightllm.kernels.QuantFormat.INT4;
            if (io.lightllm.kernels.QuantMatmul.gatedApplies(device, int4, 1, k)) {
                long bytes = 2L * width * int4.rowBytes(k);
                io.lightllm.tornado.api.ByteArray packed = int4Blocks(2 * width, k);
                DeviceBuffer[] blocks = sc.cycled(bytes, () -> sc.own(device.upload(packed)));
                time("decode gated int4", label, bytes + act, flops,
                        cycling(blocks, b -> io.lightllm.kernels.QuantMatmul.launchGated(device, out, a, b, int4, null, silu, 1, width, k)));
            }
        }
    }

    /**
     * The batch-1 GEMVs a decode step runs where the device folds norms and residual adds into them
     * ({@link FoldedGemv}: on CUDA the int4 ones stage their activations, StagedQ8Gemv), over int8 rows and int4 blocks at
     * the layer's five products in its order ({@link #foldedProducts}), those of them named in {@code products}
     * ({@link #FOLDED_PRODUCTS}). GB/s counts the weight bytes and the f32 activations once, as above.
     */
    public void runFoldedGemvs(Shape s, java.util.Set<String> products) {
        for (String p : products) {
            if (!FOLDED_PRODUCTS.contains(p)) {
                throw new IllegalArgumentException("no folded product " + p + " (" + String.join(",", FOLDED_PRODUCTS) + ")");
            }
        }
        QuantFormat int4 = QuantFormat.INT4;
        Activations.Kind silu = Activations.Kind.SILU;
        for (FoldedProduct product : foldedProducts(s)) {
            if (!products.contains(product.key())) {
                continue;
            }
            int n = product.n(), k = product.k();
            boolean gated = product.fold() == FoldedKind.GATED;
            int rows = gated ? 2 * n : n;
            String label = product.name() + " " + rows + "x" + k;
            long act = 4L * (k + n);
            long flops = 2L * rows * k;
            try (Scope sc = new Scope()) {
                DeviceBuffer a = sc.random(DType.F32, k);
                DeviceBuffer out = sc.random(DType.F32, n);
                FoldedGemv.Fold fold = product.fold() == FoldedKind.ADDING ? FoldedGemv.Fold.ADD
                        : FoldedGemv.Fold.rmsNorm(sc.random(DType.F32, k), 1e-5f);
                if (gated ? FoldedGemv.int8GatedApplies(device, k) : FoldedGemv.int8Applies(device, k)) {
                    DeviceBuffer[] codes = sc.cycled((long) rows * k, () -> sc.random(DType.I8, (long) rows * k));
                    DeviceBuffer scales = sc.random(DType.F32, rows);
                    time("decode folded int8", label, (long) rows * k + 4L * rows + act, flops, cycling(codes, c -> {
                        if (gated) {
                            FoldedGemv.launchInt8Gated(device, out, a, c, scales, null, silu, n, k, fold);
                        } else {
                            FoldedGemv.launchInt8(device, out, a, c, scales, null, n, k, fold);
                        }
                    }));
                    sc.releaseAll(codes);
                }
                if (gated ? FoldedGemv.packedGatedApplies(device, int4, k) : FoldedGemv.packedApplies(device, int4, k)) {
                    long bytes = rows * int4.rowBytes(k);
                    io.lightllm.tornado.api.ByteArray blocks = int4Blocks(rows, k);
                    DeviceBuffer[] packs = sc.cycled(bytes, () -> sc.own(device.upload(blocks)));
                    time("decode folded int4", label, bytes + act, flops, cycling(packs, b -> {
                        if (gated) {
                            FoldedGemv.launchPackedGated(device, out, a, b, int4, null, silu, n, k, fold);
                        } else {
                            FoldedGemv.launchPacked(device, out, a, b, int4, null, n, k, fold);
                        }
                    }));
                    if (product.key().equals("qkv")) {
                        timeSplit(sc, s, packs, a, out, fold, label, bytes + act, flops);
                    }
                }
            }
        }
    }

    /**
     * The int4 q/k/v projection and the split after it (rotary, q/k/v apart, k and v into an f16 pool) as two launches, and
     * where the tuning {@code matmul.q8_staged_split} turns it on, as the one projection that splits its own output
     * ({@link FoldedGemv#launchPackedSplit}).
     */
    private void timeSplit(Scope sc, Shape s, DeviceBuffer[] packs, DeviceBuffer a, DeviceBuffer qkv, FoldedGemv.Fold fold, String label,
            long bytes, long flops) {
        int kvDim = s.kvHeads * s.headDim, slots = 1024, k = s.hidden;
        DeviceBuffer invFreq = sc.own(device.upload(RopeScaling.none(500000).inverseFrequencies(s.headDim, 0)));
        KvCache.QkvSplit split = new KvCache.QkvSplit(sc.buffer(DType.F32, (long) s.heads * s.headDim), sc.buffer(DType.F32, kvDim),
                sc.buffer(DType.F32, kvDim), sc.ints(1, 4096), new Rotary.Rope(invFreq, s.headDim, false, 1f), sc.buffer(DType.F16, (long) slots * kvDim),
                sc.buffer(DType.F16, (long) slots * kvDim), sc.permutation(1, slots), Attention.Heads.of(s.heads, s.kvHeads, s.headDim));
        time("decode folded int4", label + ", then splitQkv", bytes, flops, cycling(packs, b -> {
            FoldedGemv.launchPacked(device, qkv, a, b, QuantFormat.INT4, null, split.width(), k, fold);
            KvCache.launchSplitQkv(device, qkv, split, 1);
        }));
        if (FoldedGemv.packedSplitApplies(device, QuantFormat.INT4, k, split)) {
            time("decode folded int4", label + ", split in its epilogue", bytes, flops, cycling(packs,
                    b -> FoldedGemv.launchPackedSplit(device, a, b, QuantFormat.INT4, null, k, fold, split)));
        }
    }

    /** What a folded GEMV takes in: its input's norm, an add into its output, or (gated) the norm and [gate; up] rows. */
    private enum FoldedKind { NORMED, ADDING, GATED }

    /** One of a layer's batch-1 products: n outputs (gated: n of [gate; up]'s 2n rows) of k inputs. */
    private record FoldedProduct(String key, String name, int n, int k, FoldedKind fold) {
    }

    /** A layer's five products of shape {@code s}, in its order; their keys are {@link #FOLDED_PRODUCTS}. */
    private static List<FoldedProduct> foldedProducts(Shape s) {
        return List.of(new FoldedProduct("qkv", "q/k/v normed", (s.heads + 2 * s.kvHeads) * s.headDim, s.hidden, FoldedKind.NORMED),
                new FoldedProduct("o", "o adding", s.hidden, s.heads * s.headDim, FoldedKind.ADDING),
                new FoldedProduct("gateup", "gate/up gated", s.intermediate, s.hidden, FoldedKind.GATED),
                new FoldedProduct("down", "down adding", s.hidden, s.intermediate, FoldedKind.ADDING),
                new FoldedProduct("head", "head normed", s.vocab, s.hidden, FoldedKind.NORMED));
    }

    /** {@link #runFoldedGemvs}'s products, in a layer's order (the same for every shape). */
    public static final List<String> FOLDED_PRODUCTS = foldedProducts(Shape.SMALL).stream().map(FoldedProduct::key).toList();

    /** Bytes of weights a GEMV case cycles through (see {@link #runDecodeMatmuls}): several times an H100's or H200's L2. */
    static final long CYCLED_BYTES = 256L << 20;

    /** A launch that takes the next of {@code buffers} each time it runs (a graph captured over it holds them in turn). */
    private static Runnable cycling(DeviceBuffer[] buffers, java.util.function.Consumer<DeviceBuffer> launch) {
        int[] next = {0};
        return () -> launch.accept(buffers[next[0]++ % buffers.length]);
    }

    /**
     * int4 blocks of n rows of k (a multiple of 128): random codes and a scale of 0.01 in every group. Random bytes
     * would do for a GPU, but their scales include subnormal floats, which cost a CPU microcode assists: the JVM's int4
     * GEMV timed 15-18 GB/s over them against 28 over real scales.
     */
    private static io.lightllm.tornado.api.ByteArray int4Blocks(int n, int k) {
        long rowBytes = io.lightllm.kernels.QuantFormat.INT4.rowBytes(k);
        io.lightllm.tornado.api.ByteArray blocks = io.lightllm.tornado.api.ByteArray.allocate(Math.toIntExact(n * rowBytes));
        byte[] codes = new byte[64];
        new java.util.Random(1).nextBytes(codes);
        java.lang.foreign.MemorySegment seg = blocks.segment();
        int groups = k / 128, format = io.lightllm.kernels.QuantBlocks.INT4;
        for (int rowAt = 0; rowAt < seg.byteSize(); rowAt += (int) rowBytes) {
            for (int g = 0; g < groups; g++) {
                seg.set(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN),
                        io.lightllm.kernels.QuantBlocks.int4ScaleAt(format, rowAt, groups, g), 0.01f);
                java.lang.foreign.MemorySegment.copy(codes, 0, seg, java.lang.foreign.ValueLayout.JAVA_BYTE,
                        io.lightllm.kernels.QuantBlocks.int4CodesAt(rowAt, g), 64);
            }
        }
        return blocks;
    }

    /** The Java tensor-core GEMM itself, past any vendor override, f32 activations. */
    private void launchJavaTensorCores(DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, int m, int n, int k) {
        device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TC_BF16, io.lightllm.kernels.Matmul.tensorCoreGrid(m, n, 1), out, a, w, out, false, m, n, k, true,
                1);
    }


    /**
     * A prefill attention case: {@code requests} prompts of {@code tokens} new tokens each, in one launch. One request
     * is a single prompt's step; FlashAttention's own benchmarks hold requests x tokens at 16k (32 x 512), the way a
     * serving step batches short prompts.
     */
    public record Prefill(int requests, int tokens) {
        public Prefill {
            if (requests < 1 || tokens < 1) {
                throw new IllegalArgumentException("a prefill case needs at least one request of one token, not " + requests + "x" + tokens);
            }
        }

        /** "512,4096,32x512": a length is one request of it, RxT R requests of T tokens; "0" none. */
        public static List<Prefill> parse(String csv) {
            List<Prefill> cases = new ArrayList<>();
            if (csv.trim().equals("0")) {
                return cases;
            }
            for (String item : csv.split(",")) {
                String[] parts = item.trim().split("x", -1);
                try {
                    if (parts.length > 2) {
                        throw new NumberFormatException(item);
                    }
                    cases.add(parts.length == 1 ? new Prefill(1, Integer.parseInt(parts[0]))
                            : new Prefill(Integer.parseInt(parts[0]), Integer.parseInt(parts[1])));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("a prefill case is T or RxT (R requests of T tokens), not '" + item + "'");
                }
            }
            return cases;
        }
    }

    /**
     * Decode attention over an f16, an int8 and an fp8 Token Attention pool (bytes: K and V of every
     * context token, the int8 or fp8 scales, the token table), and causal prefill attention of each
     * {@link Prefill} (flops: 4 t^2 h d / 2 a request). The label says which kernels ran.
     */
    public void runAttention(Shape s, int[] batches, int[] contexts, List<Prefill> prefills) {
        int kvDim = s.kvHeads * s.headDim;
        Attention.Heads heads = Attention.Heads.of(s.heads, s.kvHeads, s.headDim);
        for (int ctx : contexts) {
            for (int b : batches) {
                if ((long) b * ctx * kvDim > Integer.MAX_VALUE) {
                    System.out.println("| decode attention | b" + b + " ctx" + ctx + " | skipped: a pool this large passes int indexing |");
                    continue;
                }
                for (DType pool : new DType[] {DType.F16, DType.I8, DType.F8_E4M3}) {
                    try (Scope sc = new Scope()) {
                        int slots = b * ctx;
                        boolean scaled = KvCache.hasScales(pool);
                        Attention.KvView kv = scaled
                                ? new Attention.KvView(sc.random(pool, (long) slots * kvDim), sc.random(pool, (long) slots * kvDim),
                                        sc.random(DType.F32, (long) slots * s.kvHeads), sc.random(DType.F32, (long) slots * s.kvHeads))
                                : Attention.KvView.of(sc.random(pool, (long) slots * kvDim), sc.random(pool, (long) slots * kvDim));
                        int[] rowIds = new int[b];
                        int[] lens = new int[b];
                        for (int i = 0; i < b; i++) {
                            rowIds[i] = i;
                            lens[i] = ctx;
                        }
                        DeviceBuffer tokenSlots = orderedSlots ? sc.own(device.upload(IntArray.fromArray(java.util.stream.IntStream.range(0, slots)
                                .toArray()))) : sc.permutation(slots, slots);
                        Attention.TokenTableView table = new Attention.TokenTableView(tokenSlots,
                                sc.own(device.upload(IntArray.fromArray(rowIds))), ctx);
                        Attention.DecodeBatch batch = new Attention.DecodeBatch(sc.own(device.upload(IntArray.fromArray(lens))), b, ctx);
                        DeviceBuffer q = sc.random(DType.F32, (long) b * s.heads * s.headDim);
                        DeviceBuffer out = sc.buffer(DType.F32, (long) b * s.heads * s.headDim);
                        Attention.DecodeScratch scratch = Attention.DecodeScratch.allocateFor(device, b, heads, ctx);
                        long bytes = 2L * slots * kvDim * pool.bytes() + (scaled ? 2L * slots * s.kvHeads * 4 : 0) + (long) slots * 4;
                        String kernel = "decode attention" + (Attention.usesTensorCores(device, kv, heads) ? " (tensor cores)" : "");
                        // what the launcher will choose for this pool: splits, and warps a work-group where more than one
                        Attention.DecodeSplits chosen = Attention.DecodeSplits.choose(device, b, heads, ctx, pool);
                        int splits = chosen.splits();
                        String shape = splits + " split" + (splits > 1 ? "s" : "") + (chosen.warps() > 1 ? " x " + chosen.warps() + " warps" : "")
                                + (orderedSlots ? ", ordered slots" : "");
                        time(kernel, "b" + b + " ctx" + ctx + " " + pool.name().toLowerCase() + " pool, " + shape, bytes, 4L * slots * s.heads * s.headDim,
                                () -> Attention.launchDecodeAttention(device, out, q, kv, table, heads, batch, scratch));
                        device.synchronize();
                        scratch.close();
                    }
                }
            }
        }
        for (Prefill p : prefills) {
            int t = p.tokens();
            int rows = p.requests() * t;
            try (Scope sc = new Scope()) {
                Attention.KvView kv = Attention.KvView.of(sc.random(DType.F16, (long) rows * kvDim), sc.random(DType.F16, (long) rows * kvDim));
                int[] requestRows = new int[p.requests()];
                int[] starts = new int[p.requests()];
                int[] counts = new int[p.requests()];
                for (int r = 0; r < p.requests(); r++) {
                    requestRows[r] = r;
                    starts[r] = r * t;
                    counts[r] = t;
                }
                // request r's positions in row r of the table, its slots a random share of the pool's
                Attention.TokenTableView table = new Attention.TokenTableView(sc.permutation(rows, rows),
                        sc.own(device.upload(IntArray.fromArray(requestRows))), t);
                Attention.PrefillBatch batch = new Attention.PrefillBatch(sc.own(device.upload(IntArray.fromArray(starts))),
                        sc.own(device.upload(IntArray.fromArray(counts))), sc.own(device.upload(IntArray.fromArray(new int[p.requests()]))),
                        p.requests(), rows, t);
                // queries and output in the types a bf16 model's step hands this kernel here (the f16 query operand and the
                // o projection's bf16 where the warpgroup kernel takes them)
                DType queryType = Attention.prefillQueryType(device, kv, heads), outType = Attention.prefillOutputType(device, kv, heads, DType.BF16);
                DeviceBuffer q = sc.random(queryType, (long) rows * s.heads * s.headDim);
                DeviceBuffer out = sc.buffer(outType, (long) rows * s.heads * s.headDim);
                long flops = 2L * p.requests() * t * (t + 1) * s.heads * s.headDim; // causal: half of 4 t^2 h d a request
                String kernel = "prefill attention" + (Attention.usesTensorCores(device, kv, heads) ? " (tensor cores)" : "");
                String shape = (p.requests() > 1 ? p.requests() + " x " : "") + t + " tok causal, f16 pool"
                        + (queryType == DType.F32 && outType == DType.F32 ? "" : ", " + queryType.name().toLowerCase() + " q, " + outType.name().toLowerCase() + " out");
                time(kernel, shape, 0, flops, () -> Attention.launchPrefillAttention(device, out, q, kv, table, heads, batch));
            }
        }
    }

    /**
     * Times {@code launch}: warm-up, then repeats until {@link #targetSeconds} pass, synchronising
     * before each clock read. {@code bytes} and {@code flops} are per launch.
     */
    public Result time(String kernel, String shape, long bytes, long flops, Runnable launch) {
        // warm up until the JIT (JVM) or the driver's caches (GPU) settle: at least 10 launches
        // and a third of the measuring time, then size the measured run from the last launches
        long warmEnd = System.nanoTime() + (long) (targetSeconds / 3 * 1e9);
        int warm = 0;
        long lastStart;
        long one;
        do {
            lastStart = System.nanoTime();
            launch.run();
            device.synchronize();
            one = Math.max(1, System.nanoTime() - lastStart);
            warm++;
        } while (warm < 10 || System.nanoTime() < warmEnd);
        int reps = (int) Math.max(3, Math.min(100_000, targetSeconds * 1e9 / one));
        double seconds = graphs ? replayedSeconds(launch, one) : -1;
        if (seconds < 0) {
            long start = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                launch.run();
            }
            device.synchronize();
            seconds = (System.nanoTime() - start) / 1e9 / reps;
        }
        Result r = new Result(kernel, shape, seconds * 1e6, bytes / seconds / 1e9, flops / seconds / 1e9);
        results.add(r);
        System.out.println(r.row());
        return r;
    }

    /** Launches recorded per graph when timing replays. */
    private static final int GRAPH_LAUNCHES = 20;

    /**
     * Seconds per launch from replays of a recorded graph of {@link #GRAPH_LAUNCHES} launches, as the
     * engine replays its decode steps (so the host's launch overhead, paid once per graph, is not
     * counted per kernel); -1 where the device records no graphs.
     */
    private double replayedSeconds(Runnable launch, long oneNanos) {
        Device.Replay graph = device.capture(() -> {
            for (int i = 0; i < GRAPH_LAUNCHES; i++) {
                launch.run();
            }
        });
        if (graph == null) {
            return -1;
        }
        try (graph) {
            graph.replay();
            device.synchronize();
            int replays = (int) Math.max(3, Math.min(10_000, targetSeconds * 1e9 / ((double) oneNanos * GRAPH_LAUNCHES)));
            long start = System.nanoTime();
            for (int i = 0; i < replays; i++) {
                graph.replay();
            }
            device.synchronize();
            return (System.nanoTime() - start) / 1e9 / ((double) replays * GRAPH_LAUNCHES);
        }
    }

    /** Buffers of one group of cases, freed together. */
    public final class Scope implements AutoCloseable {
        private final List<DeviceBuffer> owned = new ArrayList<>();
        private final SplittableRandom random = new SplittableRandom(42);

        public DeviceBuffer own(DeviceBuffer b) {
            owned.add(b);
            return b;
        }

        /**
         * Enough buffers from {@code make} ({@code bytes} each) to hold {@link #CYCLED_BYTES} together, at most
         * {@link #GRAPH_LAUNCHES} (a captured graph then holds each at least once).
         */
        public DeviceBuffer[] cycled(long bytes, java.util.function.Supplier<DeviceBuffer> make) {
            int count = (int) Math.max(1, Math.min(GRAPH_LAUNCHES, (CYCLED_BYTES + bytes - 1) / bytes));
            DeviceBuffer[] buffers = new DeviceBuffer[count];
            for (int i = 0; i < count; i++) {
                buffers[i] = make.get();
            }
            return buffers;
        }

        public void releaseAll(DeviceBuffer[] buffers) {
            for (DeviceBuffer b : buffers) {
                release(b);
            }
        }

        /** Frees {@code b} now, before the scope ends (the next case's matrices need its memory). */
        public void release(DeviceBuffer b) {
            owned.remove(b);
            b.close();
        }

        public DeviceBuffer buffer(DType t, long n) {
            return own(device.allocate(t, n));
        }

        /**
         * Uniform values in [-1, 1) (int8: codes in [-127, 127]): never zeros, which can hide wrong
         * indexing and run unrealistically fast. Filled on the device: pools of gigabytes would take
         * the host longer than the measurement.
         */
        public DeviceBuffer random(DType t, long n) {
            DeviceBuffer b = buffer(t, n);
            if (n > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("a benchmark buffer of " + n + " elements is larger than int indexing allows");
            }
            device.launch(FILL_RANDOM, io.lightllm.tornado.runtime.Grid.of(n), b, (int) n, random.nextInt(), t == DType.I8 ? 127f : 1f);
            return b;
        }

        /** n f32 values, each {@code value}. */
        public DeviceBuffer filled(int n, float value) {
            float[] values = new float[n];
            java.util.Arrays.fill(values, value);
            return own(device.upload(io.lightllm.tornado.api.FloatArray.fromArray(values)));
        }

        public DeviceBuffer ints(int n, int bound) {
            IntArray host = IntArray.allocate(n);
            for (int i = 0; i < n; i++) {
                host.set(i, random.nextInt(bound));
            }
            DeviceBuffer b = buffer(DType.I32, n);
            device.copyIn(host, b);
            return b;
        }

        /** n distinct values below bound. */
        public DeviceBuffer permutation(int n, int bound) {
            int[] all = new int[bound];
            for (int i = 0; i < bound; i++) {
                all[i] = i;
            }
            for (int i = 0; i < n; i++) {
                int j = i + random.nextInt(bound - i);
                int t = all[i];
                all[i] = all[j];
                all[j] = t;
            }
            IntArray host = IntArray.fromArray(java.util.Arrays.copyOf(all, n));
            DeviceBuffer b = buffer(DType.I32, n);
            device.copyIn(host, b);
            return b;
        }

        @Override
        public void close() {
            owned.forEach(DeviceBuffer::close);
        }
    }

    private static final KernelRef FILL_RANDOM = KernelRef.of(KernelBench.class, "fillRandom");

    /** out[i] = a hash of (i, seed) mapped to [-scale, scale), rounded to out's dtype (scale 127: int8 codes). */
    public static void fillRandom(NativeArray out, int n, int seed, float scale) {
        for (@Parallel int i = 0; i < n; i++) {
            int h = i * 0x9E3779B9 + seed;
            h ^= h >>> 16;
            h *= 0x85EBCA6B;
            h ^= h >>> 13;
            h *= 0xC2B2AE35;
            h ^= h >>> 16;
            float u = (h >>> 8) * (1f / 16777216f); // [0, 1)
            float v = (2f * u - 1f) * scale;
            out.setFloat(i, scale > 1f ? KMath.round(v) : v);
        }
    }

    /** The header row of the table that {@link Result} rows fill. */
    public static final String HEADER = "| kernel                     | shape                          |  us/launch |     GB/s |   GFLOP/s |\n|---|---|---|---|---|";
}
