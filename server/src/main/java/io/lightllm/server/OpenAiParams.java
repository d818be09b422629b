package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.engine.SamplingParams;

/**
 * The sampling fields shared by {@code /v1/completions} and {@code /v1/chat/completions}, with
 * OpenAI's names, ranges and defaults (temperature 1), plus vLLM's extensions {@code top_k},
 * {@code min_tokens}, {@code repetition_penalty}, {@code ignore_eos} and {@code skip_special_tokens}. Token log-probabilities:
 * completions' {@code logprobs: N}, chat's {@code logprobs: true} with {@code top_logprobs: N}
 * (N in 0..20); the prompt's, with vLLM's {@code prompt_logprobs: N} or completions' {@code echo} with
 * {@code logprobs} (the prompt's tokens first, as OpenAI's legacy completions gave them). {@code logit_bias}: token
 * ids (as the object's keys) to biases in [-100, 100]. Fields this engine cannot honour (best_of other than n,
 * suffix) get a 400 instead of being silently ignored.
 *
 * @param params         what the engine runs
 * @param stream         SSE instead of one JSON answer
 * @param includeUsage   stream_options.include_usage: a last chunk with the usage
 * @param promptLogprobs vLLM's prompt_logprobs field (-1: not asked); the engine's value may be larger for echo
 */
record OpenAiParams(SamplingParams params, boolean stream, boolean includeUsage, ToolCalls tools, boolean echo, int promptLogprobs) {
    static final int MAX_N = 64;
    static final int MAX_STOP = 16;

    /** Checks {@code model} before the prompt is read, so a wrong model name is the first complaint. */
    static void checkModel(JsonBody body, ServedModel model) {
        String name = body.string("model", null);
        if (name != null && !name.equals(model.name())) {
            throw new ApiException(400, "invalid_request_error", "model", "model_not_found",
                    "model '" + name + "' is not served here; this server serves '" + model.name() + "'", java.util.Map.of());
        }
    }

    /** {@code chat}: max_completion_tokens (or max_tokens) defaults to the rest of the context; completions default to 16. */
    static OpenAiParams parse(JsonBody b, int promptTokens, ServedModel model, boolean chat) {
        return parse(b, promptTokens, model, chat, null);
    }

    /** {@code tools}: the chat request's tools (read by the caller, which renders them), or null. */
    static OpenAiParams parse(JsonBody b, int promptTokens, ServedModel model, boolean chat, ToolCalls tools) {
        rejectUnsupported(b, chat);
        String maxField = chat && b.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        long fallback = chat ? model.contextLength() - promptTokens : 16;
        int maxNew = (int) b.integer(maxField, fallback, 1, model.contextLength());
        Prompts.checkMaxNew(model, promptTokens, maxNew, maxField);
        float topP = b.number("top_p", 1, 0, 1);
        if (topP == 0) {
            throw ApiException.invalid("top_p", "top_p must be in (0, 1], got 0");
        }
        int topK = (int) b.integer("top_k", -1, -1, Integer.MAX_VALUE);
        if (topK == 0) {
            throw ApiException.invalid("top_k", "top_k must be -1 (all tokens) or >= 1, got 0");
        }
        float repetition = b.number("repetition_penalty", 1, 0, 100);
        if (repetition == 0) {
            throw ApiException.invalid("repetition_penalty", "repetition_penalty must be > 0, got 0");
        }
        int n = (int) b.integer("n", 1, 1, MAX_N);
        boolean stream = b.bool("stream", false);
        if (b.has("stream_options") && !stream) {
            throw ApiException.invalid("stream_options", "stream_options is only allowed with stream: true");
        }
        SamplingParams p = SamplingParams.builder()
                .temperature(b.number("temperature", 1, 0, 2))
                .topP(topP).topK(topK).repetitionPenalty(repetition)
                .presencePenalty(b.number("presence_penalty", 0, -2, 2))
                .frequencyPenalty(b.number("frequency_penalty", 0, -2, 2))
                .maxNewTokens(maxNew)
                .minNewTokens((int) b.integer("min_tokens", 0, 0, maxNew))
                .stopStrings(b.strings("stop", MAX_STOP))
                .ignoreEos(b.bool("ignore_eos", false))
                .skipSpecialTokens(b.bool("skip_special_tokens", true))
                .seed(b.has("seed") ? b.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE) : null)
                .n(n)
                .logprobs(logprobs(b, chat))
                .logitBias(logitBias(b, model))
                .regex(constraint(b, tools))
                .build();
        boolean echo = !chat && b.bool("echo", false);
        JsonNode promptField = b.raw("prompt_logprobs");
        int promptLogprobs = promptField == null || promptField.isNull() ? -1 : (int) b.integer("prompt_logprobs", -1, 0, SamplingParams.MAX_LOGPROBS);
        // echo with logprobs shows the prompt's tokens with theirs
        int scored = Math.max(promptLogprobs, echo ? p.logprobs() : -1);
        if (scored >= 0) {
            if (stream && n > 1) {
                String field = promptLogprobs >= 0 ? "prompt_logprobs" : "echo";
                throw ApiException.unsupported(field, field + ": the prompt's log-probabilities are streamed with n = 1 only; ask without stream for n > 1");
            }
            p = p.toBuilder().promptLogprobs(scored).build();
        }
        OpenAiParams params = new OpenAiParams(p, stream, b.object("stream_options").bool("include_usage", false), tools, echo, promptLogprobs);
        b.rejectUnread(ACCEPTED);
        return params;
    }

    /**
     * OpenAI fields that change nothing about the output here, accepted and ignored: who the user
     * is, what to store, which tier serves it, whether to run tool calls in parallel (no tools).
     */
    static final java.util.Set<String> ACCEPTED = java.util.Set.of("user", "metadata", "store", "service_tier",
            "parallel_tool_calls", "modalities", "prediction", "reasoning_effort", "web_search_options", "model");

    /** The output constraint: structured output, or a required tool call; not both. */
    private static String constraint(JsonBody b, ToolCalls tools) {
        String structured = StructuredOutput.regex(b);
        String call = tools == null ? null : tools.regex();
        if (structured != null && call != null) {
            throw ApiException.invalid("tool_choice", "a required tool call and a response_format cannot both constrain the answer");
        }
        return structured != null ? structured : call;
    }

    /**
     * OpenAI's {@code logit_bias}: an object from token ids (its keys, decimal strings) to biases in [-100, 100] added to
     * those tokens' logits; ids must be in the model's vocabulary.
     */
    private static java.util.Map<Integer, Float> logitBias(JsonBody b, ServedModel model) {
        JsonNode raw = b.raw("logit_bias");
        if (raw == null) {
            return java.util.Map.of();
        }
        JsonBody biases = b.object("logit_bias");
        java.util.Map<Integer, Float> out = new java.util.HashMap<>();
        int vocab = model.engine().vocabSize();
        for (java.util.Iterator<String> it = raw.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            int id;
            try {
                id = Integer.parseInt(key);
            } catch (NumberFormatException e) {
                throw ApiException.invalid("logit_bias", "logit_bias keys must be token ids, got \"" + key + "\"");
            }
            if (id < 0 || id >= vocab) {
                throw ApiException.invalid("logit_bias", "logit_bias names token " + key + ", outside the vocabulary [0, " + vocab + ")");
            }
            out.put(id, biases.number(key, 0, -SamplingParams.MAX_LOGIT_BIAS, SamplingParams.MAX_LOGIT_BIAS));
        }
        return out;
    }

    /** The engine's logprobs setting: -1 when not asked, else the number of alternatives per token. */
    private static int logprobs(JsonBody b, boolean chat) {
        if (!chat) {
            return (int) b.integer("logprobs", -1, 0, SamplingParams.MAX_LOGPROBS);
        }
        boolean asked = b.bool("logprobs", false);
        int top = (int) b.integer("top_logprobs", 0, 0, SamplingParams.MAX_LOGPROBS);
        if (b.has("top_logprobs") && !asked) {
            throw ApiException.invalid("top_logprobs", "top_logprobs requires logprobs: true");
        }
        return asked ? top : -1;
    }

    private static void rejectUnsupported(JsonBody b, boolean chat) {
        if (chat) {
            notEmpty(b, "functions", "functions: function calling is not implemented");
        } else {
            if (b.has("suffix")) {
                throw ApiException.unsupported("suffix", "suffix (insertion) is not implemented");
            }
            if (b.has("best_of") && b.integer("best_of", 1, 1, MAX_N) != b.integer("n", 1, 1, MAX_N)) {
                throw ApiException.unsupported("best_of", "best_of other than n is not implemented by this engine");
            }
        }
    }

    private static void notEmpty(JsonBody b, String field, String message) {
        JsonNode v = b.raw(field);
        if (v != null && !(v.isContainerNode() && v.isEmpty())) {
            throw ApiException.unsupported(field, message);
        }
    }
}
