package io.lightllm.kernels.bench;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Embedding;
import io.lightllm.kernels.KvCache;
import io.lightllm.kernels.Norms;
import io.lightllm.kernels.Rotary;
import io.lightllm.kernels.RopeScaling;
import io.lightllm.kernels.Softmax;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
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
    }

    private final Device device;
    private final double targetSeconds;
    private final List<Result> results = new ArrayList<>();

    public KernelBench(Device device, double targetSeconds) {
        this.device = device;
        this.targetSeconds = targetSeconds;
    }

    public Device device() {
        return device;
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
                    () -> Rotary.launchRotary(device, q, k, positions, invFreq, tokens, s.heads, s.kvHeads, s.headDim, s.headDim, false, 1f));

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
                    io.lightllm.tornado.runtime.Grid grid = io.lightllm.kernels.Matmul.gemvGrid(device, m, n);
                    int columns = io.lightllm.kernels.Matmul.gemvColumns(device, m);
                    time("matmul bf16 (Java kernel)", m + "x" + n + "x" + k, bytes, flops,
                            () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_GEMV, grid, out, a, w, out, false, m, n, k, columns));
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
                io.lightllm.tornado.runtime.Grid grid = io.lightllm.kernels.Matmul.tiledGrid(square, square, Tuning.get(device, "matmul.tile", 16));
                time("matmul bf16 (Java kernel)", square + "^3", 0, flops,
                        () -> device.launchPortable(io.lightllm.kernels.Matmul.MATMUL_TILED, grid, out, a, w, out, false, square, square, square));
            }
        }
    }

    /** Decode attention over an f16 Token Attention pool (bytes: K and V of every context token), and causal prefill. */
    public void runAttention(Shape s, int[] batches, int[] contexts, int prefillTokens) {
        int kvDim = s.kvHeads * s.headDim;
        float scale = (float) (1 / Math.sqrt(s.headDim));
        for (int ctx : contexts) {
            for (int b : batches) {
                try (Scope sc = new Scope()) {
                    int slots = b * ctx;
                    DeviceBuffer kPool = sc.random(DType.F16, (long) slots * kvDim);
                    DeviceBuffer vPool = sc.random(DType.F16, (long) slots * kvDim);
                    DeviceBuffer table = sc.permutation(slots, slots);
                    int[] rowIds = new int[b];
                    int[] lens = new int[b];
                    for (int i = 0; i < b; i++) {
                        rowIds[i] = i;
                        lens[i] = ctx;
                    }
                    DeviceBuffer rows = sc.own(device.upload(IntArray.fromArray(rowIds)));
                    DeviceBuffer seqLen = sc.own(device.upload(IntArray.fromArray(lens)));
                    DeviceBuffer q = sc.random(DType.F32, (long) b * s.heads * s.headDim);
                    DeviceBuffer out = sc.buffer(DType.F32, (long) b * s.heads * s.headDim);
                    io.lightllm.kernels.Attention.DecodeScratch scratch = io.lightllm.kernels.Attention.DecodeScratch.allocateFor(
                            device, b, s.heads, s.headDim, ctx);
                    long bytes = 2L * b * ctx * kvDim * 2 + (long) b * ctx * 4;
                    time("decode attention", "b" + b + " ctx" + ctx + " f16 pool", bytes, 4L * b * ctx * s.heads * s.headDim,
                            () -> io.lightllm.kernels.Attention.launchDecodeAttention(device, out, q, kPool, vPool, null, null, table, rows, seqLen, null,
                                    scratch, b, s.heads, s.kvHeads, s.headDim, ctx, ctx, scale));
                    device.synchronize();
                    scratch.close();
                }
            }
        }
        if (prefillTokens > 0) {
            try (Scope sc = new Scope()) {
                int t = prefillTokens;
                DeviceBuffer kPool = sc.random(DType.F16, (long) t * kvDim);
                DeviceBuffer vPool = sc.random(DType.F16, (long) t * kvDim);
                DeviceBuffer table = sc.permutation(t, t);
                DeviceBuffer rows = sc.own(device.upload(IntArray.fromArray(0)));
                DeviceBuffer start = sc.own(device.upload(IntArray.fromArray(0)));
                DeviceBuffer len = sc.own(device.upload(IntArray.fromArray(t)));
                DeviceBuffer prefix = sc.own(device.upload(IntArray.fromArray(0)));
                DeviceBuffer q = sc.random(DType.F32, (long) t * s.heads * s.headDim);
                DeviceBuffer out = sc.buffer(DType.F32, (long) t * s.heads * s.headDim);
                long flops = 2L * t * (t + 1) * s.heads * s.headDim; // causal: half of 4 t^2 h d
                time("prefill attention", t + " tok causal, f16 pool", 0, flops,
                        () -> io.lightllm.kernels.Attention.launchPrefillAttention(device, out, q, kPool, vPool, null, null, table, rows, start, len,
                                prefix, null, 1, t, s.heads, s.kvHeads, s.headDim, t, t, scale));
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
        long start = System.nanoTime();
        for (int i = 0; i < reps; i++) {
            launch.run();
        }
        device.synchronize();
        double seconds = (System.nanoTime() - start) / 1e9 / reps;
        Result r = new Result(kernel, shape, seconds * 1e6, bytes / seconds / 1e9, flops / seconds / 1e9);
        results.add(r);
        System.out.println(r.row());
        return r;
    }

    /** Buffers of one group of cases, freed together. */
    public final class Scope implements AutoCloseable {
        private final List<DeviceBuffer> owned = new ArrayList<>();
        private final SplittableRandom random = new SplittableRandom(42);

        public DeviceBuffer own(DeviceBuffer b) {
            owned.add(b);
            return b;
        }

        public DeviceBuffer buffer(DType t, long n) {
            return own(device.allocate(t, n));
        }

        /** Uniform values in [-1, 1): never zeros, which can hide wrong indexing and run unrealistically fast. */
        public DeviceBuffer random(DType t, long n) {
            NativeArray host = NativeArray.allocate(t, n);
            for (int i = 0; i < n; i++) {
                host.setFloat(i, (float) (random.nextDouble() * 2 - 1));
            }
            DeviceBuffer b = buffer(t, n);
            device.copyIn(host, b);
            return b;
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

    /** The header row of the table that {@link Result} rows fill. */
    public static final String HEADER = "| kernel                     | shape                          |  us/launch |     GB/s |   GFLOP/s |\n|---|---|---|---|---|";
}
