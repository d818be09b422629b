package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** The prefix cache seen from the API: OpenAI's usage.prompt_tokens_details.cached_tokens and the Prometheus counters. */
class PrefixCacheServeTest {
    @Test
    void aRepeatedPromptIsReadFromTheCache() {
        try (ModelServer server = StoriesServer.start(ServerConfig.local(0))) {
            String body = "{\"model\": \"stories260K\", \"prompt\": \"Once upon a time, there was a little girl\", \"max_tokens\": 6}";
            JsonNode first = Http.post(server.url() + "/v1/completions", body).json().get("usage");
            JsonNode second = Http.post(server.url() + "/v1/completions", body).json().get("usage");
            // the first finds at most what the server's warm-up left (its first tokens)
            assertTrue(first.get("prompt_tokens_details").get("cached_tokens").asInt() < 4, first.toString());
            // every prompt token but the last, which is computed again for the first output's logits
            assertEquals(second.get("prompt_tokens").asInt() - 1, second.get("prompt_tokens_details").get("cached_tokens").asInt(), second.toString());
            String metrics = Http.get(server.url() + "/metrics").body();
            assertTrue(metrics.contains("lightllm_prefix_cache_hit_tokens_total "), metrics);
            assertTrue(metrics.contains("lightllm_prefix_cache_hit_ratio"), metrics);
        }
    }
}
