package io.lightllm.engine;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
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

    /**
     * Entry e changes logits[index[e]]: masked, or biased, then penalised with its row's parameters and the token's
     * output count (vLLM's order: logit_bias is a logits processor that runs before the penalties).
     */
    public static void applyPenalties(FloatArray logits, IntArray index, IntArray outputCount, IntArray masked, FloatArray bias,
            FloatArray repetition, FloatArray presence, FloatArray frequency, int entries) {
        for (@Parallel int e = 0; e < entries; e++) {
            int i = index.get(e);
            if (masked.get(e) != 0) {
                logits.set(i, Float.NEGATIVE_INFINITY);
            } else {
                float x = logits.get(i) + bias.get(e);
                float r = repetition.get(e);
                x = x > 0f ? x / r : x * r;
                int count = outputCount.get(e);
                if (count > 0) {
                    x = x - (presence.get(e) + frequency.get(e) * count);
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

    /** Launches {@link #maskDisallowed} for the constrained rows (none: nothing). */
    static void maskToAllowed(Device device, DeviceBuffer logits, Map<Integer, BitSet> allowedByRow, int vocab) {
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
        try (DeviceBuffer dBits = device.upload(bits); DeviceBuffer dRows = device.upload(rows)) {
            device.launch(MASK, Grid.of(count, vocab), logits, dBits, dRows, count, vocab, words);
        }
    }

    /**
     * Applies what each sequence needs to its row of {@code logits} [sequences, vocab] (row s for
     * sequence s); launches nothing when no sequence needs anything.
     */
    static void apply(Device device, DeviceBuffer logits, List<Request> sequences, int vocab, Set<Integer> eosTokenIds) {
        List<int[]> entries = new ArrayList<>();   // row, token, count, masked, bias's bits, seen
        List<SamplingParams> params = new ArrayList<>();
        Map<Integer, BitSet> constrained = new LinkedHashMap<>(); // row -> the tokens its constraint allows
        for (int s = 0; s < sequences.size(); s++) {
            Request r = sequences.get(s);
            SamplingParams p = r.params();
            Map<Integer, int[]> byToken = new HashMap<>();
            // per token: output count, masked, seen (in the prompt or the output: what the repetition penalty touches)
            if (p.penalized()) {
                for (int i = 0; i < r.generatedCount(); i++) {
                    int[] e = byToken.computeIfAbsent(r.generatedAt(i), t -> new int[3]);
                    e[0]++;
                    e[2] = 1;
                }
                if (p.repetitionPenalty() != 1) {
                    for (int i = 0; i < r.promptLength(); i++) {
                        if (r.tokenAt(i) < vocab) { // an image's placeholder ids are no token to penalise
                            byToken.computeIfAbsent(r.tokenAt(i), t -> new int[3])[2] = 1;
                        }
                    }
                }
            }
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
            if (r.generatedCount() < p.minNewTokens()) {
                Set<Integer> masked = new LinkedHashSet<>(eosTokenIds);
                masked.addAll(p.stopTokenIds());
                for (int id : masked) {
                    byToken.computeIfAbsent(id, t -> new int[3])[1] = 1;
                }
            }
            for (int id : p.logitBias().keySet()) {
                byToken.computeIfAbsent(id, t -> new int[3]);
            }
            for (Map.Entry<Integer, int[]> e : byToken.entrySet()) {
                if (e.getKey() < vocab) {
                    float bias = p.logitBias().getOrDefault(e.getKey(), 0f);
                    entries.add(new int[] {s, e.getKey(), e.getValue()[0], e.getValue()[1], Float.floatToRawIntBits(bias), e.getValue()[2]});
                    params.add(p);
                }
            }
        }
        maskToAllowed(device, logits, constrained, vocab);
        int n = entries.size();
        if (n == 0) {
            return;
        }
        IntArray index = IntArray.allocate(n), count = IntArray.allocate(n), masked = IntArray.allocate(n);
        FloatArray bias = FloatArray.allocate(n), repetition = FloatArray.allocate(n), presence = FloatArray.allocate(n),
                frequency = FloatArray.allocate(n);
        for (int e = 0; e < n; e++) {
            int[] entry = entries.get(e);
            SamplingParams p = params.get(e);
            index.set(e, entry[0] * vocab + entry[1]);
            count.set(e, entry[2]);
            masked.set(e, entry[3]);
            bias.set(e, Float.intBitsToFloat(entry[4]));
            repetition.set(e, entry[5] == 1 ? p.repetitionPenalty() : 1f); // a token only biased or masked is not repeated
            presence.set(e, p.presencePenalty());
            frequency.set(e, p.frequencyPenalty());
        }
        try (DeviceBuffer dIndex = device.upload(index); DeviceBuffer dCount = device.upload(count); DeviceBuffer dMasked = device.upload(masked);
             DeviceBuffer dBias = device.upload(bias); DeviceBuffer dRep = device.upload(repetition); DeviceBuffer dPres = device.upload(presence);
             DeviceBuffer dFreq = device.upload(frequency)) {
            device.launch(APPLY, Grid.of(n), logits, dIndex, dCount, dMasked, dBias, dRep, dPres, dFreq, n);
        }
    }
}
