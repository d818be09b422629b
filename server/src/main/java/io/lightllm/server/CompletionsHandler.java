package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.http.Context;
import io.javalin.http.Handler;

/**
 * OpenAI's {@code POST /v1/completions}. {@code prompt} is one text (a string or a one-string
 * array, tokenized with the model's bos) or one token-id array; several prompts in one request
 * get a 400 (send them as separate requests, which the engine batches anyway).
 */
final class CompletionsHandler implements Handler {
    private final ServerState server;

    CompletionsHandler(ServerState server) {
        this.server = server;
    }

    @Override
    public void handle(Context ctx) throws Exception {
        JsonBody body = Prompts.readBody(ctx, server.config().maxBodyBytes());
        OpenAiParams.checkModel(body, server.model());
        int[] prompt = prompt(body);
        new OpenAiResponse(server, false).answer(ctx, prompt, OpenAiParams.parse(body, prompt.length, server.model(), false));
    }

    private int[] prompt(JsonBody body) {
        JsonNode p = body.raw("prompt");
        if (p == null) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        if (p.isTextual()) {
            return Prompts.encode(server.model(), p.textValue(), "prompt", true);
        }
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            return Prompts.encode(server.model(), p.get(0).textValue(), "prompt", true);
        }
        if (p.isArray() && p.size() == 1 && p.get(0).isArray()) {
            p = p.get(0);
        }
        if (p.isArray() && !p.isEmpty() && p.get(0).isNumber()) {
            int[] ids = new int[p.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode t = p.get(i);
                if (!t.isIntegralNumber() || !t.canConvertToInt()) {
                    throw ApiException.invalid("prompt", "prompt token ids must be integers, got " + t);
                }
                ids[i] = t.intValue();
            }
            return Prompts.checkLength(server.model(), ids, "prompt");
        }
        if (p.isArray() && p.size() > 1) {
            throw ApiException.unsupported("prompt", "prompt holds " + p.size() + " prompts; this server takes one prompt per request");
        }
        throw ApiException.invalid("prompt", "prompt must be a non-empty string or an array of token ids");
    }
}
