package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** A java.net.http client for the tests: JSON requests, JSON answers, SSE events. */
final class Http {
    private static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    /** A status and its body parsed as JSON (null when the body is not JSON). */
    record Answer(int status, String body, JsonNode json, HttpResponse<String> response) { }

    private Http() {
    }

    static Answer get(String url, String... headers) {
        return send(HttpRequest.newBuilder(URI.create(url)).GET(), headers);
    }

    static Answer post(String url, String body, String... headers) {
        return send(HttpRequest.newBuilder(URI.create(url)).POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json"), headers);
    }

    static Answer send(HttpRequest.Builder b, String... headers) {
        if (headers.length > 0) {
            b.headers(headers);
        }
        try {
            HttpResponse<String> r = CLIENT.send(b.timeout(Duration.ofSeconds(120)).build(), HttpResponse.BodyHandlers.ofString());
            JsonNode json;
            try {
                json = JsonBody.MAPPER.readTree(r.body());
            } catch (IOException notJson) {
                json = null;
            }
            return new Answer(r.statusCode(), r.body(), json, r);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The {@code data:} payloads of an SSE answer, in order. */
    static List<String> events(Answer a) {
        List<String> out = new ArrayList<>();
        for (String line : a.body().split("\n")) {
            if (line.startsWith("data: ")) {
                out.add(line.substring("data: ".length()));
            } else if (!line.isEmpty()) {
                throw new AssertionError("not an SSE line: " + line);
            }
        }
        return out;
    }

    /** The text of a streamed chat completion: its events' {@code choices[0].delta.content}, joined, up to {@code [DONE]}. */
    static String streamedChatText(Answer a) {
        StringBuilder text = new StringBuilder();
        for (String e : events(a)) {
            if (!e.equals("[DONE]")) {
                text.append(json(e).path("choices").path(0).path("delta").path("content").asText(""));
            }
        }
        return text.toString();
    }

    /**
     * A client that POSTs {@code body} to {@code path} over its own socket, reads the status line and then
     * {@code events} SSE events (fewer if the stream ends), and closes the connection: a client that goes
     * away mid-stream. Returns the status line and the events read.
     */
    static HangUp hangUpAfter(int port, String path, String body, int events) throws IOException {
        byte[] b = body.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            java.io.OutputStream out = s.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " + b.length
                    + "\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            out.write(b);
            out.flush();
            java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream(),
                    java.nio.charset.StandardCharsets.UTF_8));
            String status = in.readLine();
            int read = 0;
            for (String line = in.readLine(); line != null && read < events; line = in.readLine()) {
                read += line.startsWith("data: ") ? 1 : 0;
            }
            return new HangUp(status, read);
        }
    }

    /** What {@link #hangUpAfter} saw. */
    record HangUp(String statusLine, int events) { }

    static JsonNode json(String s) {
        try {
            return JsonBody.MAPPER.readTree(s);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + s, e);
        }
    }
}
