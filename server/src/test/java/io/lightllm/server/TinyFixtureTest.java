package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
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
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The tiny random-weight Llama fixture (bf16 weights, GQA, byte-level BPE with bos id 0) through
 * the OpenAI SDK: a second tokenizer and weight format behind the same server. Its text is noise,
 * so the reference is the engine's own greedy output for the same tokens; ignore_eos keeps the
 * length fixed whatever the random weights pick.
 */
class TinyFixtureTest {
    @Test
    void completionsAndChatMatchTheEngine() {
        EngineConfig engine = new EngineConfig(new RouterConfig(1024, 1024, 8, 1024, 6), DType.F32, Set.of(), 1);
        try (ModelServer server = ModelServer.start(new ServeOptions(SharedData.tinyFixture("llama"), "jvm", null, engine,
                ServerConfig.local(0), Models.Quantization.NONE, true))) {
            OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("unused").maxRetries(0).build();
            try {
                Completion c = client.completions().create(CompletionCreateParams.builder().model("llama").prompt("hello world")
                        .maxTokens(12).temperature(0.0).putAdditionalBodyProperty("ignore_eos", com.openai.core.JsonValue.from(true)).build());
                int[] prompt = server.files().tokenizer().encode("hello world", true);
                SamplingParams greedy = SamplingParams.builder().maxNewTokens(12).ignoreEos(true).build();
                assertEquals(server.engine().generate(prompt, greedy).getFirst().text(), c.choices().getFirst().text());
                assertEquals(12, c.usage().orElseThrow().completionTokens());

                ChatCompletionCreateParams chat = ChatCompletionCreateParams.builder().model("llama").addUserMessage("hi").maxCompletionTokens(8)
                        .temperature(0.0).putAdditionalBodyProperty("ignore_eos", com.openai.core.JsonValue.from(true)).build();
                int[] chatPrompt = server.files().tokenizer().encode(
                        new ChatTemplate(null, "<s>", "</s>").render(List.of(Map.of("role", "user", "content", "hi"))), false);
                String expected = server.engine().generate(chatPrompt, greedy.toBuilder().maxNewTokens(8).build()).getFirst().text();
                StringBuilder streamed = new StringBuilder();
                try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(chat)) {
                    s.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
                }
                assertEquals(expected, streamed.toString());
                assertEquals(expected, client.chat().completions().create(chat).choices().getFirst().message().content().orElseThrow());
            } finally {
                client.close();
            }
        }
    }
}
