package io.lightllm.engine;

import java.util.List;
import java.util.Map;

/**
 * How one request picks its tokens and when it stops (the fields of LightLLM's and vLLM's
 * sampling parameters). Build with {@link #builder()}; every bad value is rejected with a
 * message that names the field.
 *
 * @param temperature       0 picks the most likely token (greedy); above 0 divides the logits
 * @param topP              keep the smallest set of tokens whose probability reaches topP (1 keeps all)
 * @param topK              keep the topK most likely tokens (-1 keeps all)
 * @param repetitionPenalty logits of tokens already in the prompt or the output are divided by it when positive, multiplied when negative (1 is off)
 * @param presencePenalty   subtracted once from the logit of every token already generated (0 is off)
 * @param frequencyPenalty  subtracted from a token's logit once per time it was generated (0 is off)
 * @param seed              the random stream of the request; null draws one at submission
 * @param maxNewTokens      the request stops with {@link FinishReason#LENGTH} after this many tokens
 * @param minNewTokens      eos and stop tokens are ignored before this many tokens
 * @param ignoreEos         keep going past eos (benchmarks)
 * @param stopTokenIds      tokens that end the request (included in the output)
 * @param stopStrings       texts that end the request (the output is cut before them)
 * @param n                 sequences returned for the prompt; they share the prompt's KV slots
 * @param logprobs          -1: no log-probabilities; 0..{@value #MAX_LOGPROBS}: every token carries its
 *                          {@link TokenLogprobs} with this many most likely alternatives
 * @param regex             structured output: the generated text must match this regular expression
 *                          ({@link RegexConstraint}); null for free text
 * @param promptLogprobs    -1: none; 0..{@value #MAX_LOGPROBS}: the log-probability of every prompt token
 *                          after the first (given the tokens before it) with this many alternatives, on the
 *                          first event (vLLM's prompt_logprobs); the prompt is then computed whole, not
 *                          read from the prefix cache
 * @param skipSpecialTokens the output text leaves out special tokens (BOS, EOS, chat markers, Qwen-VL's
 *                          {@code <ref>}/{@code <box>} tags); false keeps them (vLLM's and LightLLM's
 *                          skip_special_tokens, default true). The token ids are the same either way.
 * @param logitBias         added to the logits of these token ids before penalties and sampling, each in
 *                          [-{@value #MAX_LOGIT_BIAS}, {@value #MAX_LOGIT_BIAS}] (OpenAI's and vLLM's logit_bias;
 *                          -100 bans a token, +100 all but forces it); empty for none
 */
public record SamplingParams(float temperature, float topP, int topK, float repetitionPenalty, float presencePenalty,
                             float frequencyPenalty, Long seed, int maxNewTokens, int minNewTokens, boolean ignoreEos,
                             List<Integer> stopTokenIds, List<String> stopStrings, int n, int logprobs, String regex,
                             int promptLogprobs, boolean skipSpecialTokens, Map<Integer, Float> logitBias) {
    /** The most alternatives a token's {@link TokenLogprobs} may list (OpenAI's limit for top_logprobs). */
    public static final int MAX_LOGPROBS = 20;
    /** The largest bias logit_bias may add or subtract (OpenAI's range). */
    public static final int MAX_LOGIT_BIAS = 100;

    public SamplingParams {
        check(Float.isFinite(temperature) && temperature >= 0, "temperature", "a finite number >= 0", temperature);
        check(topP > 0 && topP <= 1, "top_p", "in (0, 1]", topP);
        check(topK == -1 || topK >= 1, "top_k", "-1 (all tokens) or >= 1", topK);
        check(Float.isFinite(repetitionPenalty) && repetitionPenalty > 0, "repetition_penalty", "a finite number > 0", repetitionPenalty);
        check(Float.isFinite(presencePenalty) && Math.abs(presencePenalty) <= 2, "presence_penalty", "in [-2, 2]", presencePenalty);
        check(Float.isFinite(frequencyPenalty) && Math.abs(frequencyPenalty) <= 2, "frequency_penalty", "in [-2, 2]", frequencyPenalty);
        check(maxNewTokens >= 1, "max_new_tokens", ">= 1", maxNewTokens);
        check(minNewTokens >= 0 && minNewTokens <= maxNewTokens, "min_new_tokens", "in [0, max_new_tokens=" + maxNewTokens + "]", minNewTokens);
        check(n >= 1, "n", ">= 1", n);
        check(logprobs >= -1 && logprobs <= MAX_LOGPROBS, "logprobs", "-1 (off) or in [0, " + MAX_LOGPROBS + "]", logprobs);
        check(promptLogprobs >= -1 && promptLogprobs <= MAX_LOGPROBS, "prompt_logprobs", "-1 (off) or in [0, " + MAX_LOGPROBS + "]",
                promptLogprobs);
        stopTokenIds = List.copyOf(stopTokenIds);
        for (int id : stopTokenIds) {
            check(id >= 0, "stop_token_ids", "non-negative token ids", id);
        }
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) {
            check(!s.isEmpty(), "stop", "non-empty strings", "\"\"");
        }
        logitBias = Map.copyOf(logitBias);
        for (Map.Entry<Integer, Float> e : logitBias.entrySet()) {
            check(e.getKey() >= 0, "logit_bias", "keyed by non-negative token ids", e.getKey());
            check(Float.isFinite(e.getValue()) && Math.abs(e.getValue()) <= MAX_LOGIT_BIAS, "logit_bias",
                    "values in [-" + MAX_LOGIT_BIAS + ", " + MAX_LOGIT_BIAS + "]", e.getValue());
        }
        if (regex != null) {
            try {
                java.util.regex.Pattern.compile(regex);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new IllegalArgumentException("the output constraint is not a valid regular expression: " + e.getDescription());
            }
            new dk.brics.automaton.RegExp(JavaRegex.toBrics(regex), dk.brics.automaton.RegExp.NONE); // regular, and parses as a DFA will
        }
    }

    /** Without an output constraint. */
    public SamplingParams(float temperature, float topP, int topK, float repetitionPenalty, float presencePenalty, float frequencyPenalty,
                          Long seed, int maxNewTokens, int minNewTokens, boolean ignoreEos, List<Integer> stopTokenIds, List<String> stopStrings,
                          int n, int logprobs) {
        this(temperature, topP, topK, repetitionPenalty, presencePenalty, frequencyPenalty, seed, maxNewTokens, minNewTokens, ignoreEos,
                stopTokenIds, stopStrings, n, logprobs, null, -1, true, Map.of());
    }

    public boolean greedy() {
        return temperature == 0;
    }

    /** Whether logits need the penalty pass (repetition, presence, frequency) before sampling. */
    public boolean penalized() {
        return repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Greedy decoding of up to {@code maxNewTokens} tokens. */
    public static SamplingParams greedy(int maxNewTokens) {
        return builder().maxNewTokens(maxNewTokens).build();
    }

    public Builder toBuilder() {
        return new Builder().temperature(temperature).topP(topP).topK(topK).repetitionPenalty(repetitionPenalty)
                .presencePenalty(presencePenalty).frequencyPenalty(frequencyPenalty).seed(seed).maxNewTokens(maxNewTokens)
                .minNewTokens(minNewTokens).ignoreEos(ignoreEos).stopTokenIds(stopTokenIds).stopStrings(stopStrings).n(n)
                .logprobs(logprobs).regex(regex).promptLogprobs(promptLogprobs).skipSpecialTokens(skipSpecialTokens).logitBias(logitBias);
    }

    private static void check(boolean ok, String field, String expected, Object actual) {
        if (!ok) {
            throw new IllegalArgumentException(field + " must be " + expected + ", got " + actual);
        }
    }

    /** Defaults: greedy, no penalties, 16 new tokens, one sequence, no logprobs. */
    public static final class Builder {
        private String regex;
        private float temperature = 0;
        private float topP = 1;
        private int topK = -1;
        private float repetitionPenalty = 1;
        private float presencePenalty = 0;
        private float frequencyPenalty = 0;
        private Long seed;
        private int maxNewTokens = 16;
        private int minNewTokens = 0;
        private boolean ignoreEos;
        private List<Integer> stopTokenIds = List.of();
        private List<String> stopStrings = List.of();
        private int n = 1;
        private int logprobs = -1;
        private int promptLogprobs = -1;
        private boolean skipSpecialTokens = true;
        private Map<Integer, Float> logitBias = Map.of();

        public Builder temperature(float v) { temperature = v; return this; }
        public Builder topP(float v) { topP = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder repetitionPenalty(float v) { repetitionPenalty = v; return this; }
        public Builder presencePenalty(float v) { presencePenalty = v; return this; }
        public Builder frequencyPenalty(float v) { frequencyPenalty = v; return this; }
        public Builder seed(Long v) { seed = v; return this; }
        public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
        public Builder minNewTokens(int v) { minNewTokens = v; return this; }
        public Builder ignoreEos(boolean v) { ignoreEos = v; return this; }
        public Builder stopTokenIds(List<Integer> v) { stopTokenIds = v; return this; }
        public Builder stopStrings(List<String> v) { stopStrings = v; return this; }
        public Builder n(int v) { n = v; return this; }
        public Builder logprobs(int v) { logprobs = v; return this; }
        /** Structured output: the text must match this regular expression (null: free text). */
        public Builder regex(String v) { regex = v; return this; }
        /** Log-probabilities of the prompt's tokens with this many alternatives (-1: none). */
        public Builder promptLogprobs(int v) { promptLogprobs = v; return this; }
        /** Whether the output text leaves out special tokens (default true). */
        public Builder skipSpecialTokens(boolean v) { skipSpecialTokens = v; return this; }
        /** Biases added to these token ids' logits before penalties and sampling (OpenAI's logit_bias). */
        public Builder logitBias(Map<Integer, Float> v) { logitBias = v; return this; }

        public SamplingParams build() {
            return new SamplingParams(temperature, topP, topK, repetitionPenalty, presencePenalty, frequencyPenalty, seed,
                    maxNewTokens, minNewTokens, ignoreEos, stopTokenIds, stopStrings, n, logprobs, regex, promptLogprobs, skipSpecialTokens,
                    logitBias);
        }
    }
}
