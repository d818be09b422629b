package io.lightllm.engine;

import io.lightllm.tornado.api.FloatArray;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The reference for {@link DeviceSampler}: each sequence's next token from its row of logits,
 * on the host, written from the definitions (sorting, double sums) rather than from the kernels.
 * Per sequence:
 * <ol>
 * <li>logit bias (OpenAI's logit_bias): added to the raw logits;</li>
 * <li>penalties: repetition (Hugging Face/vLLM: over prompt and output, a positive logit is
 * divided by it, a negative one multiplied), presence and frequency (OpenAI/vLLM: over the
 * output, subtracted once / once per occurrence);</li>
 * <li>before min_new_tokens, eos and the stop ids are masked out;</li>
 * <li>temperature 0: the largest logit (the first on ties); else softmax(logits / T), top-k then
 * top-p over the renormalised top-k mass (ties at a threshold are kept), and the token where
 * an inclusive scan of the kept mass in id order passes u * kept mass, u drawn from
 * {@link CounterRandom} with (the sequence's seed, its output length).</li>
 * </ol>
 */
final class HostSampler {
    private final int vocab;
    private final Set<Integer> eosTokenIds;

    HostSampler(int vocab, Set<Integer> eosTokenIds) {
        this.vocab = vocab;
        this.eosTokenIds = Set.copyOf(eosTokenIds);
    }

    /** One token per sequence of the step, from logits [batch requests, vocab]. */
    int[] sample(Step step, FloatArray logits) {
        int[] out = new int[step.sequences().size()];
        float[] row = new float[vocab];
        for (int s = 0; s < out.length; s++) {
            long base = (long) step.logitsRows()[s] * vocab;
            for (int v = 0; v < vocab; v++) {
                row[v] = logits.get((int) (base + v));
            }
            out[s] = sample(row, step.sequences().get(s));
        }
        return out;
    }

    /** The next token of r from its logits (modified in place). */
    int sample(float[] logits, Request r) {
        SamplingParams p = r.params();
        for (Map.Entry<Integer, Float> e : p.logitBias().entrySet()) {
            logits[e.getKey()] += e.getValue();
        }
        if (p.penalized()) {
            applyPenalties(logits, r);
        }
        if (r.generatedCount() < p.minNewTokens()) {
            for (int id : eosTokenIds) {
                mask(logits, id);
            }
            for (int id : p.stopTokenIds()) {
                mask(logits, id);
            }
        }
        if (p.greedy()) {
            return argmax(logits);
        }
        return sampleTopKTopP(logits, p, CounterRandom.uniform(r.seed(), r.generatedCount()));
    }

    private void mask(float[] logits, int id) {
        if (id < vocab) {
            logits[id] = Float.NEGATIVE_INFINITY;
        }
    }

    private static void applyPenalties(float[] logits, Request r) {
        SamplingParams p = r.params();
        Map<Integer, Integer> outputCounts = new HashMap<>();
        for (int i = 0; i < r.generatedCount(); i++) {
            outputCounts.merge(r.generatedAt(i), 1, Integer::sum);
        }
        if (p.repetitionPenalty() != 1) {
            Set<Integer> seen = new HashSet<>(outputCounts.keySet());
            for (int i = 0; i < r.promptLength(); i++) {
                seen.add(r.tokenAt(i));
            }
            for (int id : seen) {
                if (id < logits.length) {
                    logits[id] = logits[id] > 0 ? logits[id] / p.repetitionPenalty() : logits[id] * p.repetitionPenalty();
                }
            }
        }
        for (Map.Entry<Integer, Integer> e : outputCounts.entrySet()) {
            int id = e.getKey();
            if (id < logits.length) {
                logits[id] -= p.presencePenalty() + p.frequencyPenalty() * e.getValue();
            }
        }
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int v = 1; v < logits.length; v++) {
            if (logits[v] > logits[best]) {
                best = v;
            }
        }
        return best;
    }

    private static int sampleTopKTopP(float[] logits, SamplingParams p, float u) {
        float max = logits[argmax(logits)];
        double[] probs = new double[logits.length];
        double sum = 0;
        for (int v = 0; v < logits.length; v++) {
            probs[v] = Math.exp((logits[v] - max) / p.temperature());
            sum += probs[v];
        }
        double[] sorted = new double[probs.length];
        for (int v = 0; v < probs.length; v++) {
            probs[v] /= sum;
            sorted[v] = -probs[v];
        }
        Arrays.sort(sorted);   // negated: descending probabilities
        int k = p.topK() < 0 ? probs.length : Math.min(p.topK(), probs.length);
        double threshold = -sorted[k - 1];
        double keptMass = 0;
        for (int i = 0; i < probs.length && -sorted[i] >= threshold; i++) {
            keptMass += -sorted[i];
        }
        double cumulative = 0;
        for (int i = 0; i < probs.length && -sorted[i] >= threshold; i++) {
            cumulative += -sorted[i];
            if (cumulative >= p.topP() * keptMass) {
                threshold = -sorted[i];
                break;
            }
        }
        double kept = 0;
        for (double q : probs) {
            if (q >= threshold) {
                kept += q;
            }
        }
        double target = u * kept, scan = 0;
        int last = 0;
        for (int v = 0; v < probs.length; v++) {
            if (probs[v] >= threshold) {
                scan += probs[v];
                last = v;
                if (scan > target) {
                    return v;
                }
            }
        }
        return last;
    }
}
