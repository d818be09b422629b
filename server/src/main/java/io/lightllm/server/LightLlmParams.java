package io.lightllm.server;

import io.lightllm.engine.SamplingParams;

/**
 * LightLLM's {@code parameters} object, with LightLLM's names and defaults: greedy unless
 * {@code do_sample}, 16 new tokens, at least 1 new token ({@code min_new_tokens}).
 */
final class LightLlmParams {
    static final int MAX_N = 64;
    static final int MAX_STOP_SEQUENCES = 16;

    private LightLlmParams() {
    }

    static SamplingParams parse(JsonBody p, int promptTokens, ServedModel model) {
        boolean doSample = p.bool("do_sample", false);
        float temperature = p.number("temperature", 1, 0, 100);
        float topP = p.number("top_p", 1, 0, 1);
        if (topP == 0) {
            throw ApiException.invalid(p.name("top_p"), p.name("top_p") + " must be in (0, 1], got 0");
        }
        int topK = (int) p.integer("top_k", -1, -1, Integer.MAX_VALUE);
        if (topK == 0) {
            throw ApiException.invalid(p.name("top_k"), p.name("top_k") + " must be -1 (all tokens) or >= 1, got 0");
        }
        float repetition = p.number("repetition_penalty", 1, 0, 100);
        if (repetition == 0) {
            throw ApiException.invalid(p.name("repetition_penalty"), p.name("repetition_penalty") + " must be > 0, got 0");
        }
        float presence = p.number("presence_penalty", 0, -2, 2);
        float frequency = p.number("frequency_penalty", 0, -2, 2);
        int maxNew = (int) p.integer("max_new_tokens", 16, 1, model.contextLength());
        Prompts.checkMaxNew(model, promptTokens, maxNew, p.name("max_new_tokens"));
        int minNew = (int) p.integer("min_new_tokens", 1, 0, maxNew);
        int n = (int) p.integer("n", 1, 1, MAX_N);
        if (p.has("best_of") && p.integer("best_of", n, 1, MAX_N) != n) {
            throw ApiException.unsupported(p.name("best_of"), p.name("best_of") + " other than n is not implemented by this engine");
        }
        return SamplingParams.builder()
                .temperature(doSample ? temperature : 0)
                .topP(topP).topK(topK)
                .repetitionPenalty(repetition).presencePenalty(presence).frequencyPenalty(frequency)
                .maxNewTokens(maxNew).minNewTokens(minNew)
                .stopStrings(p.strings("stop_sequences", MAX_STOP_SEQUENCES))
                .ignoreEos(p.bool("ignore_eos", false))
                .skipSpecialTokens(p.bool("skip_special_tokens", true))
                .seed(p.has("seed") ? p.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE) : null)
                .n(n)
                .regex(StructuredOutput.regex(p)) // LightLLM's regular_constraint, guided_json (and vLLM's spellings)
                .build();
    }
}
