package io.lightllm.engine.bench;

import io.lightllm.kernels.Sampling;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelTiming;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The static benchmark (LightLLM's test_model_infer): a batch of {@code batch} requests of
 * {@code inputLen} random tokens is prefilled in nopad steps of at most {@link #PREFILL_STEP_TOKENS}
 * tokens (whole requests; one step where they fit), then decoded for
 * {@code outputLen - 1} steps with greedy sampling on the device (or sampled: {@link Decoding}). Reports prefill and decode
 * throughput, the decode step latency and the KV slots used; optionally the device time of
 * each kernel over the decode steps (profiling: on CUDA it turns off graph replay, so the step
 * time it reports is not the recorded step's).
 */
public final class StaticBenchmark {
    /**
     * The most tokens one prefill step takes (a request longer than this still goes in one): 256 x 512 in one step would
     * make an 8B model's gate/up output 3.8e9 elements, past what kernels index with int, where the server splits at its
     * --batch-max-tokens (8,192). 32,768 keeps every shape measured so far in one step (256 x 128).
     */
    static final int PREFILL_STEP_TOKENS = 32_768;

    /**
     * How each step picks its tokens: greedy (temperature 0: the argmax), or sampled on the device at {@code temperature}
     * under top-k ({@code topK} <= 0: none) and top-p ({@code topP} >= 1: none), as a request's sampling parameters do
     * ({@link Sampling#launchSample}: softmax, threshold, draw).
     */
    public record Decoding(float temperature, int topK, float topP) {
        public static final Decoding GREEDY = new Decoding(0f, 0, 1f);

        public Decoding {
            if (!(temperature >= 0f) || !(topP > 0f && topP <= 1f)) {
                throw new IllegalArgumentException("temperature must be >= 0 and top-p in (0, 1], got " + temperature + " and " + topP);
            }
        }

        boolean greedy() {
            return temperature == 0f;
        }

        /** As the JSON line and the text report name it. */
        public String label() {
            return greedy() ? "greedy" : String.format(Locale.ROOT, "temperature %s, top-k %d, top-p %s", temperature, topK, topP);
        }
    }

    /** Results; tokens/s count every request's tokens; firstTokens: what the prefill sampled for each request. */
    public record Result(int batch, int inputLen, int outputLen, double prefillSeconds, double prefillTokensPerS,
                         double decodeTokensPerS, double decodeStepMs, int peakKvTokens, List<KernelTiming> prefillProfile,
                         List<KernelTiming> decodeProfile, int[] firstTokens) {
        public String json() {
            return String.format(Locale.ROOT, "{\"batch_size\":%d,\"input_len\":%d,\"output_len\":%d,\"prefill_seconds\":%.4f,"
                    + "\"prefill_tokens_per_s\":%.1f,\"decode_tokens_per_s\":%.1f,\"decode_step_ms\":%.3f,\"peak_kv_tokens\":%d}",
                    batch, inputLen, outputLen, prefillSeconds, prefillTokensPerS, decodeTokensPerS, decodeStepMs, peakKvTokens);
        }
    }

    private StaticBenchmark() {
    }

    /** Greedy, without a profile. */
    public static Result run(CausalLM model, int batch, int inputLen, int outputLen, DType kvDtype, long seed) {
        return run(model, batch, inputLen, outputLen, kvDtype, seed, false, Decoding.GREEDY);
    }

    /**
     * With {@code profileDecode}, the result lists every kernel launch of the measured decode steps; the tokens are picked
     * as {@code decoding} says.
     */
    public static Result run(CausalLM model, int batch, int inputLen, int outputLen, DType kvDtype, long seed, boolean profileDecode,
            Decoding decoding) {
        return run(model, batch, inputLen, outputLen, kvDtype, seed, profileDecode, decoding, Setup.DEFAULT);
    }

    /**
     * How a run is set up beyond its shape. {@code tableLen}: the token table's row length (at least input + output; 0: that
     * length): a server's table is as long as its context (the model's, by default), and decode steps recorded in it were
     * sized by that length until 2026-12-08. {@code warmupSteps}: decode steps the warm-up runs at least, repeating the run
     * (freeing its slots) until it has (0: the run once). One run's 31 decode steps leave the host's side of a step (the
     * uploads, the launches' argument checks, the driver calls) interpreted or in C1's first tier: a server runs millions.
     */
    public record Setup(int tableLen, int warmupSteps) {
        public static final Setup DEFAULT = new Setup(0, 0);

        public Setup {
            if (tableLen < 0 || warmupSteps < 0) {
                throw new IllegalArgumentException("table length and warm-up steps must be >= 0, got " + tableLen + " and " + warmupSteps);
            }
        }
    }

    /** The same, set up as {@code setup} says. */
    public static Result run(CausalLM model, int batch, int inputLen, int outputLen, DType kvDtype, long seed, boolean profileDecode,
            Decoding decoding, Setup setup) {
        return run(model, batch, inputLen, outputLen, kvDtype, seed, profileDecode, PREFILL_STEP_TOKENS, decoding, setup);
    }

    static Result run(CausalLM model, int batch, int inputLen, int outputLen, DType kvDtype, long seed, boolean profileDecode,
            int prefillStepTokens, Decoding decoding) {
        return run(model, batch, inputLen, outputLen, kvDtype, seed, profileDecode, prefillStepTokens, decoding, Setup.DEFAULT);
    }

    private static Result run(CausalLM model, int batch, int inputLen, int outputLen, DType kvDtype, long seed, boolean profileDecode,
            int prefillStepTokens, Decoding decoding, Setup setup) {
        if (batch < 1 || inputLen < 1 || outputLen < 1) {
            throw new IllegalArgumentException("batch, input and output lengths must be positive");
        }
        int seqLen = inputLen + outputLen;
        if (seqLen > model.maxSequenceLength()) {
            throw new IllegalArgumentException("input + output = " + seqLen + " exceeds the model's " + model.maxSequenceLength() + " positions");
        }
        int tableLen = setup.tableLen() == 0 ? seqLen : setup.tableLen();
        if (tableLen < seqLen) {
            throw new IllegalArgumentException("a table of " + tableLen + "-token rows cannot hold input + output = " + seqLen);
        }
        if (tableLen > model.maxSequenceLength()) {
            throw new IllegalArgumentException("a table of " + tableLen + "-token rows exceeds the model's " + model.maxSequenceLength() + " positions");
        }
        Device device = model.device();
        SplittableRandom random = new SplittableRandom(seed);
        try (TokenKvPool pool = model.newKvPool(batch * seqLen, kvDtype);
             RequestTokenTable table = new RequestTokenTable(device, batch, tableLen);
             Picker picker = new Picker(model, batch, decoding, seed)) {
            int[] rows = new int[batch], counts = new int[batch], lens = new int[batch];
            int tokens = batch * inputLen;
            int[] ids = new int[tokens], positions = new int[tokens];
            for (int b = 0; b < batch; b++) {
                rows[b] = table.acquire();
                counts[b] = inputLen;
                lens[b] = inputLen;
                for (int i = 0; i < inputLen; i++) {
                    ids[b * inputLen + i] = random.nextInt(model.vocabSize());
                    positions[b * inputLen + i] = i;
                }
            }
            // warm-up with the same pool and table, the whole run: compiles every kernel, sizes the scratch, records
            // the decode steps (CUDA graphs) at every context length the run reaches and lets the JIT compile the host
            // side, all outside the timing. A warm-up of two decode steps left the first measured run of a process up
            // to 30 % slower than a second one (8B int8 batch 1 on an H100: 177.6, then 255.7 tok/s; session 18)
            int warmed = 0;
            do {
                measure(model, pool, table, picker, ids, positions, rows, counts, lens, batch, inputLen, outputLen, false, prefillStepTokens);
                int[] used = java.util.stream.IntStream.range(0, pool.capacity()).filter(s -> pool.isAllocated(s)).toArray();
                pool.free(used);
                warmed += outputLen - 1;
            } while (warmed < setup.warmupSteps());
            return measure(model, pool, table, picker, ids, positions, rows, counts, lens, batch, inputLen, outputLen, profileDecode,
                    prefillStepTokens);
        }
    }

    private static Result measure(CausalLM model, TokenKvPool pool, RequestTokenTable table, Picker picker, int[] ids,
            int[] positions, int[] rows, int[] counts, int[] lens, int batch, int inputLen, int outputLen, boolean profile,
            int prefillStepTokens) {
        Device device = model.device();
        device.setProfiling(profile);
        long t0 = System.nanoTime();
        int[] next = new int[batch];
        int perStep = Math.max(1, prefillStepTokens / inputLen);
        for (int first = 0; first < batch; first += perStep) {
            int n = Math.min(perStep, batch - first);
            int from = first * inputLen, to = (first + n) * inputLen;
            int[] groupStarts = new int[n];
            Arrays.setAll(groupStarts, b -> b * inputLen);
            int[] sampled = step(model, pool, table, picker, new NopadBatch(true, Arrays.copyOfRange(ids, from, to),
                    Arrays.copyOfRange(positions, from, to), pool.alloc(to - from), Arrays.copyOfRange(rows, first, first + n),
                    groupStarts, Arrays.copyOfRange(counts, first, first + n), Arrays.copyOfRange(lens, first, first + n)));
            System.arraycopy(sampled, 0, next, first, n);
        }
        long t1 = System.nanoTime();
        List<KernelTiming> prefillTimings = profile ? device.drainProfile() : List.of();
        int[] firstTokens = next.clone();
        int[] decodeStarts = new int[batch], ones = new int[batch], pos = new int[batch], seq = lens.clone();
        for (int b = 0; b < batch; b++) {
            decodeStarts[b] = b;
            ones[b] = 1;
        }
        for (int s = 1; s < outputLen; s++) {
            for (int b = 0; b < batch; b++) {
                pos[b] = seq[b];
                seq[b]++;
            }
            next = step(model, pool, table, picker, new NopadBatch(false, next, pos.clone(), pool.alloc(batch), rows, decodeStarts,
                    ones, seq.clone()));
        }
        device.synchronize();
        long t2 = System.nanoTime();
        List<KernelTiming> timings = profile ? device.drainProfile() : List.of();
        device.setProfiling(false);
        double prefill = (t1 - t0) / 1e9;
        double decode = (t2 - t1) / 1e9;
        int steps = outputLen - 1;
        return new Result(batch, inputLen, outputLen, prefill, batch * (double) inputLen / prefill,
                steps == 0 ? 0 : batch * (double) steps / decode, steps == 0 ? 0 : decode * 1e3 / steps, pool.highWater(), prefillTimings, timings,
                firstTokens);
    }

    /** One forward step and its tokens picked on the device; returns them. */
    private static int[] step(CausalLM model, TokenKvPool pool, RequestTokenTable table, Picker picker, NopadBatch batch) {
        return picker.pick(model.forward(batch, pool, table), batch.requests());
    }

    /** The device buffers a run's steps pick their tokens with: the ids, and for sampling each row's parameters. */
    private static final class Picker implements AutoCloseable {
        private final CausalLM model;
        private final Decoding decoding;
        private final SplittableRandom random;
        private final DeviceBuffer ids, temperatures, topK, topP, uniforms, threshold;

        Picker(CausalLM model, int batch, Decoding decoding, long seed) {
            Device device = model.device();
            this.model = model;
            this.decoding = decoding;
            this.random = new SplittableRandom(seed + 1);
            this.ids = device.allocate(DType.I32, batch);
            boolean sampled = !decoding.greedy();
            float[] t = new float[batch], p = new float[batch];
            int[] k = new int[batch];
            Arrays.fill(t, decoding.temperature());
            Arrays.fill(k, decoding.topK());
            Arrays.fill(p, decoding.topP());
            this.temperatures = sampled ? device.upload(FloatArray.fromArray(t)) : null;
            this.topK = sampled ? device.upload(IntArray.fromArray(k)) : null;
            this.topP = sampled ? device.upload(FloatArray.fromArray(p)) : null;
            this.uniforms = sampled ? device.allocate(DType.F32, batch) : null;
            this.threshold = sampled ? device.allocate(DType.F32, batch) : null;
        }

        int[] pick(DeviceBuffer logits, int rows) {
            Device device = model.device();
            if (decoding.greedy()) {
                Sampling.launchArgmax(device, ids, logits, rows, model.vocabSize());
            } else {
                float[] u = new float[rows];
                for (int r = 0; r < rows; r++) {
                    u[r] = (float) random.nextDouble();
                }
                device.write(FloatArray.fromArray(u).segment(), uniforms, 0);
                Sampling.launchSample(device, ids, logits, temperatures, topK, topP, uniforms, threshold, rows, model.vocabSize());
            }
            IntArray host = IntArray.allocate(rows);
            device.read(ids, 0, host.segment());
            return host.toArray();
        }

        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {ids, temperatures, topK, topP, uniforms, threshold}) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }
}
