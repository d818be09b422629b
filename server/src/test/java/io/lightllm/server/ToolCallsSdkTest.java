package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Tool calls through the unchanged OpenAI Java SDK over stories260K (which knows nothing of
 * tools: with tool_choice required, the call's shape comes from the constraint): the answer is a
 * tool_calls message whose arguments parse and fit the function's schema, whole and streamed.
 */
class ToolCallsSdkTest {
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

    private static ChatCompletionCreateParams request() {
        FunctionParameters params = FunctionParameters.builder()
                .putAdditionalProperty("type", JsonValue.from("object"))
                .putAdditionalProperty("properties", JsonValue.from(Map.of(
                        "city", Map.of("type", "string", "maxLength", 12),
                        "unit", Map.of("enum", List.of("c", "f")))))
                .putAdditionalProperty("required", JsonValue.from(List.of("city", "unit"))).build();
        return ChatCompletionCreateParams.builder().model(StoriesServer.NAME).addUserMessage("What is the weather in Paris?")
                .addFunctionTool(FunctionDefinition.builder().name("get_weather").parameters(params).build())
                .toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).temperature(1.0).seed(4L).maxCompletionTokens(80).build();
    }

    private static void assertFitsTheSchema(String arguments) throws Exception {
        JsonNode args = JsonBody.MAPPER.readTree(arguments);
        assertTrue(args.get("city").isTextual() && args.get("city").asText().length() <= 12, arguments);
        assertTrue(Set.of("c", "f").contains(args.get("unit").asText()), arguments);
    }

    @Test
    void requiredToolChoiceGivesACallWholeAndStreamed() throws Exception {
        ChatCompletion c = client.chat().completions().create(request());
        ChatCompletion.Choice choice = c.choices().getFirst();
        assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, choice.finishReason());
        ChatCompletionMessageFunctionToolCall call = choice.message().toolCalls().orElseThrow().getFirst().asFunction();
        assertEquals("get_weather", call.function().name());
        assertFitsTheSchema(call.function().arguments());

        StringBuilder name = new StringBuilder(), arguments = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(request())) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().toolCalls().ifPresent(calls -> calls.forEach(tc ->
                    tc.function().ifPresent(f -> {
                        f.name().ifPresent(name::append);
                        f.arguments().ifPresent(arguments::append);
                    })))));
        }
        assertEquals("get_weather", name.toString());
        assertEquals(call.function().arguments(), arguments.toString(), "the same seed gives the same call");
    }

    @Test
    void autoAndNoneAnswerWithText() {
        ChatCompletion none = client.chat().completions().create(request().toBuilder()
                .toolChoice(ChatCompletionToolChoiceOption.Auto.NONE).maxCompletionTokens(8).build());
        assertTrue(none.choices().getFirst().message().toolCalls().isEmpty() || none.choices().getFirst().message().toolCalls().get().isEmpty());
        ChatCompletion auto = client.chat().completions().create(request().toBuilder()
                .toolChoice(ChatCompletionToolChoiceOption.Auto.AUTO).maxCompletionTokens(8).build());
        assertEquals(1, auto.choices().size()); // a story model writes a story, not a call
    }
}
