package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * 64 streaming requests at once, a quarter of whose clients hang up after a few tokens: every
 * remaining stream must complete, and the aborted requests must give back their KV slots.
 */
class ConcurrencyTest {
    private static final int REQUESTS = 64;
    private static final int MAX_TOKENS = 32;
    private static ModelServer server;

    @BeforeAll
    static void start() {
        server = StoriesServer.start(ServerConfig.local(0));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static String body(int i) {
        return "{\"prompt\": \"Once upon a time " + i + "\", \"max_tokens\": " + MAX_TOKENS
                + ", \"ignore_eos\": true, \"temperature\": 0.8, \"seed\": " + i + ", \"stream\": true}";
    }

    /** A full stream: the number of tokens received, checked to end with a finish reason and [DONE]. */
    private static int completeStream(int i) {
        Http.Answer a = Http.post(server.url() + "/v1/completions", body(i));
        assertEquals(200, a.status(), a.body());
        List<String> events = Http.events(a);
        assertEquals("[DONE]", events.getLast());
        JsonNode last = Http.json(events.get(events.size() - 2));
        assertEquals("length", last.get("choices").get(0).get("finish_reason").asText());
        return events.size() - 1;
    }

    /** A client that reads three events and then closes the connection mid-stream. */
    private static int hangUp(int i) throws Exception {
        return Http.hangUpAfter(server.port(), "/v1/completions", body(i), 3).events();
    }

    @Test
    void survivorsCompleteAndHangUpsFreeTheirSlots() throws Exception {
        List<Future<Integer>> streams = new ArrayList<>();
        List<Future<Integer>> hangUps = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < REQUESTS; i++) {
                int id = i;
                if (i % 4 == 3) {
                    hangUps.add(pool.submit(() -> hangUp(id)));
                } else {
                    streams.add(pool.submit(() -> completeStream(id)));
                }
            }
            for (Future<Integer> f : streams) {
                // one event per token: some may carry text of several tokens' worth of bytes, never more events than tokens
                int events = f.get();
                assertTrue(events >= 1 && events <= MAX_TOKENS, "events " + events);
            }
            for (Future<Integer> f : hangUps) {
                assertEquals(3, f.get());
            }
        }
        // the hung-up requests are aborted at the next step once the server's write fails; poll until the pool is whole
        JsonNode load = null;
        long end = System.currentTimeMillis() + 30_000;
        while (System.currentTimeMillis() < end) {
            load = Http.get(server.url() + "/token_load").json();
            if (load.get("used_tokens").asInt() == 0 && load.get("running_requests").asInt() == 0 && load.get("waiting_requests").asInt() == 0
                    && load.get("requests_in_progress").asInt() == 0) {
                break;
            }
            Thread.sleep(20);
        }
        assertEquals(0, load.get("used_tokens").asInt(), load.toString());
        assertEquals(0, load.get("requests_in_progress").asInt(), load.toString());
        assertEquals(200, Http.get(server.url() + "/health").status());
        String metrics = Http.get(server.url() + "/metrics").body();
        assertTrue(metrics.contains("lightllm_requests_total{endpoint=\"completions\",outcome=\"abort\"} " + hangUps.size() + ".0"), metrics);
        assertTrue(metrics.contains("lightllm_requests_total{endpoint=\"completions\",outcome=\"length\"} " + streams.size() + ".0"), metrics);
    }
}
