package io.lightllm.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import io.lightllm.engine.SamplingParams;
import io.lightllm.server.LocalModel;
import io.lightllm.testing.SharedData;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * LangChain4j's chat APIs in process over stories260K on the JVM: the answer is the engine's own
 * greedy answer to the same chat prompt (LocalModel.chat), whole and streamed, with usage and finish.
 */
class LightLlmChatModelTest {
    private static LocalModel model;

    @BeforeAll
    static void load() {
        model = LocalModel.load(SharedData.model("stories260K"), "jvm");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static ChatRequest request() {
        return ChatRequest.builder().messages(SystemMessage.from("You tell stories."), UserMessage.from("Once upon a time"))
                .temperature(0.0).maxOutputTokens(20).build();
    }

    private static String expected() {
        return model.chat(List.of(LocalModel.system("You tell stories."), LocalModel.user("Once upon a time")), SamplingParams.greedy(20));
    }

    @Test
    void chatModelAnswersAsTheEngineDoes() {
        ChatResponse r = new LightLlmChatModel(model).chat(request());
        assertEquals(expected(), r.aiMessage().text());
        assertEquals(20, r.tokenUsage().outputTokenCount());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        // the convenience form: one user message, the engine's defaults (temperature 1), the given answer length
        ChatResponse sampled = new LightLlmChatModel(model, 8).chat(UserMessage.from("Once upon a time"));
        int n = sampled.tokenUsage().outputTokenCount();
        org.junit.jupiter.api.Assertions.assertTrue(n >= 1 && n <= 8, n + " tokens, the default limit 8");
    }

    @Test
    void streamingChatModelStreamsTheSameAnswer() throws Exception {
        StringBuilder parts = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        new LightLlmStreamingChatModel(model).chat(request(), new StreamingChatResponseHandler() {
            public void onPartialResponse(String text) {
                parts.append(text);
            }

            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse r = done.get(60, TimeUnit.SECONDS);
        assertEquals(expected(), parts.toString());
        assertEquals(expected(), r.aiMessage().text());
    }

    @Test
    void toolsAreRefusedWithAClearMessage() {
        ChatRequest withTools = request().toBuilder().toolSpecifications(dev.langchain4j.agent.tool.ToolSpecification.builder()
                .name("weather").description("the weather").build()).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new LightLlmChatModel(model).chat(withTools));
        assertEquals("tool calling is not implemented", e.getMessage());
    }
}
