package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.RouterConfig;
import io.lightllm.models.Models;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Structured output through the APIs with the tiny random-weight llama, sampled at temperature 1:
 * the model alone would write noise, so every valid answer is the mask's doing. 100 JSON-schema
 * requests must give 100 answers that parse and validate; json_object, guided_choice, guided_regex
 * and LightLLM's regular_constraint likewise.
 */
class StructuredOutputTest {
    private static ModelServer server;

    @BeforeAll
    static void start() {
        EngineConfig engine = new EngineConfig(new RouterConfig(8192, 4096, 64, 1024, 2), DType.F32, Set.of(), 2);
        server = ModelServer.start(new ServeOptions(SharedData.tinyFixture("llama"), "jvm", "tiny", engine, ServerConfig.local(0),
                Models.Quantization.NONE, true));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static final String SCHEMA = """
            {"type": "object", "properties": {
              "name": {"type": "string", "maxLength": 8},
              "age": {"type": "integer", "minimum": 0},
              "pet": {"enum": ["cat", "dog", null]},
              "score": {"type": "number"},
              "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 2},
              "ok": {"type": "boolean"}},
             "required": ["name", "age", "pet"]}""";

    @Test
    void oneHundredSchemaAnswersParseAndValidate() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(16);
        List<CompletableFuture<Http.Answer>> answers = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < 100; i++) {
            String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Describe a person.\"}], \"temperature\": 1, \"seed\": " + i
                    + ", \"max_tokens\": 200, \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"person\", \"schema\": "
                    + SCHEMA + "}}}";
            answers.add(CompletableFuture.supplyAsync(() -> Http.post(server.url() + "/v1/chat/completions", body), pool));
        }
        int tokens = 0;
        for (CompletableFuture<Http.Answer> f : answers) {
            Http.Answer a = f.get();
            assertEquals(200, a.status(), a.body());
            String content = a.json().get("choices").get(0).get("message").get("content").asText();
            assertEquals("stop", a.json().get("choices").get(0).get("finish_reason").asText(), content);
            tokens += a.json().get("usage").get("completion_tokens").asInt();
            JsonNode v = JsonBody.MAPPER.readTree(content); // parses
            assertTrue(v.get("name").isTextual() && v.get("name").asText().length() <= 8, content);
            assertTrue(v.get("age").canConvertToLong() && v.get("age").asLong() >= 0, content);
            assertTrue(v.get("pet").isNull() || Set.of("cat", "dog").contains(v.get("pet").asText()), content);
            assertTrue(v.get("score").isNumber() && v.get("ok").isBoolean(), content);
            assertTrue(v.get("tags").isArray() && v.get("tags").size() <= 2, content);
            v.get("tags").forEach(t -> assertTrue(t.isTextual() && t.asText().length() <= 4, content));
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        // the same load without the mask: what the mask costs per token
        int perRequest = tokens / 100;
        long free = System.nanoTime();
        List<CompletableFuture<Http.Answer>> plain = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Describe a person.\"}], \"temperature\": 1, \"seed\": " + i
                    + ", \"max_tokens\": " + perRequest + ", \"ignore_eos\": true}";
            plain.add(CompletableFuture.supplyAsync(() -> Http.post(server.url() + "/v1/chat/completions", body), pool));
        }
        for (CompletableFuture<Http.Answer> f : plain) {
            assertEquals(200, f.get().status());
        }
        double freeSeconds = (System.nanoTime() - free) / 1e9;
        pool.shutdown();
        System.out.printf("structured output: 100 schema answers, %d tokens in %.2f s (%.0f tokens/s); unconstrained, %d tokens in %.2f s "
                + "(%.0f tokens/s); 512-token vocabulary, JVM%n", tokens, seconds, tokens / seconds, 100 * perRequest, freeSeconds,
                100 * perRequest / freeSeconds);
    }

    @Test
    void jsonObjectChoiceAndRegex() throws Exception {
        JsonNode obj = Http.post(server.url() + "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
                + "\"temperature\": 1, \"seed\": 3, \"max_tokens\": 300, \"response_format\": {\"type\": \"json_object\"}}").json();
        String content = obj.get("choices").get(0).get("message").get("content").asText();
        if (obj.get("choices").get(0).get("finish_reason").asText().equals("stop")) {
            assertTrue(JsonBody.MAPPER.readTree(content).isObject(), content);
        }
        JsonNode choice = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"Pick:\", \"temperature\": 1, \"seed\": 1, "
                + "\"max_tokens\": 20, \"guided_choice\": [\"red\", \"green\", \"blue sky\"]}").json();
        assertTrue(Set.of("red", "green", "blue sky").contains(choice.get("choices").get(0).get("text").asText()), choice.toString());
        JsonNode regex = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"Date:\", \"temperature\": 1, \"seed\": 2, "
                + "\"max_tokens\": 20, \"guided_regex\": \"20[0-9]{2}-[01][0-9]-[0-3][0-9]\"}").json();
        assertTrue(regex.get("choices").get(0).get("text").asText().matches("20[0-9]{2}-[01][0-9]-[0-3][0-9]"), regex.toString());
        JsonNode lightllm = Http.post(server.url() + "/generate", "{\"inputs\": \"Code:\", \"parameters\": {\"do_sample\": true, "
                + "\"temperature\": 1, \"max_new_tokens\": 20, \"regular_constraint\": \"[A-Z]{3}-[0-9]{3}\"}}").json();
        assertTrue(lightllm.get("generated_text").get(0).asText().matches("[A-Z]{3}-[0-9]{3}"), lightllm.toString());
        Http.Answer two = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"x\", \"guided_regex\": \"a\", \"guided_choice\": [\"b\"]}");
        assertEquals(400, two.status(), two.body());
    }
}
