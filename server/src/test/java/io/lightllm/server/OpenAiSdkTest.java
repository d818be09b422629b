package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.core.JsonValue;
import com.openai.models.chat.completions.ChatCompletionTokenLogprob;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.completions.CompletionUsage;
import io.lightllm.engine.SamplingParams;
import io.lightllm.engine.TokenLogprobs;
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

    /**
     * logit_bias through the SDK: -100 on the greedy answer's first token bans it (the answer then never holds it), +100 on
     * another token makes it every token; each answer's text equals the engine's own run with the same biases.
     */
    @Test
    void logitBiasBansAndForcesTokens() {
        int[] prompt = server.files().tokenizer().encode(PROMPT, true);
        int first = engineGreedy(prompt, 8).tokens()[0];
        int forced = 300;
        for (Map<Integer, Float> bias : List.of(Map.of(first, -100f), Map.of(forced, 100f))) {
            CompletionCreateParams.LogitBias.Builder sdkBias = CompletionCreateParams.LogitBias.builder();
            bias.forEach((id, b) -> sdkBias.putAdditionalProperty(Integer.toString(id), JsonValue.from(b)));
            Completion c = client.completions().create(completion(8).toBuilder().logitBias(sdkBias.build()).build());
            io.lightllm.engine.Completion expected = server.engine().generate(prompt,
                    SamplingParams.builder().maxNewTokens(8).logitBias(bias).build()).getFirst();
            assertEquals(expected.text(), c.choices().getFirst().text(), "bias " + bias);
            for (int t : expected.tokens()) {
                if (bias.containsKey(first)) {
                    assertTrue(t != first, "a banned token was generated: " + java.util.Arrays.toString(expected.tokens()));
                } else {
                    assertEquals(forced, t, "a token of +100 bias wins every step: " + java.util.Arrays.toString(expected.tokens()));
                }
            }
        }
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

    /** The engine's own greedy run with logprobs: the values the server must pass through unchanged (floats, printed and parsed exactly). */
    private static io.lightllm.engine.Completion engineGreedyLogprobs(int[] prompt, int maxNew, int top) {
        return server.engine().generate(prompt, SamplingParams.builder().maxNewTokens(maxNew).logprobs(top).build()).getFirst();
    }

    /** The text of generated ids, as the engine's detokenizer streams it (the reference the token texts must add up to). */
    private static String textOf(int[] ids) {
        return server.files().tokenizer().decode(ids, true);
    }

    @Test
    void completionLogprobsInTheLegacyFormatWholeAndStreamed() {
        int top = 3;
        CompletionCreateParams p = completion(12).toBuilder().logprobs(top).build();
        io.lightllm.engine.Completion expected = engineGreedyLogprobs(server.files().tokenizer().encode(PROMPT, true), 12, top);
        CompletionChoice choice = client.completions().create(p).choices().getFirst();
        CompletionChoice.Logprobs lp = choice.logprobs().orElseThrow();
        List<String> tokens = lp.tokens().orElseThrow();
        List<Double> tokenLogprobs = lp.tokenLogprobs().orElseThrow();
        List<CompletionChoice.Logprobs.TopLogprob> tops = lp.topLogprobs().orElseThrow();
        List<Long> offsets = lp.textOffset().orElseThrow();
        assertEquals(expected.tokens().length, tokens.size());
        // the token texts join to the text, leading spaces included (decoded alone, "▁there" would lose its space)
        assertEquals(choice.text(), String.join("", tokens));
        assertEquals(textOf(expected.tokens()), String.join("", tokens));
        long offset = 0;
        for (int i = 0; i < tokens.size(); i++) {
            TokenLogprobs e = expected.logprobs().get(i);
            assertEquals(e.logprob(), tokenLogprobs.get(i), LightLlmApiTest.LOGPROB_TOLERANCE, "token " + i);
            assertEquals(offset, offsets.get(i), "text_offset " + i);
            offset += tokens.get(i).length();
            Map<String, JsonValue> alternatives = tops.get(i)._additionalProperties();
            // the top 3 and the chosen one (greedy: the chosen one is the top 1), fewer if two ids share a text
            assertTrue(alternatives.size() <= top, alternatives.toString());
            assertEquals(e.logprob(), ((Number) alternatives.get(tokens.get(i)).asNumber().orElseThrow()).floatValue(), LightLlmApiTest.LOGPROB_TOLERANCE, "chosen in top_logprobs");
        }
        List<String> streamedTokens = new ArrayList<>();
        List<Double> streamedLogprobs = new ArrayList<>();
        List<Long> streamedOffsets = new ArrayList<>();
        try (StreamResponse<Completion> s = client.completions().createStreaming(p)) {
            s.stream().forEach(c -> c.choices().forEach(ch -> ch.logprobs().ifPresent(l -> {
                streamedTokens.addAll(l.tokens().orElseThrow());
                streamedLogprobs.addAll(l.tokenLogprobs().orElseThrow());
                streamedOffsets.addAll(l.textOffset().orElseThrow());
            })));
        }
        assertEquals(tokens, streamedTokens);
        assertLogprobsEqual(tokenLogprobs, streamedLogprobs);
        assertEquals(offsets, streamedOffsets);
    }

    @Test
    void chatLogprobsWithTopAlternativesWholeAndStreamed() {
        int top = 4;
        ChatCompletionCreateParams p = ChatCompletionCreateParams.builder().model(StoriesServer.NAME)
                .addUserMessage("Tell me a story.").maxCompletionTokens(10).temperature(0.0).logprobs(true).topLogprobs(top).build();
        int[] prompt = server.files().tokenizer().encode(
                new ChatTemplate(null, "<s>", "</s>").render(List.of(Map.of("role", "user", "content", "Tell me a story."))), false);
        io.lightllm.engine.Completion expected = engineGreedyLogprobs(prompt, 10, top);
        com.openai.models.chat.completions.ChatCompletion.Choice choice = client.chat().completions().create(p).choices().getFirst();
        List<ChatCompletionTokenLogprob> content = choice.logprobs().orElseThrow().content().orElseThrow();
        assertEquals(expected.tokens().length, content.size());
        assertEquals(choice.message().content().orElseThrow(), String.join("", content.stream().map(ChatCompletionTokenLogprob::token).toList()),
                "the token texts join to the answer");
        for (int i = 0; i < content.size(); i++) {
            TokenLogprobs e = expected.logprobs().get(i);
            ChatCompletionTokenLogprob t = content.get(i);
            assertEquals(e.logprob(), t.logprob(), LightLlmApiTest.LOGPROB_TOLERANCE, "token " + i);
            byte[] utf8 = t.token().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            assertEquals(utf8.length, t.bytes().orElseThrow().size());
            assertEquals(top, t.topLogprobs().size());
            for (int k = 0; k < top; k++) {
                assertEquals(e.topLogprobs()[k], t.topLogprobs().get(k).logprob(), LightLlmApiTest.LOGPROB_TOLERANCE);
            }
            assertEquals(t.token(), t.topLogprobs().getFirst().token(), "greedy: the chosen token is the most likely");
        }
        List<ChatCompletionTokenLogprob> streamed = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(p)) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.logprobs().ifPresent(l -> streamed.addAll(l.content().orElseThrow()))));
        }
        assertLogprobsEqual(content.stream().map(ChatCompletionTokenLogprob::logprob).toList(),
                streamed.stream().map(ChatCompletionTokenLogprob::logprob).toList());
        assertEquals(content.stream().map(ChatCompletionTokenLogprob::token).toList(), streamed.stream().map(ChatCompletionTokenLogprob::token).toList());
    }

    /**
     * A request and its streamed twin give the same logprobs within {@link LightLlmApiTest#LOGPROB_TOLERANCE}: two runs of
     * one request may differ by a few ulps on the JVM (its reductions' order can change between JIT tiers), which made
     * an exact comparison here fail about one run in five.
     */
    private static void assertLogprobsEqual(List<Double> whole, List<Double> streamed) {
        assertEquals(whole.size(), streamed.size(), "tokens with logprobs");
        for (int i = 0; i < whole.size(); i++) {
            assertEquals(whole.get(i), streamed.get(i), LightLlmApiTest.LOGPROB_TOLERANCE, "token " + i);
        }
    }

    @Test
    void withoutLogprobsTheFieldIsNull() {
        assertTrue(client.completions().create(completion(4)).choices().getFirst().logprobs().isEmpty());
    }
}
