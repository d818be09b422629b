package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** What an operator reads: one access-log line per generation request, and the start-up summary. */
class OperationsLogTest {
    @Test
    void everyRequestLeavesOneAccessLogLine() {
        try (ModelServer server = StoriesServer.start(ServerConfig.local(0))) {
            PrintStream saved = System.err;
            ByteArrayOutputStream captured = new ByteArrayOutputStream();
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            try {
                Http.Answer a = Http.post(server.url() + "/v1/completions",
                        "{\"prompt\": \"Once upon a time\", \"max_tokens\": 4, \"ignore_eos\": true}");
                assertTrue(a.status() == 200, a.body());
            } finally {
                System.setErr(saved);
            }
            String log = captured.toString(StandardCharsets.UTF_8);
            assertTrue(log.lines().filter(l -> l.contains("io.lightllm.access") && l.contains(" completions ")).count() == 1, log);
            assertTrue(log.contains("prompt_tokens=") && log.contains("output_tokens=4") && log.contains("finish=length")
                    && log.contains("ttft_ms="), log);
            String summary = server.local().summary();
            assertTrue(summary.contains("KV pool 4096 tokens") && summary.contains("on jvm") && summary.contains("prefix cache on"), summary);
        }
    }
}
