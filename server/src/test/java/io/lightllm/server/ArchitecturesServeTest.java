package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.RouterConfig;
import io.lightllm.engine.SamplingParams;
import io.lightllm.models.Models;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Each architecture beyond the Llama family served through the OpenAI SDK on the JVM (the shared fixtures and
 * the project's own, {@code scripts/fixtures/make_tiny.py}): a
 * completion of a golden prompt is the text of transformers' greedy tokens (golden.json), and a
 * streamed chat answer is the engine's own greedy output for the rendered chat prompt (the
 * fixtures ship no chat template, so the default one renders it).
 */
class ArchitecturesServeTest {
    @ParameterizedTest
    @CsvSource({"bloom, shared", "starcoder, shared", "stablelm, shared", "mixtral, shared", "qwen3, made", "qwen, made", "chatglm2, made",
            "internlm, made"})
    void servesCompletionsAndChat(String arch, String where) {
        Path fixture = where.equals("made") ? SharedData.madeFixture(arch) : SharedData.tinyFixture(arch);
        // the first golden case: its prompt and transformers' 24 greedy tokens
        com.fasterxml.jackson.databind.JsonNode golden = io.lightllm.models.config.JsonFields.read(fixture.resolve("golden.json")).path("cases").get(0);
        int[] greedyIds = new int[golden.path("greedy_ids").size()];
        for (int i = 0; i < greedyIds.length; i++) {
            greedyIds[i] = golden.path("greedy_ids").get(i).asInt();
        }
        EngineConfig engine = new EngineConfig(new RouterConfig(1024, 1024, 8, 512, 6), DType.F32, Set.of(), 1);
        try (ModelServer server = ModelServer.start(new ServeOptions(fixture, "jvm", arch, engine, ServerConfig.local(0),
                Models.Quantization.NONE, true))) {
            OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("unused").maxRetries(0).build();
            try {
                int steps = greedyIds.length;
                Completion c = client.completions().create(CompletionCreateParams.builder().model(arch).prompt(golden.path("prompt").asText())
                        .maxTokens(steps).temperature(0.0).putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build());
                assertEquals(server.files().tokenizer().decode(greedyIds, true), c.choices().getFirst().text(), arch + " completion");

                ChatCompletionCreateParams chat = ChatCompletionCreateParams.builder().model(arch).addUserMessage("hi").maxCompletionTokens(8)
                        .temperature(0.0).putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build();
                String rendered = new ChatTemplate(null, "<s>", "</s>").render(List.of(Map.of("role", "user", "content", "hi")));
                SamplingParams greedy = SamplingParams.builder().maxNewTokens(8).ignoreEos(true).build();
                String expected = server.engine().generate(server.files().tokenizer().encode(rendered, false), greedy).getFirst().text();
                StringBuilder streamed = new StringBuilder();
                try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(chat)) {
                    s.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
                }
                assertEquals(expected, streamed.toString(), arch + " chat");
            } finally {
                client.close();
            }
        }
    }
}
