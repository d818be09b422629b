package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.engine.Completion;
import io.lightllm.engine.SamplingParams;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** LightLLM's endpoints over java.net.http, against the engine's own answer for the same request. */
class LightLlmApiTest {
    private static ModelServer server;

    @BeforeAll
    static void start() {
        server = StoriesServer.start(ServerConfig.local(0));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    /**
     * Two runs of one request differed by a few ulps in their logits on the JVM backend while its vector kernels added
     * lanes with reduceLanes(ADD), whose order changes between JIT tiers (seen: 2e-6 in a logprob); since 2026-12-06
     * they add in one order (io.lightllm.kernels.jvm.LaneSums). 1e-5 stays the bound of these cross-run comparisons,
     * far below the gaps between tokens' logprobs.
     */
    static final double LOGPROB_TOLERANCE = 1e-5;

    /** What the engine gives for LightLLM's defaults (greedy, min_new_tokens 1), with each token's logprob: the reference for the HTTP answers. */
    private static Completion engineGreedy(String prompt, int maxNew) {
        return server.engine().generate(prompt, SamplingParams.builder().maxNewTokens(maxNew).minNewTokens(1).logprobs(0).build()).getFirst();
    }

    @Test
    void returnDetailsListsEveryTokenWithItsLogprob() {
        Http.Answer a = Http.post(server.url() + "/generate",
                "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 8, \"return_details\": true}}");
        assertEquals(200, a.status(), a.body());
        Completion expected = engineGreedy("Once upon a time", 8);
        JsonNode tokens = a.json().get("tokens");
        assertEquals(expected.tokens().length, tokens.size());
        for (int i = 0; i < tokens.size(); i++) {
            assertEquals(expected.tokens()[i], tokens.get(i).get("id").asInt());
            assertEquals(expected.logprobs().get(i).logprob(), tokens.get(i).get("logprob").floatValue(), LOGPROB_TOLERANCE, "token " + i);
        }
        assertFalse(Http.post(server.url() + "/generate", "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 2}}")
                .json().has("tokens"), "no details unless asked");
    }

    @Test
    void generateGivesTheEnginesGreedyText() {
        Http.Answer a = Http.post(server.url() + "/generate", "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 24}}");
        assertEquals(200, a.status(), a.body());
        Completion expected = engineGreedy("Once upon a time", 24);
        assertEquals(expected.text(), a.json().get("generated_text").get(0).asText());
        assertFalse(expected.text().isBlank());
        assertEquals(expected.tokens().length, a.json().get("count_output_tokens").asInt());
        assertEquals(expected.finish().apiName(), a.json().get("finish_reason").asText());
        assertEquals(server.files().tokenizer().encode("Once upon a time", true).length, a.json().get("prompt_tokens").asInt());
    }

    /**
     * skip_special_tokens (LightLLM's and vLLM's field) is read on /generate and /v1/completions: both values give the
     * engine's text for this story (it generates no special token; EngineEndToEndTest checks one that does), and a value
     * that is not a boolean is a 400 naming the field.
     */
    @Test
    void skipSpecialTokensIsAcceptedOnBothApis() {
        String expected = engineGreedy("Once upon a time", 8).text();
        for (boolean skip : new boolean[] {true, false}) {
            Http.Answer a = Http.post(server.url() + "/generate", "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 8,"
                    + " \"skip_special_tokens\": " + skip + "}}");
            assertEquals(200, a.status(), a.body());
            assertEquals(expected, a.json().get("generated_text").get(0).asText());
            Http.Answer o = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0,"
                    + " \"skip_special_tokens\": " + skip + "}");
            assertEquals(200, o.status(), o.body());
            assertEquals(expected, o.json().path("choices").path(0).path("text").asText());
        }
        Http.Answer bad = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"Once\", \"skip_special_tokens\": \"no\"}");
        assertEquals(400, bad.status(), bad.body());
        assertTrue(bad.body().contains("skip_special_tokens"), bad.body());
    }

    @Test
    void streamSendsOneEventPerTokenThatAddUpToTheText() {
        Http.Answer a = Http.post(server.url() + "/generate_stream", "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 24}}");
        assertEquals(200, a.status(), a.body());
        assertTrue(a.response().headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> events = Http.events(a);
        Completion expected = engineGreedy("Once upon a time", 24);
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < events.size(); i++) {
            JsonNode e = Http.json(events.get(i));
            boolean last = i == events.size() - 1;
            assertEquals(last, e.get("finished").asBoolean());
            if (!last) {
                assertEquals(expected.logprobs().get(i).logprob(), e.get("token").get("logprob").floatValue(), LOGPROB_TOLERANCE, "token " + i + " logprob");
            }
            text.append(e.get("token").get("text").asText());
            if (last) {
                assertEquals(expected.text(), e.get("generated_text").asText());
                assertEquals(expected.finish().apiName(), e.get("finish_reason").asText());
            } else {
                assertEquals(expected.tokens()[i], e.get("token").get("id").asInt());
                assertTrue(e.get("generated_text").isNull());
            }
        }
        assertEquals(expected.text(), text.toString());
    }

    @Test
    void stopSequencesEndTheTextBeforeThem() {
        String full = engineGreedy("Once upon a time", 24).text();
        String stop = full.substring(full.length() / 2, full.length() / 2 + 3);
        Http.Answer a = Http.post(server.url() + "/generate",
                "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 24, \"stop_sequences\": " + JsonOutTestSupport.quote(stop) + "}}");
        assertEquals(200, a.status(), a.body());
        assertEquals(full.substring(0, full.indexOf(stop)), a.json().get("generated_text").get(0).asText());
        assertEquals("stop", a.json().get("finish_reason").asText());
    }

    @Test
    void healthChecksTokenLoadAndMetricsAnswer() {
        for (String path : List.of("/health", "/liveness", "/readiness")) {
            Http.Answer a = Http.get(server.url() + path);
            assertEquals(200, a.status(), path);
            assertEquals("ok", a.json().get("status").asText());
        }
        Http.post(server.url() + "/generate", "{\"inputs\": \"Lily\", \"parameters\": {\"max_new_tokens\": 4}}");
        Http.Answer load = Http.get(server.url() + "/token_load");
        assertEquals(4096, load.json().get("total_tokens").asInt());
        assertTrue(load.json().has("used_tokens") && load.json().has("running_requests") && load.json().has("waiting_requests"));
        Http.Answer metrics = Http.get(server.url() + "/metrics");
        assertEquals(200, metrics.status());
        assertTrue(metrics.response().headers().firstValue("Content-Type").orElse("").startsWith("text/plain"), "Prometheus text format");
        for (String name : List.of("lightllm_requests_total{endpoint=\"generate\",outcome=\"length\"}", "lightllm_time_to_first_token_seconds_bucket",
                "lightllm_time_per_output_token_seconds_bucket", "lightllm_e2e_request_latency_seconds_count", "lightllm_queue_length",
                "lightllm_running_batch_size", "lightllm_kv_used_tokens", "lightllm_kv_total_tokens 4096", "lightllm_prompt_tokens_total",
                "lightllm_generation_tokens_total", "lightllm_prefill_steps_total", "lightllm_decode_steps_total",
                "lightllm_step_seconds_total{phase=\"prefill\"}", "lightllm_step_seconds_total{phase=\"decode\"}")) {
            assertTrue(metrics.body().contains(name), name + " missing from\n" + metrics.body());
        }
    }
}
