package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** vLLM's and OpenAI's smaller endpoints: /tokenize and /detokenize against the model's tokenizer, /version, /v1/models/{id}. */
class SurfaceTest {
    private static ModelServer server;

    @BeforeAll
    static void start() {
        server = StoriesServer.start(ServerConfig.local(0));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    @Test
    void tokenizeAndDetokenizeRoundTrip() {
        String text = "Once upon a time, there was a little girl.";
        JsonNode t = Http.post(server.url() + "/tokenize", "{\"prompt\": " + JsonOutTestSupport.quote(text) + "}").json();
        int[] expected = server.files().tokenizer().encode(text, true);
        assertEquals(expected.length, t.get("count").asInt());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], t.get("tokens").get(i).asInt());
        }
        JsonNode d = Http.post(server.url() + "/detokenize", "{\"tokens\": " + t.get("tokens") + "}").json();
        assertTrue(d.get("prompt").asText().endsWith(text), d.toString());
        assertEquals(400, Http.post(server.url() + "/detokenize", "{\"tokens\": [999999]}").status());
        JsonNode chat = Http.post(server.url() + "/tokenize", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}").json();
        assertTrue(chat.get("count").asInt() > 1, chat.toString());
    }

    @Test
    void versionAndOneModel() {
        assertTrue(Http.get(server.url() + "/version").json().has("version"));
        assertEquals(StoriesServer.NAME, Http.get(server.url() + "/v1/models/" + StoriesServer.NAME).json().get("id").asText());
        Http.Answer missing = Http.get(server.url() + "/v1/models/other");
        assertEquals(404, missing.status());
        assertEquals("model_not_found", missing.json().get("error").get("code").asText());
    }
}
