package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.RouterConfig;
import io.lightllm.models.Models;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@code serve --tp 2} (two JVM devices) answers what {@code --tp 1} answers: the same greedy
 * text and token log-probabilities, for two choices of one prompt. The second choice shares the first one's prompt slots
 * through a table row the engine writes itself, which the second rank must see as well.
 */
class TensorParallelServeTest {
    /** As TensorParallelTest's logits tolerance: tp changes only the order of two sums per layer. */
    private static final double TOLERANCE = 1e-4;

    @Test
    void tp2ServesWhatTp1Serves() {
        EngineConfig engine = new EngineConfig(new RouterConfig(2048, 2048, 8, 1024, 6), DType.F32, Set.of(), 1);
        String body = """
                {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "n": 2, "ignore_eos": true, "logprobs": 1}""";
        try (ModelServer one = ModelServer.start(new ServeOptions(SharedData.model(StoriesServer.NAME), "jvm", 1, StoriesServer.NAME, engine,
                ServerConfig.local(0), Models.Quantization.NONE, true, 0));
             ModelServer two = ModelServer.start(new ServeOptions(SharedData.model(StoriesServer.NAME), "jvm", 2, StoriesServer.NAME, engine,
                ServerConfig.local(0), Models.Quantization.NONE, true, 0))) {
            Http.Answer expected = Http.post(one.url() + "/v1/completions", body);
            Http.Answer actual = Http.post(two.url() + "/v1/completions", body);
            assertEquals(200, expected.status(), expected.body());
            assertEquals(200, actual.status(), actual.body());
            JsonNode e = expected.json().get("choices"), a = actual.json().get("choices");
            String text = e.get(0).get("text").asText();
            assertEquals(80, expected.json().get("usage").get("completion_tokens").asInt(), expected.body());
            assertEquals(text, e.get(1).get("text").asText(), "greedy choices of one prompt are equal");
            assertEquals(text, a.get(0).get("text").asText(), "tp 2, first choice");
            assertEquals(text, a.get(1).get("text").asText(), "tp 2, second choice (a shared prompt row)");
            // the text of this small model survives a rank that reads wrong slots; the log-probabilities do not
            JsonNode reference = e.get(0).get("logprobs").get("token_logprobs");
            for (JsonNode choice : a) {
                JsonNode got = choice.get("logprobs").get("token_logprobs");
                assertEquals(reference.size(), got.size());
                for (int i = 0; i < got.size(); i++) {
                    assertEquals(reference.get(i).asDouble(), got.get(i).asDouble(), TOLERANCE, "choice " + choice.get("index") + " token " + i);
                }
            }
        }
    }
}
