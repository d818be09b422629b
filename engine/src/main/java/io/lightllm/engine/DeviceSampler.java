package io.lightllm.engine;

import io.lightllm.kernels.Sampling;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.ChangedWrites;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.List;
import java.util.Set;

/**
 * Picks every sequence's next token of a step on the device, in one batch: {@link LogitPenalties},
 * then {@link Sampling} (greedy rows are one-hot at their argmax, so they share the batch with
 * sampled ones; a step where every row is greedy only runs the argmax). Only the parameters
 * [rows] go up and the token ids [rows] come back. The uniform number of each row comes from
 * {@link CounterRandom}(the sequence's seed, its output length), so a seed gives the same
 * output in any batch. Sequences that ask for logprobs get them from {@link DeviceLogprobs}, from
 * their raw logits (before penalties and temperature).
 */
final class DeviceSampler implements AutoCloseable {
    private final Device device;
    private final int vocab;
    private final Set<Integer> eosTokenIds;
    private int rowsCapacity;
    private final DeviceLogprobs logprobs;
    private DeviceBuffer rowLogits, temperatures, topK, topP, uniforms, threshold, out;
    /** The sampling parameters go up only where they changed (the same requests' temperatures, top-k and top-p each step). */
    private ChangedWrites parameters;
    /** The penalties' and constraint masks' arrays, in buffers kept from step to step. */
    private final StepArrays penaltyArrays;

    /** The step's tokens, one per sequence, and their logprobs (null entries for sequences that did not ask). */
    record Sampled(int[] tokens, TokenLogprobs[] logprobs) { }

    DeviceSampler(Device device, int vocab, Set<Integer> eosTokenIds) {
        this.device = device;
        this.vocab = vocab;
        this.eosTokenIds = Set.copyOf(eosTokenIds);
        this.logprobs = new DeviceLogprobs(device, vocab);
        this.penaltyArrays = new StepArrays(device);
    }

    /** Rows of prompt tokens scored per kernel launch: bounds the copy of raw rows (rows x vocab floats). */
    private static final int SCORE_ROWS = 64;

    /** Each of the step's {@link Step#promptScores}: the next prompt token's log-probability at every scored row, added to its request. */
    void scorePrompts(Step step, DeviceBuffer logits) {
        for (Step.PromptScores p : step.promptScores()) {
            Request r = p.request();
            for (int from = 0; from < p.count(); from += SCORE_ROWS) {
                int n = Math.min(SCORE_ROWS, p.count() - from);
                int[] rows = new int[n], next = new int[n];
                for (int i = 0; i < n; i++) {
                    rows[i] = p.firstRow() + from + i;
                    next[i] = r.tokenAt(p.firstPosition() + from + i + 1);
                }
                r.addPromptLogprobs(java.util.Arrays.asList(logprobs.forRows(logits, rows, next, r.params().promptLogprobs())));
            }
        }
    }

    /** One token per sequence of the step, from the model's logits [batch requests, vocab] (overwritten). */
    Sampled sample(Step step, DeviceBuffer logits) {
        List<Request> sequences = step.sequences();
        int rows = sequences.size();
        ensureCapacity(rows);
        DeviceBuffer perSequence = logits;
        if (!identity(step.logitsRows())) {
            long rowBytes = (long) vocab * Float.BYTES;
            for (int s = 0; s < rows; s++) {
                device.copy(logits, step.logitsRows()[s] * rowBytes, rowLogits, s * rowBytes, rowBytes);
            }
            perSequence = rowLogits;
        }
        logprobs.capture(perSequence, sequences);
        LogitPenalties.apply(device, penaltyArrays, perSequence, sequences, vocab, eosTokenIds);
        if (sequences.stream().allMatch(r -> r.params().greedy())) {
            Sampling.launchArgmax(device, out, perSequence, rows, vocab);
        } else {
            FloatArray t = FloatArray.allocate(rows), p = FloatArray.allocate(rows), u = FloatArray.allocate(rows);
            IntArray k = IntArray.allocate(rows);
            for (int s = 0; s < rows; s++) {
                Request r = sequences.get(s);
                t.set(s, r.params().temperature());
                k.set(s, r.params().topK());
                p.set(s, r.params().topP());
                u.set(s, CounterRandom.uniform(r.seed(), r.generatedCount()));
            }
            parameters.write(t, temperatures);
            parameters.write(k, topK);
            parameters.write(p, topP);
            parameters.write(u, uniforms);
            Sampling.launchSample(device, out, perSequence, temperatures, topK, topP, uniforms, threshold, rows, vocab);
        }
        IntArray ids = IntArray.allocate(rows);
        device.read(out, 0, ids.segment());
        int[] tokens = ids.toArray();
        return new Sampled(tokens, logprobs.compute(sequences, tokens));
    }

    private static boolean identity(int[] rows) {
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] != i) {
                return false;
            }
        }
        return true;
    }

    private void ensureCapacity(int rows) {
        if (rows <= rowsCapacity) {
            return;
        }
        closeBuffers();
        rowsCapacity = Math.max(rows, 2 * rowsCapacity);
        rowLogits = device.allocate(DType.F32, (long) rowsCapacity * vocab);
        temperatures = device.allocate(DType.F32, rowsCapacity);
        topK = device.allocate(DType.I32, rowsCapacity);
        topP = device.allocate(DType.F32, rowsCapacity);
        uniforms = device.allocate(DType.F32, rowsCapacity);
        threshold = device.allocate(DType.F32, rowsCapacity);
        out = device.allocate(DType.I32, rowsCapacity);
        parameters = new ChangedWrites(device);
    }

    @Override
    public void close() {
        logprobs.close();
        penaltyArrays.close();
        closeBuffers();
    }

    private void closeBuffers() {
        for (DeviceBuffer b : new DeviceBuffer[] {rowLogits, temperatures, topK, topP, uniforms, threshold, out}) {
            if (b != null) {
                b.close();
            }
        }
    }
}
