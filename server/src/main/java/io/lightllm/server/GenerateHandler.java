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
 * With n > 1, generated_text has n entries and finish_reason is a list.
 */
final class GenerateHandler implements Handler {
    private final ServerState server;

    GenerateHandler(ServerState server) {
        this.server = server;
    }

    /** A parsed LightLLM request. */
    record Request(int[] prompt, SamplingParams params) {
        static Request read(Context ctx, ServerState server) {
            JsonBody body = Prompts.readBody(ctx, server.config().maxBodyBytes());
            if (!body.has("inputs")) {
                throw ApiException.invalid("inputs", "inputs is required (the prompt text)");
            }
            int[] ids = Prompts.encode(server.model(), body.string("inputs", null), "inputs", true);
            return new Request(ids, LightLlmParams.parse(body.object("parameters"), ids.length, server.model()));
        }
    }

    @Override
    public void handle(Context ctx) throws Exception {
        Request r = Request.read(ctx, server);
        int n = r.params().n();
        List<StringBuilder> texts = new ArrayList<>();
        FinishReason[] finish = new FinishReason[n];
        for (int i = 0; i < n; i++) {
            texts.add(new StringBuilder());
        }
        int outputTokens = 0;
        try (Generation g = Generation.start(server, "generate", r.prompt(), r.params())) {
            for (TokenEvent e = g.next(); e != null; e = g.next()) {
                if (e.token() >= 0) {
                    outputTokens++;
                }
                texts.get(e.sequence()).append(e.text());
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
        ctx.json(JsonOut.obj(
                "generated_text", texts.stream().map(StringBuilder::toString).toList(),
                "count_output_tokens", outputTokens,
                "finish_reason", n == 1 ? reasons.getFirst() : reasons,
                "prompt_tokens", r.prompt().length));
    }
}
