package io.lightllm.server;

import io.javalin.http.Context;
import io.javalin.http.Handler;
import io.lightllm.engine.FinishReason;
import io.lightllm.engine.TokenEvent;

/**
 * LightLLM's {@code POST /generate_stream}: one SSE event per token,
 * {@code {"token": {"id", "text", "logprob", "special"}, "generated_text", "finished", "finish_reason"}};
 * generated_text is null until the last event, which carries the whole text. {@code logprob} is
 * the token's log-probability under the model's raw distribution (null on an event without a token). An event that ends the sequence
 * without a new token (a stop string) has token id null. Takes n = 1 only.
 */
final class GenerateStreamHandler implements Handler {
    private final ServerState server;

    GenerateStreamHandler(ServerState server) {
        this.server = server;
    }

    @Override
    public void handle(Context ctx) throws Exception {
        GenerateHandler.Request r = GenerateHandler.Request.read(ctx, server, true);
        if (r.params().n() != 1) {
            throw ApiException.unsupported("parameters.n", "parameters.n must be 1 for /generate_stream; use /generate or /v1/completions for n > 1");
        }
        StringBuilder text = new StringBuilder();
        try (Generation g = Generation.start(server, "generate_stream", r.prompt(), r.params())) {
            SseStream sse = new SseStream(ctx);
            for (TokenEvent e = g.next(); e != null; e = g.next()) {
                text.append(e.text());
                sse.send(JsonOut.obj(
                        "token", GenerateHandler.tokenDetails(server, e),
                        "generated_text", e.last() ? text.toString() : null,
                        "finished", e.last(),
                        "finish_reason", e.last() ? e.finish().apiName() : null,
                        "error", e.finish() == FinishReason.ERROR ? e.error() : null));
            }
        } catch (SseStream.ClientGone gone) {
            // closing the Generation above aborted the request; nobody is left to answer
        }
    }
}
