package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The API key, the body size limit and the request limit (503 with Retry-After). */
class AuthAndLimitsTest {
    private static final String KEY = "test-key-123";
    private static final String AUTH = "Bearer " + KEY;
    private static ModelServer server;

    @BeforeAll
    static void start() {
        server = StoriesServer.start(new ServerConfig("127.0.0.1", 0, KEY, 4096, 1, null));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    @Test
    void everyEndpointButHealthNeedsTheKey() {
        assertEquals(200, Http.get(server.url() + "/health").status());
        assertEquals(200, Http.get(server.url() + "/readiness").status());
        for (String path : new String[] {"/v1/models", "/token_load", "/metrics"}) {
            Http.Answer none = Http.get(server.url() + path);
            assertEquals(401, none.status(), path);
            assertEquals("authentication_error", none.json().get("error").get("type").asText());
            assertEquals(401, Http.get(server.url() + path, "Authorization", "Bearer wrong").status());
            assertEquals(200, Http.get(server.url() + path, "Authorization", AUTH).status(), path);
        }
        assertEquals(401, Http.post(server.url() + "/generate", "{\"inputs\": \"Hi\"}").status());
    }

    @Test
    void bodiesOverTheLimitGet413() {
        Http.Answer a = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"" + "a".repeat(5000) + "\"}", "Authorization", AUTH);
        assertEquals(413, a.status(), a.body());
        assertTrue(a.json().get("error").get("message").asText().contains("4096 bytes"));
    }

    @Test
    void aRequestPastTheLimitGets503WithRetryAfter() throws Exception {
        byte[] body = "{\"prompt\": \"Once\", \"max_tokens\": 400, \"ignore_eos\": true, \"stream\": true}".getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + AUTH + "\r\nContent-Length: " + body.length
                    + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            for (String line = in.readLine(); !line.startsWith("data: "); line = in.readLine()) {
                // headers, until the first event: the long request now holds the server's only slot
            }
            Http.Answer busy = Http.post(server.url() + "/generate", "{\"inputs\": \"Hi\"}", "Authorization", AUTH);
            assertEquals(503, busy.status(), busy.body());
            assertEquals("1", busy.response().headers().firstValue("Retry-After").orElse(null));
            assertEquals("server_overloaded", busy.json().get("error").get("type").asText());
        }
        // the hang-up frees the slot once the server's next write fails
        long end = System.currentTimeMillis() + 30_000;
        int status = 0;
        while (System.currentTimeMillis() < end && status != 200) {
            status = Http.post(server.url() + "/generate", "{\"inputs\": \"Hi\"}", "Authorization", AUTH).status();
            Thread.sleep(20);
        }
        assertEquals(200, status);
    }
}
