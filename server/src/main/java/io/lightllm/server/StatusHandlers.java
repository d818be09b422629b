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
        ctx.json(JsonOut.obj("object", "list", "data", java.util.List.of(JsonOut.obj(
                "id", server.model().name(),
                "object", "model",
                "created", server.startedEpochSeconds(),
                "owned_by", "lightllm",
                "max_model_len", server.model().contextLength()))));
    }
}
