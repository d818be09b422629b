package io.lightllm.server;

import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A server-sent event stream on a response: each {@link #send} writes one {@code data:} event
 * and flushes it, so the client sees each token as it is made. A write that fails means the
 * client went away: it throws {@link ClientGone}, and the caller aborts the request.
 */
final class SseStream {
    /** The client closed the connection. */
    static final class ClientGone extends RuntimeException {
        ClientGone(IOException cause) {
            super("the client closed the connection", cause);
        }
    }

    private final OutputStream out;

    SseStream(Context ctx) {
        ctx.status(200);
        ctx.contentType("text/event-stream; charset=utf-8");
        ctx.header("Cache-Control", "no-cache");
        ctx.header("X-Accel-Buffering", "no");
        try {
            this.out = ctx.res().getOutputStream();
        } catch (IOException e) {
            throw new ClientGone(e);
        }
    }

    void send(Object json) {
        try {
            sendRaw(JsonBody.MAPPER.writeValueAsString(json));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot write an event as JSON", e);
        }
    }

    /** Writes {@code data: text}; text must be one line (JSON without newlines, or [DONE]). */
    void sendRaw(String data) {
        try {
            out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException e) {
            throw new ClientGone(e);
        }
    }
}
