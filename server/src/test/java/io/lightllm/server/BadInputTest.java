package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpRequest;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Malformed and hostile requests: each gets a 4xx with OpenAI's JSON error body, and the server goes on serving. */
class BadInputTest {
    private static ModelServer server;

    /** A request, the status it must get and the field its error must name (null: the body as a whole). */
    record Case(String method, String path, String body, int status, String param) { }

    private static Case post(String path, String body, String param) {
        return new Case("POST", path, body, 400, param);
    }

    @BeforeAll
    static void start() {
        server = StoriesServer.start(ServerConfig.local(0));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    /** OpenAI's fields that change nothing about the output are accepted, not refused. */
    @org.junit.jupiter.api.Test
    void fieldsThatChangeNothingAreAccepted() {
        Http.Answer a = Http.post(server.url() + "/v1/completions",
                "{\"prompt\": \"Hi\", \"max_tokens\": 2, \"user\": \"u1\", \"metadata\": {\"k\": \"v\"}, \"store\": false}");
        org.junit.jupiter.api.Assertions.assertEquals(200, a.status(), a.body());
    }

    static List<Case> cases() {
        String longPrompt = "once upon a time ".repeat(400);
        List<Case> c = new ArrayList<>(List.of(
                post("/generate", "{\"inputs\": ", null),
                // fields the server does not implement are named, not ignored; text after the JSON is refused
                post("/generate", "{\"inputs\": \"Hi\"} trailing", null),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_token\": 5}}", "parameters.max_new_token"),
                post("/generate", "{\"inputs\": \"Hi\", \"regular_constraint\": \"[a-z]+\"}", "regular_constraint"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"guided_json\": {\"$ref\": \"#/defs/a\"}}", "guided_json"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"guided_regex\": \"(unclosed\"}", "guided_regex"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"prompt_logprobs\": 21}", "prompt_logprobs"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"prompt_logprobs\": 1, \"n\": 2, \"stream\": true}", "prompt_logprobs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"chat_template_kwargs\": 3}",
                        "chat_template_kwargs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                        + "\"chat_template_kwargs\": {\"messages\": []}}", "chat_template_kwargs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stream\": true, "
                        + "\"stream_options\": {\"include_usage\": true, \"continuous_usage_stats\": true}}", "stream_options.continuous_usage_stats"),
                post("/generate", "", null),
                post("/generate", "[\"Once\"]", null),
                post("/generate", "{\"inputs\": 42}", "inputs"),
                post("/generate", "{\"parameters\": {}}", "inputs"),
                post("/generate", "{\"inputs\": \"\"}", "inputs"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": \"greedy\"}", "parameters"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"temperature\": -1}}", "parameters.temperature"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"top_p\": 0}}", "parameters.top_p"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"top_k\": 0}}", "parameters.top_k"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"return_details\": 1}}", "parameters.return_details"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_tokens\": -5}}", "parameters.max_new_tokens"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_tokens\": 99999999999}}", "parameters.max_new_tokens"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_tokens\": 510}}", "parameters.max_new_tokens"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"do_sample\": \"yes\"}}", "parameters.do_sample"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"n\": 1000000}}", "parameters.n"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"stop_sequences\": [1, 2]}}", "parameters.stop_sequences"),
                post("/generate", "{\"inputs\": \"Hi\", \"parameters\": {\"repetition_penalty\": 0}}", "parameters.repetition_penalty"),
                post("/generate", "{\"inputs\": " + JsonOutTestSupport.quote(longPrompt) + "}", "inputs"),
                post("/generate", "{\"inputs\": \"Hi\", \"multimodal_params\": {\"images\": [{\"type\": \"base64\", \"data\": \"AA==\"}]}}", "multimodal_params"),
                post("/generate", "{\"inputs\": \"Hi\", \"multimodal_params\": [1]}", "multimodal_params"),
                post("/generate_stream", "{\"inputs\": \"Hi\", \"parameters\": {\"n\": 2}}", "parameters.n"),
                post("/generate_stream", "{\"inputs\": \"Hi\", \"parameters\": {\"seed\": \"abc\"}}", "parameters.seed"),
                post("/v1/completions", "{\"model\": \"gpt-4\", \"prompt\": \"Hi\"}", "model"),
                post("/v1/completions", "{\"model\": \"stories260K\"}", "prompt"),
                post("/v1/completions", "{\"prompt\": \"\"}", "prompt"),
                post("/v1/completions", "{\"prompt\": []}", "prompt"),
                post("/v1/completions", "{\"prompt\": [\"a\", 5]}", "prompt"),
                post("/v1/completions", "{\"prompt\": [\"a\", \"\"]}", "prompt[1]"),
                post("/v1/completions", "{\"prompt\": [[1, 2], [1.5]]}", "prompt"),
                post("/v1/completions", "{\"prompt\": [1, 2, 99999]}", null),
                post("/v1/completions", "{\"prompt\": [1.5]}", "prompt"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"temperature\": 3}", "temperature"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"temperature\": \"hot\"}", "temperature"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 0}", "max_tokens"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 100000}", "max_tokens"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"presence_penalty\": 5}", "presence_penalty"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"frequency_penalty\": -9}", "frequency_penalty"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"n\": 0}", "n"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"stop\": 7}", "stop"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"stop\": [\"\"]}", "stop"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logprobs\": 21}", "logprobs"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logprobs\": -1}", "logprobs"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logprobs\": true}", "logprobs"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"best_of\": 3}", "best_of"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logit_bias\": {\"one\": 100}}", "logit_bias"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logit_bias\": {\"-1\": 1}}", "logit_bias"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logit_bias\": {\"99999\": 1}}", "logit_bias"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logit_bias\": {\"1\": 101}}", "logit_bias.1"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logit_bias\": {\"1\": \"high\"}}", "logit_bias.1"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"logit_bias\": [1, 100]}", "logit_bias"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"stream\": \"yes\"}", "stream"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"stream_options\": {\"include_usage\": true}}", "stream_options"),
                post("/v1/completions", "{\"prompt\": \"Hi\", \"seed\": 1.5}", "seed"),
                post("/v1/chat/completions", "{\"messages\": []}", "messages"),
                post("/v1/chat/completions", "{\"messages\": \"hello\"}", "messages"),
                post("/v1/chat/completions", "{\"messages\": [\"hello\"]}", "messages[0]"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "messages[0].role"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\"}]}", "messages[0].content"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "messages[0].content"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": 3}", "logprobs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 3}", "top_logprobs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true, \"top_logprobs\": 21}",
                        "top_logprobs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true, \"top_logprobs\": -1}",
                        "top_logprobs"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_completion_tokens\": 600}",
                        "max_completion_tokens"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": \"function\"}]}", "tools[0]"),
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": " + JsonOutTestSupport.quote(longPrompt) + "}]}",
                        "messages"),
                new Case("GET", "/v1/nothing", null, 404, null),
                new Case("GET", "/generate", null, 404, null),
                new Case("DELETE", "/v1/models", null, 404, null)));
        return c;
    }

    @Test
    void everyBadRequestGetsA4xxJsonErrorAndTheServerKeepsServing() {
        List<String> failures = new ArrayList<>();
        List<Case> cases = cases();
        assertTrue(cases.size() >= 30);
        for (Case c : cases) {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + c.path()))
                    .method(c.method(), c.body() == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(c.body()))
                    .header("Content-Type", "application/json");
            Http.Answer a = Http.send(b);
            JsonNode error = a.json() == null ? null : a.json().get("error");
            String what = c.method() + " " + c.path() + " " + (c.body() == null ? "" : c.body().substring(0, Math.min(100, c.body().length())));
            if (a.status() != c.status() || error == null || !error.hasNonNull("message") || !error.has("type")) {
                failures.add(what + " -> " + a.status() + " " + a.body());
            } else if (c.param() != null && !c.param().equals(error.path("param").asText(null))) {
                failures.add(what + " -> param " + error.get("param") + ", expected " + c.param() + ": " + error.get("message"));
            } else if (c.param() != null && !error.get("message").asText().contains(c.param().replaceAll("\\[\\d+].*", ""))) {
                failures.add(what + " -> the message does not name " + c.param() + ": " + error.get("message"));
            }
        }
        assertEquals(List.of(), failures);
        Http.Answer ok = Http.post(server.url() + "/generate", "{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 4}}");
        assertEquals(200, ok.status(), ok.body());
        assertFalse(ok.json().get("generated_text").get(0).asText().isEmpty());
        assertEquals(200, Http.get(server.url() + "/health").status());
    }
}
