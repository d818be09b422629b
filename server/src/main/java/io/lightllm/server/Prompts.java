package io.lightllm.server;

import io.javalin.http.Context;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;

/** Reading request bodies within the size limit, and checking prompts against the model's context. */
final class Prompts {
    private Prompts() {
    }

    /** The body as a JSON object; 413 past {@code limit} bytes, whether or not the client sent Content-Length. */
    static JsonBody readBody(Context ctx, int limit) {
        long declared = ctx.req().getContentLengthLong();
        if (declared > limit) {
            throw tooLarge(limit);
        }
        byte[] body;
        try (InputStream in = ctx.req().getInputStream()) {
            body = in.readNBytes(limit + 1);
        } catch (IOException e) {
            throw bodyReadFailure(e);
        }
        if (body.length > limit) {
            throw tooLarge(limit);
        }
        return JsonBody.parse(body);
    }

    /**
     * A body that stopped arriving (the connection's idle timeout) is a 408, as HTTP has it; any
     * other read failure a 400. Neither message shows an exception's class.
     */
    static ApiException bodyReadFailure(IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.util.concurrent.TimeoutException || t instanceof java.net.SocketTimeoutException) {
                return new ApiException(408, "invalid_request_error", null, "request_timeout",
                        "the request body stopped arriving before it was complete; send it again", Map.of());
            }
        }
        return ApiException.invalid(null, "cannot read the request body (" + (e.getMessage() == null ? "the connection failed" : e.getMessage())
                .replaceAll("[a-z]+(\\.[a-z]+)+\\.[A-Z]\\w*(Exception|Error): ", "") + ")");
    }

    static ApiException tooLarge(int limit) {
        return new ApiException(413, "invalid_request_error", null, "request_too_large",
                "the request body is larger than the server's limit of " + limit + " bytes", Map.of());
    }

    /** Tokenizes a text prompt; 400 on {@code field} when it is empty or does not leave room for one new token. */
    static int[] encode(ServedModel model, String text, String field, boolean addSpecial) {
        if (text.isEmpty()) {
            throw ApiException.invalid(field, field + " is empty");
        }
        return checkLength(model, model.tokenizer().encode(text, addSpecial), field);
    }

    static int[] checkLength(ServedModel model, int[] ids, String field) {
        if (ids.length == 0) {
            throw ApiException.invalid(field, field + " has no tokens");
        }
        if (ids.length >= model.contextLength()) {
            throw ApiException.invalid(field, field + " has " + ids.length + " tokens; the model's context is " + model.contextLength()
                    + " tokens, so a prompt may have at most " + (model.contextLength() - 1));
        }
        return ids;
    }

    /** 400 on {@code field} when the prompt and {@code maxNew} new tokens exceed the context. */
    static void checkMaxNew(ServedModel model, int promptTokens, long maxNew, String field) {
        if (promptTokens + maxNew > model.contextLength()) {
            throw ApiException.invalid(field, field + " " + maxNew + " plus the prompt's " + promptTokens + " tokens exceeds the model's context of "
                    + model.contextLength() + " tokens (at most " + (model.contextLength() - promptTokens) + " new tokens fit)");
        }
    }
}
