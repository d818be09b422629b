package io.lightllm.server;

import io.javalin.http.Context;
import io.lightllm.engine.EngineStats;

/** Health checks, {@code /token_load}, {@code /metrics} and {@code /v1/models}: answers about the server, no generation. */
final class StatusHandlers {
    private final ServerState server;

    StatusHandlers(ServerState server) {
        this.server = server;
    }

    /** 200 while the engine answers; the server only listens once the model is loaded and warmed up. */
    void health(Context ctx) {
        server.model().engine().stats();
        ctx.json(JsonOut.obj("status", "ok"));
    }

    void tokenLoad(Context ctx) {
        EngineStats s = server.model().engine().stats();
        int used = s.usedSlots(); // prefix-cache entries no request uses are free for the taking
        ctx.json(JsonOut.obj(
                "used_tokens", used,
                "cached_tokens", s.cachedSlots(),
                "total_tokens", s.capacity(),
                "current_load", used / (double) s.capacity(),
                "running_requests", s.running(),
                "waiting_requests", s.waiting(),
                "requests_in_progress", server.slots().inProgress()));
    }

    void metrics(Context ctx) {
        ctx.contentType(ServerMetrics.contentType());
        ctx.result(server.metrics().scrape());
    }

    void models(Context ctx) {
        ctx.json(JsonOut.obj("object", "list", "data", java.util.List.of(model())));
    }

    /** {@code GET /v1/models/{id}}: the served model, or OpenAI's 404 for another name. */
    void model(Context ctx) {
        String id = ctx.pathParam("id");
        if (!id.equals(server.model().name())) {
            throw new ApiException(404, "invalid_request_error", "model", "model_not_found",
                    "the model '" + id + "' does not exist; this server serves '" + server.model().name() + "'", java.util.Map.of());
        }
        ctx.json(model());
    }

    private java.util.Map<String, Object> model() {
        return JsonOut.obj("id", server.model().name(), "object", "model", "created", server.startedEpochSeconds(),
                "owned_by", "lightllm", "max_model_len", server.model().contextLength());
    }

    /** {@code GET /version} (vLLM's). */
    void version(Context ctx) {
        String v = StatusHandlers.class.getPackage().getImplementationVersion();
        ctx.json(JsonOut.obj("version", v != null ? v : "0.1.0-SNAPSHOT"));
    }

    /**
     * vLLM's {@code POST /tokenize}: {@code {"prompt": text, "add_special_tokens": true}} or chat
     * {@code {"messages": [...], "add_generation_prompt": true}} gives {@code {"tokens", "count", "max_model_len"}}.
     */
    void tokenize(Context ctx) {
        JsonBody b = Prompts.readBody(ctx, server.config().maxBodyBytes());
        int[] ids;
        if (b.has("messages")) {
            String text = server.model().chatTemplate().render(ChatCompletionsHandler.messages(b.raw("messages")));
            ids = server.model().tokenizer().encode(text, b.bool("add_special_tokens", false));
        } else if (b.has("prompt")) {
            ids = server.model().tokenizer().encode(b.string("prompt", ""), b.bool("add_special_tokens", true));
        } else {
            // vLLM refuses it too: an empty body is a client's mistake, not a request for the bos token alone
            throw ApiException.invalid("prompt", "send prompt (text) or messages (a chat) to tokenize");
        }
        b.rejectUnread(java.util.Set.of("model"));
        ctx.json(JsonOut.obj("tokens", ids, "count", ids.length, "max_model_len", server.model().contextLength()));
    }

    /** vLLM's {@code POST /detokenize}: {@code {"tokens": [ids]}} gives {@code {"prompt": text}}. */
    void detokenize(Context ctx) {
        JsonBody b = Prompts.readBody(ctx, server.config().maxBodyBytes());
        com.fasterxml.jackson.databind.JsonNode t = b.raw("tokens");
        if (t == null || !t.isArray()) {
            throw ApiException.invalid("tokens", "tokens must be an array of token ids");
        }
        int[] ids = new int[t.size()];
        int vocab = server.model().tokenizer().vocabSize();
        for (int i = 0; i < ids.length; i++) {
            if (!t.get(i).canConvertToInt() || t.get(i).intValue() < 0 || t.get(i).intValue() >= vocab) {
                throw ApiException.invalid("tokens", "token " + t.get(i) + " is not an id of the vocabulary [0, " + vocab + ")");
            }
            ids[i] = t.get(i).intValue();
        }
        b.rejectUnread(java.util.Set.of("model"));
        ctx.json(JsonOut.obj("prompt", server.model().tokenizer().decode(ids, false)));
    }
}
