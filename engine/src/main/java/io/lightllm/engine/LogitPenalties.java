package io.lightllm.engine;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Penalties and masks applied to rows of logits on the device, before sampling. The host lists
 * one entry per (row, token) that needs a change: only tokens that occur in a sequence (or are
 * masked) are touched, so the kernel's work is small and entries never collide.
 * <ul>
 * <li>repetition (Hugging Face/vLLM: tokens of the prompt and the output; a positive logit is
 * divided by it, a negative one multiplied);</li>
 * <li>presence and frequency (OpenAI/vLLM: tokens of the output; subtracted once, and once per
 * occurrence);</li>
 * <li>logit bias (OpenAI/vLLM logit_bias): added to the raw logit, before the penalties;</li>
 * <li>eos and stop ids before min_new_tokens: -infinity;</li>
 * <li>structured output: every token its constraint does not allow, -infinity ({@link #maskDisallowed}).</li>
 * </ul>
 */
final class LogitPenalties {
    static final KernelRef APPLY = KernelRef.of(LogitPenalties.class, "applyPenalties");

    private LogitPenalties() { }

    /** An entry's state bits: its token is masked (-infinity). */
    static final int MASKED = 1;
    /** An entry's state bits: its token is in the prompt or the output, so the repetition penalty applies. */
    static final int SEEN = 2;
    /** An entry's state holds the token's output count above its two flag bits. */
    static final int COUNT_SHIFT = 2;

    /**
     * Entry e changes logits[index[e]] (row index[e] / vocab): masked, or biased, then penalised with its row's
     * parameters and the token's output count (state[e] >> {@link #COUNT_SHIFT}) (vLLM's order: logit_bias is a
     * logits processor that runs before the penalties).
     */
    public static void applyPenalties(FloatArray logits, IntArray index, IntArray state, FloatArray bias, FloatArray repetition,
            FloatArray presence, FloatArray frequency, int vocab, int entries) {
        for (@Parallel int e = 0; e < entries; e++) {
            int i = index.get(e);
            int st = state.get(e);
            if ((st & MASKED) != 0) {
                logits.set(i, Float.NEGATIVE_INFINITY);
            } else {
                int row = i / vocab;
                float x = logits.get(i) + bias.get(e);
                if ((st & SEEN) != 0) {
                    float r = repetition.get(row);
                    x = x > 0f ? x / r : x * r;
                }
                int count = st >>> COUNT_SHIFT;
                if (count > 0) {
                    x = x - (presence.get(row) + frequency.get(row) * count);
                }
                logits.set(i, x);
            }
        }
    }

    /**
     * Structured output's masks: every token of the row that its constraint does not allow gets -infinity.
     * The allowed tokens go up as one bit each (4 KB a row of a 32k vocabulary), not as a list of the masked
     * ones, which early in a JSON answer is most of the vocabulary.
     */
    public static void maskDisallowed(FloatArray logits, IntArray allowedBits, IntArray rows, int count, int vocab, int words) {
        for (@Parallel int c = 0; c < count; c++) {
            for (@Parallel int t = 0; t < vocab; t++) {
                int word = allowedBits.get(c * words + t / 32);
                if (((word >> (t % 32)) & 1) == 0) {
                    logits.set(rows.get(c) * vocab + t, Float.NEGATIVE_INFINITY);
                }
            }
        }
    }

    static final KernelRef MASK = KernelRef.of(LogitPenalties.class, "maskDisallowed");

    /** Launches {@link #maskDisallowed} for the constrained rows (none: nothing), its arrays in {@code arrays}' buffers. */
    static void maskToAllowed(Device device, StepArrays arrays, DeviceBuffer logits, Map<Integer, BitSet> allowedByRow, int vocab) {
        int count = allowedByRow.size();
        if (count == 0) {
            return;
        }
        int words = (vocab + 31) / 32;
        IntArray bits = IntArray.allocate(count * words), rows = IntArray.allocate(count);
        int c = 0;
        for (Map.Entry<Integer, BitSet> e : allowedByRow.entrySet()) {
            rows.set(c, e.getKey());
            // the set's own words, split in halves: bit t of the set is bit t % 32 of int t / 32 (bits past vocab go unread)
            long[] longs = e.getValue().toLongArray();
            for (int w = 0; w < words && w / 2 < longs.length; w++) {
                bits.set(c * words + w, (int) (longs[w / 2] >>> (32 * (w % 2))));
            }
            c++;
        }
        device.launch(MASK, Grid.of(count, vocab), logits, arrays.put("allowed bits", bits), arrays.put("constrained rows", rows), count, vocab,
                words);
    }

    /**
     * Applies what each sequence needs to its row of {@code logits} [sequences, vocab] (row s for
     * sequence s); launches nothing when no sequence needs anything. A sequence's entries come from
     * sorted runs merged by token: the prompt's distinct tokens (made once per request), the output's
     * tokens with their counts (sorted each step: O(output log output)), and the few masked or biased ids,
     * so a step costs a pass over each penalised sequence's distinct tokens and no boxing; the
     * sequences' penalty parameters go up once per row, not once per entry.
     */
    static void apply(Device device, StepArrays arrays, DeviceBuffer logits, List<Request> sequences, int vocab, Set<Integer> eosTokenIds) {
        Entries entries = new Entries();
        int rows = sequences.size();
        FloatArray repetition = FloatArray.allocate(rows), presence = FloatArray.allocate(rows), frequency = FloatArray.allocate(rows);
        Map<Integer, BitSet> constrained = new LinkedHashMap<>(); // row -> the tokens its constraint allows
        for (int s = 0; s < rows; s++) {
            Request r = sequences.get(s);
            SamplingParams p = r.params();
            repetition.set(s, p.repetitionPenalty());
            presence.set(s, p.presencePenalty());
            frequency.set(s, p.frequencyPenalty());
            RegexConstraint c = r.constraint();
            if (c != null) {
                // structured output: only tokens that keep the text a prefix of a match; the end only after a whole match
                BitSet allowed = (BitSet) c.allowedTokens().clone();
                for (int id : eosTokenIds) {
                    if (id < vocab) {
                        allowed.set(id, c.complete());
                    }
                }
                constrained.put(s, allowed);
            }
            int[] prompt = p.repetitionPenalty() != 1 ? r.promptDistinct(vocab) : NONE;
            int[] output = p.penalized() ? r.generated() : NONE;
            java.util.Arrays.sort(output);
            // the few ids masked before min_new_tokens or biased: token -> {state, bias's bits}
            java.util.TreeMap<Integer, int[]> extras = new java.util.TreeMap<>();
            if (r.generatedCount() < p.minNewTokens()) {
                Set<Integer> masked = new LinkedHashSet<>(eosTokenIds);
                masked.addAll(p.stopTokenIds());
                for (int id : masked) {
                    extras.computeIfAbsent(id, t -> new int[2])[0] = MASKED;
                }
            }
            p.logitBias().forEach((id, b) -> extras.computeIfAbsent(id, t -> new int[2])[1] = Float.floatToRawIntBits(b));
            mergeRow(entries, s * vocab, vocab, prompt, output, extras);
        }
        maskToAllowed(device, arrays, logits, constrained, vocab);
        int n = entries.size;
        if (n == 0) {
            return;
        }
        IntArray index = IntArray.fromArray(java.util.Arrays.copyOf(entries.index, n));
        IntArray state = IntArray.fromArray(java.util.Arrays.copyOf(entries.state, n));
        FloatArray bias = FloatArray.fromArray(java.util.Arrays.copyOf(entries.bias, n));
        device.launch(APPLY, Grid.of(n), logits, arrays.put("entry index", index), arrays.put("entry state", state), arrays.put("entry bias", bias),
                arrays.put("repetition", repetition), arrays.put("presence", presence), arrays.put("frequency", frequency), vocab, n);
    }

    private static final int[] NONE = new int[0];

    /**
     * One row's entries, one per distinct token below the vocabulary, in token order: the merge of the prompt's
     * distinct tokens (seen), the sorted output (seen, counted) and the extras (masked, biased).
     */
    private static void mergeRow(Entries entries, int rowStart, int vocab, int[] prompt, int[] output, java.util.TreeMap<Integer, int[]> extras) {
        int i = 0, o = 0;
        java.util.Iterator<Map.Entry<Integer, int[]>> x = extras.entrySet().iterator();
        Map.Entry<Integer, int[]> extra = x.hasNext() ? x.next() : null;
        while (true) {
            int token = Integer.MAX_VALUE;
            if (i < prompt.length) {
                token = prompt[i];
            }
            if (o < output.length) {
                token = Math.min(token, output[o]);
            }
            if (extra != null) {
                token = Math.min(token, extra.getKey());
            }
            if (token == Integer.MAX_VALUE || token >= vocab) {
                return; // every source is ascending: nothing below the vocabulary is left
            }
            int state = 0;
            int biasBits = 0;
            if (i < prompt.length && prompt[i] == token) {
                state |= SEEN;
                i++;
            }
            int count = 0;
            while (o < output.length && output[o] == token) {
                count++;
                o++;
            }
            if (count > 0) {
                state |= SEEN | count << COUNT_SHIFT;
            }
            if (extra != null && extra.getKey() == token) {
                state |= extra.getValue()[0];
                biasBits = extra.getValue()[1];
                extra = x.hasNext() ? x.next() : null;
            }
            entries.add(rowStart + token, state, Float.intBitsToFloat(biasBits));
        }
    }

    /** Growable entry arrays: logits index, state (flags and output count), bias. */
    private static final class Entries {
        int[] index = new int[256];
        int[] state = new int[256];
        float[] bias = new float[256];
        int size;

        void add(int i, int st, float b) {
            if (size == index.length) {
                index = java.util.Arrays.copyOf(index, 2 * size);
                state = java.util.Arrays.copyOf(state, 2 * size);
                bias = java.util.Arrays.copyOf(bias, 2 * size);
            }
            index[size] = i;
            state[size] = st;
            bias[size++] = b;
        }
    }
}
