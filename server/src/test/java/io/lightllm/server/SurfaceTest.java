package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
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
        Http.Answer none = Http.post(server.url() + "/tokenize", "{}");
        assertEquals(400, none.status());
        assertEquals("prompt", none.json().get("error").get("param").asText(), none.json().toString());
    }

    /** completions' echo: the prompt's text, then the answer, whole and streamed. */
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
    }

    /**
     * vLLM's prompt_logprobs: null for the first prompt token, then each token with its logprob and rank and the
     * top alternatives, where rank 1 at position i is the token a greedy request on the first i tokens picks.
     * OpenAI's echo with logprobs: the prompt's tokens first (the first without a logprob), with the same values,
     * texts joining to the choice's text, offsets counting from its start; streamed, the same lists.
     */
    @Test
    void promptLogprobsAndEchoWithLogprobsScoreThePrompt() {
        String text = "Once upon a time, there was";
        int[] ids = server.files().tokenizer().encode(text, true);
        JsonNode answer = Http.post(server.url() + "/v1/completions", "{\"prompt\": " + JsonOutTestSupport.quote(text)
                + ", \"max_tokens\": 3, \"temperature\": 0, \"prompt_logprobs\": 2}").json();
        JsonNode scores = answer.get("choices").get(0).get("prompt_logprobs");
        assertEquals(ids.length, scores.size(), answer.toString());
        assertTrue(scores.get(0).isNull());
        for (int i = 1; i < ids.length; i++) {
            JsonNode entry = scores.get(i);
            JsonNode own = entry.get(Integer.toString(ids[i]));
            assertTrue(own.get("logprob").asDouble() <= 0 && own.get("rank").asInt() >= 1, entry.toString());
            assertTrue(entry.size() <= 3, "the prompt token and 2 alternatives at most: " + entry);
            String best = entry.properties().stream().filter(f -> f.getValue().get("rank").asInt() == 1).findFirst().orElseThrow().getKey();
            int greedy = server.engine().generate(java.util.Arrays.copyOf(ids, i), io.lightllm.engine.SamplingParams.greedy(1)).getFirst().tokens()[0];
            assertEquals(Integer.toString(greedy), best, "rank 1 is what greedy decoding picks after " + i + " tokens");
        }
        String body = "{\"prompt\": " + JsonOutTestSupport.quote(text) + ", \"max_tokens\": 3, \"temperature\": 0, \"echo\": true, \"logprobs\": 1";
        JsonNode echoed = Http.post(server.url() + "/v1/completions", body + "}").json().get("choices").get(0);
        JsonNode lp = echoed.get("logprobs");
        assertEquals(ids.length + 3, lp.get("tokens").size(), lp.toString());
        assertTrue(lp.get("token_logprobs").get(0).isNull() && lp.get("top_logprobs").get(0).isNull());
        StringBuilder joined = new StringBuilder();
        for (int i = 0; i < lp.get("tokens").size(); i++) {
            assertEquals(joined.length(), lp.get("text_offset").get(i).asInt(), "offset of token " + i);
            joined.append(lp.get("tokens").get(i).asText());
        }
        assertEquals(echoed.get("text").asText(), joined.toString());
        for (int i = 1; i < ids.length; i++) {
            assertEquals(scores.get(i).get(Integer.toString(ids[i])).get("logprob").asDouble(), lp.get("token_logprobs").get(i).asDouble(), 1e-6,
                    "prompt token " + i);
        }
        List<String> streamedTokens = new java.util.ArrayList<>();
        for (String e : Http.events(Http.post(server.url() + "/v1/completions", body + ", \"stream\": true}"))) {
            JsonNode choice = e.equals("[DONE]") ? null : Http.json(e).get("choices").get(0);
            if (choice != null && choice.hasNonNull("logprobs")) {
                choice.get("logprobs").get("tokens").forEach(t -> streamedTokens.add(t.asText()));
            }
        }
        List<String> wholeTokens = new java.util.ArrayList<>();
        lp.get("tokens").forEach(t -> wholeTokens.add(t.asText()));
        assertEquals(wholeTokens, streamedTokens);
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
