package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.completions.CompletionUsage;
import io.lightllm.engine.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The official OpenAI Java SDK, unchanged, against the server: completions and chat, whole and streamed. */
class OpenAiSdkTest {
    private static final String PROMPT = "Once upon a time";
    private static ModelServer server;
    private static OpenAIClient client;

    @BeforeAll
    static void start() {
        server = StoriesServer.start(ServerConfig.local(0));
        client = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("unused").maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    private static io.lightllm.engine.Completion engineGreedy(int[] prompt, int maxNew) {
        return server.engine().generate(prompt, SamplingParams.greedy(maxNew)).getFirst();
    }

    private static CompletionCreateParams completion(int maxTokens) {
        return CompletionCreateParams.builder().model(StoriesServer.NAME).prompt(PROMPT).maxTokens(maxTokens).temperature(0.0).build();
    }

    @Test
    void modelsListsTheServedModel() {
        assertEquals(List.of(StoriesServer.NAME), client.models().list().data().stream().map(m -> m.id()).toList());
    }

    @Test
    void completionEqualsTheEnginesGreedyText() {
        Completion c = client.completions().create(completion(20));
        int[] prompt = server.files().tokenizer().encode(PROMPT, true);
        io.lightllm.engine.Completion expected = engineGreedy(prompt, 20);
        assertEquals(expected.text(), c.choices().getFirst().text());
        assertEquals(expected.finish().apiName(), c.choices().getFirst().finishReason().asString());
        CompletionUsage usage = c.usage().orElseThrow();
        assertEquals(prompt.length, usage.promptTokens());
        assertEquals(expected.tokens().length, usage.completionTokens());
        assertEquals(prompt.length + expected.tokens().length, usage.totalTokens());
    }

    @Test
    void streamedCompletionAddsUpToTheWholeOneWithUsageLast() {
        String whole = client.completions().create(completion(20)).choices().getFirst().text();
        CompletionCreateParams p = completion(20).toBuilder().streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        StringBuilder text = new StringBuilder();
        List<Completion> chunks = new ArrayList<>();
        try (StreamResponse<Completion> s = client.completions().createStreaming(p)) {
            s.stream().forEach(chunks::add);
        }
        for (Completion c : chunks) {
            c.choices().forEach(ch -> text.append(ch.text()));
        }
        assertEquals(whole, text.toString());
        Completion last = chunks.getLast();
        assertTrue(last.choices().isEmpty());
        assertEquals(20, last.usage().orElseThrow().completionTokens());
        assertEquals("length", chunks.get(chunks.size() - 2).choices().getFirst().finishReason().asString());
    }

    @Test
    void chatRendersTheFallbackTemplateAndStreamsTheSameText() {
        ChatCompletionCreateParams p = ChatCompletionCreateParams.builder().model(StoriesServer.NAME)
                .addUserMessage("Tell me a story.").maxCompletionTokens(16).temperature(0.0).build();
        ChatCompletion c = client.chat().completions().create(p);
        int[] prompt = server.files().tokenizer().encode(
                new ChatTemplate(null, "<s>", "</s>").render(List.of(Map.of("role", "user", "content", "Tell me a story."))), false);
        io.lightllm.engine.Completion expected = engineGreedy(prompt, 16);
        assertEquals(expected.text(), c.choices().getFirst().message().content().orElseThrow());
        assertEquals(prompt.length, c.usage().orElseThrow().promptTokens());

        StringBuilder streamed = new StringBuilder();
        List<String> finishes = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(p)) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> {
                ch.delta().content().ifPresent(streamed::append);
                ch.finishReason().ifPresent(f -> finishes.add(f.asString()));
            }));
        }
        assertEquals(expected.text(), streamed.toString());
        assertEquals(List.of(expected.finish().apiName()), finishes);
    }

    @Test
    void nSeededSamplesAreReproducible() {
        CompletionCreateParams p = CompletionCreateParams.builder().model(StoriesServer.NAME).prompt(PROMPT).maxTokens(12)
                .temperature(1.0).n(3).seed(42).build();
        List<String> first = client.completions().create(p).choices().stream().map(ch -> ch.text()).toList();
        List<String> second = client.completions().create(p).choices().stream().map(ch -> ch.text()).toList();
        assertEquals(3, first.size());
        assertEquals(first, second);
        assertFalse(first.getFirst().isEmpty());
    }

    @Test
    void logprobsAreRefusedRatherThanFaked() {
        BadRequestException e = assertThrows(BadRequestException.class,
                () -> client.completions().create(completion(4).toBuilder().logprobs(1).build()));
        assertEquals(400, e.statusCode());
        assertTrue(e.getMessage().contains("logprobs asks for token log-probabilities"), e.getMessage());
    }
}
