package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import java.util.ArrayList;
import java.util.List;

/**
 * OpenAI's {@code POST /v1/completions}. {@code prompt} is a text (tokenized with the model's
 * bos), an array of token ids, or an array of several texts or several token-id arrays: each
 * prompt is a request of its own in the engine, and the answer holds n choices per prompt,
 * prompt i's at indices i * n to i * n + n - 1 (as OpenAI and vLLM number them).
 */
final class CompletionsHandler implements Handler {
    /** Prompts in one request at most: each takes a request slot and its KV. */
    static final int MAX_PROMPTS = 64;

    private final ServerState server;

    CompletionsHandler(ServerState server) {
        this.server = server;
    }

    @Override
    public void handle(Context ctx) throws Exception {
        JsonBody body = Prompts.readBody(ctx, server.config().maxBodyBytes());
        OpenAiParams.checkModel(body, server.model());
        List<int[]> prompts = prompts(body);
        int longest = prompts.stream().mapToInt(t -> t.length).max().orElseThrow();
        new OpenAiResponse(server, false).answer(ctx, prompts, OpenAiParams.parse(body, longest, server.model(), false));
    }

    private List<int[]> prompts(JsonBody body) {
        JsonNode p = body.raw("prompt");
        if (p == null) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        if (p.isTextual() || p.isArray() && !p.isEmpty() && p.get(0).isNumber()) {
            return List.of(prompt(p, "prompt"));
        }
        if (!p.isArray() || p.isEmpty()) {
            throw ApiException.invalid("prompt", "prompt must be a non-empty string, an array of token ids, or an array of those");
        }
        if (p.size() > MAX_PROMPTS) {
            throw ApiException.invalid("prompt", "prompt holds " + p.size() + " prompts; at most " + MAX_PROMPTS + " in one request");
        }
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < p.size(); i++) {
            JsonNode one = p.get(i);
            if (!one.isTextual() && !(one.isArray() && !one.isEmpty() && one.get(0).isNumber())) {
                throw ApiException.invalid("prompt", "prompt[" + i + "] must be a non-empty string or an array of token ids");
            }
            prompts.add(prompt(one, "prompt[" + i + "]"));
        }
        return prompts;
    }

    /** One prompt: a text or an array of token ids. */
    private int[] prompt(JsonNode p, String what) {
        if (p.isTextual()) {
            return Prompts.encode(server.model(), p.textValue(), what, true);
        }
        int[] ids = new int[p.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = p.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt()) {
                throw ApiException.invalid("prompt", what + " token ids must be integers, got " + t);
            }
            ids[i] = t.intValue();
            // an image's placeholder ids come only from the server's own image path: another client's image must
            // not be readable by sending its ids (they follow from the order images arrived in)
            if (server.model().images() != null && server.model().images().isPlaceholder(ids[i])) {
                throw ApiException.invalid("prompt", what + " token id " + ids[i] + " is not a token of the vocabulary");
            }
        }
        return Prompts.checkLength(server.model(), ids, what);
    }
}
