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

    /** completions' echo: the prompt's text, then the answer, whole and streamed; with logprobs a 400. */
    @Test
    void echoPutsThePromptBeforeTheAnswer() {
        String body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 6, \"temperature\": 0, \"echo\": true";
        String plain = Http.post(server.url() + "/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 6, \"temperature\": 0}")
                .json().get("choices").get(0).get("text").asText();
        assertEquals("Once upon a time" + plain, Http.post(server.url() + "/v1/completions", body + "}").json().get("choices").get(0).get("text").asText());
        StringBuilder streamed = new StringBuilder();
        for (String e : Http.events(Http.post(server.url() + "/v1/completions", body + ", \"stream\": true}"))) {
            if (!e.equals("[DONE]")) {
                streamed.append(Http.json(e).get("choices").get(0).get("text").asText());
            }
        }
        assertEquals("Once upon a time" + plain, streamed.toString());
        assertEquals(400, Http.post(server.url() + "/v1/completions", body + ", \"logprobs\": 1}").status());
    }

    /**
     * Several prompts in one completions request: n choices per prompt, prompt i's at i * n onwards, each
     * the text the prompt gets alone (greedy), whole and streamed; usage counts each prompt once.
     */
    @Test
    void severalPromptsGetTheirChoicesInOrder() {
        String[] prompts = {"Once upon a time", "The little dog"};
        String[] alone = new String[2];
        int promptTokens = 0;
        for (int i = 0; i < 2; i++) {
            JsonNode one = Http.post(server.url() + "/v1/completions", "{\"prompt\": " + JsonOutTestSupport.quote(prompts[i])
                    + ", \"max_tokens\": 8, \"temperature\": 0}").json();
            alone[i] = one.get("choices").get(0).get("text").asText();
            promptTokens += one.get("usage").get("prompt_tokens").asInt();
        }
        String body = "{\"prompt\": [" + JsonOutTestSupport.quote(prompts[0]) + ", " + JsonOutTestSupport.quote(prompts[1])
                + "], \"max_tokens\": 8, \"temperature\": 0, \"n\": 2";
        JsonNode both = Http.post(server.url() + "/v1/completions", body + "}").json();
        assertEquals(4, both.get("choices").size(), both.toString());
        for (int c = 0; c < 4; c++) {
            assertEquals(c, both.get("choices").get(c).get("index").asInt());
            assertEquals(alone[c / 2], both.get("choices").get(c).get("text").asText(), "choice " + c);
        }
        assertEquals(promptTokens, both.get("usage").get("prompt_tokens").asInt());
        assertEquals(32, both.get("usage").get("completion_tokens").asInt());
        String[] streamed = {"", "", "", ""};
        for (String e : Http.events(Http.post(server.url() + "/v1/completions", body + ", \"stream\": true}"))) {
            if (!e.equals("[DONE]")) {
                for (JsonNode choice : Http.json(e).get("choices")) {
                    streamed[choice.get("index").asInt()] += choice.get("text").asText();
                }
            }
        }
        for (int c = 0; c < 4; c++) {
            assertEquals(alone[c / 2], streamed[c], "streamed choice " + c);
        }
        int[] ids = server.files().tokenizer().encode(prompts[1], true);
        JsonNode byIds = Http.post(server.url() + "/v1/completions", "{\"prompt\": [" + java.util.Arrays.toString(ids) + ", "
                + java.util.Arrays.toString(ids) + "], \"max_tokens\": 8, \"temperature\": 0}").json();
        assertEquals(alone[1], byIds.get("choices").get(1).get("text").asText(), byIds.toString());
        StringBuilder many = new StringBuilder("{\"prompt\": [");
        for (int i = 0; i <= CompletionsHandler.MAX_PROMPTS; i++) {
            many.append(i == 0 ? "" : ", ").append("\"a\"");
        }
        assertEquals(400, Http.post(server.url() + "/v1/completions", many + "]}").status());
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
