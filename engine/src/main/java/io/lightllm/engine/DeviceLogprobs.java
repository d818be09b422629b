package io.lightllm.engine;

import io.lightllm.kernels.GroupReduce;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.List;

/**
 * {@link TokenLogprobs} for the sequences of a step that ask for them, on the device. Before the
 * sampler changes the logits (penalties, temperature, softmax in place), {@link #capture} copies
 * the raw rows of those sequences only; after sampling, {@link #compute} runs one kernel over
 * them (one work-group per row: log-sum-exp, the chosen token's logprob, and the top-N by N
 * arg-max passes, N <= 20) and reads back 1 + 2 x 20 numbers per row, never a vocabulary row. A
 * step where nobody asks copies and launches nothing.
 *
 * <p>The top-N is found on the device rather than on the host from a copied row because a row is
 * the whole vocabulary (128k floats for Llama 3), which would cost a device-to-host copy per
 * token of every such request; N passes over a row that is already on the device are cheap
 * next to the sampler's ~65.
 */
final class DeviceLogprobs implements AutoCloseable {
    static final KernelRef CHOSEN_AND_TOP = KernelRef.of(DeviceLogprobs.class, "chosenAndTopLogprobs");

    private final Device device;
    private final int vocab;
    private int rowsCapacity;
    private DeviceBuffer raw, chosen, topCounts, chosenLogprobs, chosenRanks, topIds, topLogprobs;
    /** The step's sequence index of each captured row. */
    private int[] captured = new int[0];

    DeviceLogprobs(Device device, int vocab) {
        this.device = device;
        this.vocab = vocab;
    }

    /**
     * Row r (of rows.length): logprob of logits[r, chosen[r]], its rank (1 + the values above it, vLLM's), and the topCounts[r] (<= {@link SamplingParams#MAX_LOGPROBS})
     * largest logits of the row as (id, logprob), largest first, lower id first on ties, NaN logits ignored; ids -1 past
     * the row's non-NaN values. The log-sum-exp is taken after subtracting the row maximum, with a compensated sum as in
     * io.lightllm.kernels.Softmax. Correct for any power-of-two local size up to GroupReduce.MAX_LOCAL.
     */
    public static void chosenAndTopLogprobs(KernelContext ctx, FloatArray logits, IntArray chosen, IntArray topCounts,
            FloatArray chosenLogprobs, IntArray chosenRanks, IntArray topIds, FloatArray topLogprobs, int vocab) {
        float[] values = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        int[] indices = ctx.allocateIntLocalArray(GroupReduce.MAX_LOCAL);
        int row = ctx.groupIdx;
        int lid = ctx.localIdx;
        int base = row * vocab;
        float localMax = Float.NEGATIVE_INFINITY;
        for (int i = lid; i < vocab; i += ctx.localGroupSizeX) {
            float v = logits.get(base + i);
            if (v == v) {
                localMax = KMath.max(localMax, v);
            }
        }
        float rowMax = GroupReduce.max(ctx, values, localMax);
        float localSum = 0f;
        float compensation = 0f;
        for (int i = lid; i < vocab; i += ctx.localGroupSizeX) {
            float v = logits.get(base + i);
            if (v == v) {
                float y = KMath.exp(v - rowMax) - compensation;
                float t = localSum + y;
                compensation = (t - localSum) - y;
                localSum = t;
            }
        }
        float logSumExp = rowMax + KMath.log(GroupReduce.sum(ctx, values, localSum));
        float chosenValue = logits.get(base + chosen.get(row));
        float above = 0f; // a count, summed as floats: exact below 2^24 (any vocabulary)
        for (int i = lid; i < vocab; i += ctx.localGroupSizeX) {
            if (logits.get(base + i) > chosenValue) {
                above += 1f;
            }
        }
        float rank = 1f + GroupReduce.sum(ctx, values, above);
        if (lid == 0) {
            chosenLogprobs.set(row, chosenValue - logSumExp);
            chosenRanks.set(row, (int) rank);
        }
        int n = topCounts.get(row); // one value per row: every item of the group runs the same passes and barriers
        float previousValue = Float.POSITIVE_INFINITY;
        int previousIndex = -1;
        for (int k = 0; k < n; k++) {
            // the largest (value, then lowest index) strictly after the previous pick in that order
            float best = Float.NEGATIVE_INFINITY;
            int bestIndex = -1;
            for (int i = lid; i < vocab; i += ctx.localGroupSizeX) {
                float v = logits.get(base + i);
                boolean after = v < previousValue || (v == previousValue && i > previousIndex);
                if (v == v && after && (bestIndex < 0 || v > best)) {
                    best = v;
                    bestIndex = i;
                }
            }
            previousIndex = GroupReduce.argmax(ctx, values, indices, best, bestIndex);
            previousValue = previousIndex >= 0 ? logits.get(base + previousIndex) : Float.NEGATIVE_INFINITY;
            if (lid == 0) {
                topIds.set(row * SamplingParams.MAX_LOGPROBS + k, previousIndex);
                topLogprobs.set(row * SamplingParams.MAX_LOGPROBS + k, previousValue - logSumExp);
            }
        }
    }

    /** Copies the raw logits row of every sequence that asks for logprobs (row s of {@code perSequence} is sequence s). */
    void capture(DeviceBuffer perSequence, List<Request> sequences) {
        int asking = 0;
        int[] rows = new int[sequences.size()];
        for (int s = 0; s < sequences.size(); s++) {
            if (sequences.get(s).params().logprobs() >= 0) {
                rows[asking++] = s;
            }
        }
        captured = java.util.Arrays.copyOf(rows, asking);
        if (asking == 0) {
            return;
        }
        ensureCapacity(asking);
        long rowBytes = (long) vocab * Float.BYTES;
        for (int r = 0; r < asking; r++) {
            device.copy(perSequence, captured[r] * rowBytes, raw, r * rowBytes, rowBytes);
        }
    }

    /** The captured sequences' logprobs given the tokens sampled for every sequence of the step; null for the others. */
    TokenLogprobs[] compute(List<Request> sequences, int[] tokens) {
        TokenLogprobs[] out = new TokenLogprobs[tokens.length];
        int rows = captured.length;
        if (rows == 0) {
            return out;
        }
        int[] chosenIds = new int[rows], counts = new int[rows];
        for (int r = 0; r < rows; r++) {
            chosenIds[r] = tokens[captured[r]];
            counts[r] = sequences.get(captured[r]).params().logprobs();
        }
        TokenLogprobs[] computed = ofRaw(chosenIds, counts);
        for (int r = 0; r < rows; r++) {
            out[captured[r]] = computed[r];
        }
        return out;
    }

    /** Logprobs of {@code chosen[i]} in row {@code rows[i]} of {@code logits}, with {@code top} alternatives each (prompt tokens). */
    TokenLogprobs[] forRows(DeviceBuffer logits, int[] rows, int[] chosenIds, int top) {
        ensureCapacity(rows.length);
        long rowBytes = (long) vocab * Float.BYTES;
        for (int r = 0; r < rows.length; r++) {
            device.copy(logits, rows[r] * rowBytes, raw, r * rowBytes, rowBytes);
        }
        int[] counts = new int[rows.length];
        java.util.Arrays.fill(counts, top);
        return ofRaw(chosenIds, counts);
    }

    /** The kernel over the first chosen.length rows of {@link #raw}: row r's chosen token and its counts[r] alternatives. */
    private TokenLogprobs[] ofRaw(int[] chosenTokens, int[] topPerRow) {
        int rows = chosenTokens.length;
        TokenLogprobs[] out = new TokenLogprobs[rows];
        IntArray chosenIds = IntArray.allocate(rows), counts = IntArray.allocate(rows);
        for (int r = 0; r < rows; r++) {
            chosenIds.set(r, chosenTokens[r]);
            counts.set(r, Math.min(topPerRow[r], vocab));
        }
        device.write(chosenIds.segment(), chosen, 0);
        device.write(counts.segment(), topCounts, 0);
        device.launch(CHOSEN_AND_TOP, Grid.groups(rows, GroupReduce.rowLocalSize(device)), raw, chosen, topCounts, chosenLogprobs, chosenRanks,
                topIds, topLogprobs, vocab);
        FloatArray chosenHost = FloatArray.allocate(rows), topHost = FloatArray.allocate(rows * SamplingParams.MAX_LOGPROBS);
        IntArray idsHost = IntArray.allocate(rows * SamplingParams.MAX_LOGPROBS);
        device.read(chosenLogprobs, 0, chosenHost.segment());
        IntArray ranksHost = IntArray.allocate(rows);
        device.read(chosenRanks, 0, ranksHost.segment());
        device.read(topIds, 0, idsHost.segment());
        device.read(topLogprobs, 0, topHost.segment());
        for (int r = 0; r < rows; r++) {
            int n = 0;
            int asked = counts.get(r);
            while (n < asked && idsHost.get(r * SamplingParams.MAX_LOGPROBS + n) >= 0) {
                n++;
            }
            int[] ids = new int[n];
            float[] lps = new float[n];
            for (int k = 0; k < n; k++) {
                ids[k] = idsHost.get(r * SamplingParams.MAX_LOGPROBS + k);
                lps[k] = topHost.get(r * SamplingParams.MAX_LOGPROBS + k);
            }
            out[r] = new TokenLogprobs(chosenHost.get(r), ids, lps, ranksHost.get(r));
        }
        return out;
    }

    private void ensureCapacity(int rows) {
        if (rows <= rowsCapacity) {
            return;
        }
        close();
        rowsCapacity = Math.max(rows, 2 * rowsCapacity);
        raw = device.allocate(DType.F32, (long) rowsCapacity * vocab);
        chosen = device.allocate(DType.I32, rowsCapacity);
        topCounts = device.allocate(DType.I32, rowsCapacity);
        chosenLogprobs = device.allocate(DType.F32, rowsCapacity);
        chosenRanks = device.allocate(DType.I32, rowsCapacity);
        topIds = device.allocate(DType.I32, (long) rowsCapacity * SamplingParams.MAX_LOGPROBS);
        topLogprobs = device.allocate(DType.F32, (long) rowsCapacity * SamplingParams.MAX_LOGPROBS);
    }

    @Override
    public void close() {
        for (DeviceBuffer b : new DeviceBuffer[] {raw, chosen, topCounts, chosenLogprobs, chosenRanks, topIds, topLogprobs}) {
            if (b != null) {
                b.close();
            }
        }
    }
}
