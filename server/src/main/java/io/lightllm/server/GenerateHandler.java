package io.lightllm.server;

import io.javalin.http.Context;
import io.javalin.http.Handler;
import io.lightllm.engine.FinishReason;
import io.lightllm.engine.SamplingParams;
import io.lightllm.engine.TokenEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * LightLLM's {@code POST /generate}: {@code {"inputs": "...", "parameters": {...}}} ->
 * {@code {"generated_text": [...], "count_output_tokens", "finish_reason", "prompt_tokens"}}.
 * With n > 1, generated_text has n entries and finish_reason is a list. {@code parameters.return_details}
 * adds LightLLM's {@code "tokens"}: per token {@code {"id", "text", "logprob", "special"}} (a list of such lists when n > 1).
 * A vision model also takes LightLLM's {@code multimodal_params} (images for the prompt's image placeholders).
 */
final class GenerateHandler implements Handler {
    private final ServerState server;

    GenerateHandler(ServerState server) {
        this.server = server;
    }

    /** A parsed LightLLM request. */
    record Request(int[] prompt, SamplingParams params, boolean returnDetails) {
        /** {@code chosenLogprob}: the engine computes each chosen token's logprob (LightLLM's stream always reports it). */
        static Request read(Context ctx, ServerState server, boolean chosenLogprob) {
            JsonBody body = Prompts.readBody(ctx, server.config().maxBodyBytes());
            if (!body.has("inputs")) {
                throw ApiException.invalid("inputs", "inputs is required (the prompt text)");
            }
            int[] ids = Prompts.encode(server.model(), body.string("inputs", null), "inputs", true);
            List<float[]> images = images(body.raw("multimodal_params"), server.model());
            if (!images.isEmpty()) {
                ids = Prompts.checkLength(server.model(), server.model().images().withImages(ids, images, "inputs"), "inputs");
            }
            JsonBody parameters = body.object("parameters");
            boolean details = parameters.bool("return_details", false);
            SamplingParams params = LightLlmParams.parse(parameters, ids.length, server.model());
            body.rejectUnread(java.util.Set.of("model"));
            if (details || chosenLogprob) {
                params = params.toBuilder().logprobs(0).build();
            }
            return new Request(ids, params, details);
        }

        /**
         * LightLLM's {@code multimodal_params: {"images": [{"type": "base64" | "url", "data": ...}]}}, one per image
         * placeholder of the prompt (a vision model's image token, e.g. {@code <image>}), in order.
         */
        private static List<float[]> images(com.fasterxml.jackson.databind.JsonNode multimodal, ServedModel model) {
            List<float[]> out = new ArrayList<>();
            if (multimodal == null) {
                return out;
            }
            com.fasterxml.jackson.databind.JsonNode images = multimodal.path("images");
            if (!multimodal.isObject() || (!images.isMissingNode() && !images.isArray())) {
                throw ApiException.invalid("multimodal_params", "multimodal_params must be {\"images\": [{\"type\": \"base64\" | \"url\", \"data\": ...}]}");
            }
            if (images.isEmpty()) {
                return out;
            }
            if (model.images() == null) {
                throw ApiException.unsupported("multimodal_params", "multimodal_params: this model reads text only");
            }
            for (int i = 0; i < images.size(); i++) {
                out.add(model.images().readLightLlm(images.get(i), "multimodal_params.images[" + i + "]"));
            }
            return out;
        }
    }

    @Override
    public void handle(Context ctx) throws Exception {
        Request r = Request.read(ctx, server, false);
        int n = r.params().n();
        List<List<Object>> details = new ArrayList<>();
        List<StringBuilder> texts = new ArrayList<>();
        FinishReason[] finish = new FinishReason[n];
        for (int i = 0; i < n; i++) {
            texts.add(new StringBuilder());
            details.add(new ArrayList<>());
        }
        int outputTokens = 0;
        try (Generation g = Generation.start(server, "generate", r.prompt(), r.params())) {
            for (TokenEvent e = g.next(); e != null; e = g.next()) {
                if (e.token() >= 0) {
                    outputTokens++;
                }
                texts.get(e.sequence()).append(e.text());
                if (r.returnDetails() && e.token() >= 0) {
                    details.get(e.sequence()).add(tokenDetails(server, e));
                }
                if (e.last()) {
                    if (e.finish() == FinishReason.ERROR) {
                        throw new ApiException(500, "server_error", null, null, "generation failed: " + e.error(), Map.of());
                    }
                    finish[e.sequence()] = e.finish();
                }
            }
        }
        List<String> reasons = new ArrayList<>();
        for (FinishReason f : finish) {
            reasons.add(f.apiName());
        }
        Map<String, Object> answer = JsonOut.obj(
                "generated_text", texts.stream().map(StringBuilder::toString).toList(),
                "count_output_tokens", outputTokens,
                "finish_reason", n == 1 ? reasons.getFirst() : reasons,
                "prompt_tokens", r.prompt().length);
        if (r.returnDetails()) {
            answer.put("tokens", n == 1 ? details.getFirst() : details);
        }
        ctx.json(answer);
    }

    /**
     * LightLLM's per-token object; {@code text} is the text this token made ready to show (may be
     * empty while a character or a possible stop string is incomplete); logprob is null when the engine did not compute it.
     */
    static Map<String, Object> tokenDetails(ServerState server, TokenEvent e) {
        return JsonOut.obj(
                "id", e.token() >= 0 ? e.token() : null,
                "text", e.text(),
                "logprob", e.logprobs() == null ? null : e.logprobs().logprob(),
                "special", server.model().specialIds().contains(e.token()));
    }
}
