package io.lightllm.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.TokenUsage;
import io.lightllm.engine.Completion;
import io.lightllm.engine.SamplingParams;
import io.lightllm.server.LocalModel;
import java.util.List;

/**
 * LangChain4j's {@link ChatModel} over a model in this JVM: no server, no HTTP. The messages go
 * through the model's chat template; sampling follows the request's parameters, and where it sets
 * none the engine's defaults apply (temperature 1, as in OpenAI's API).
 *
 * <pre>{@code
 * try (LocalModel model = LocalModel.load(Path.of("models/Qwen2.5-0.5B-Instruct"), "jvm")) {
 *     ChatModel chat = new LightLlmChatModel(model);
 *     String answer = chat.chat("Tell me a story.");
 * }
 * }</pre>
 */
public final class LightLlmChatModel implements ChatModel {
    private final LocalModel model;
    private final int defaultMaxTokens;

    /** {@code defaultMaxTokens}: the answer's limit when a request sets none. */
    public LightLlmChatModel(LocalModel model, int defaultMaxTokens) {
        this.model = model;
        this.defaultMaxTokens = defaultMaxTokens;
    }

    public LightLlmChatModel(LocalModel model) {
        this(model, 512);
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        List<LocalModel.Message> messages = LightLlmRequests.messages(request.messages());
        SamplingParams params = LightLlmRequests.params(request, defaultMaxTokens);
        int[] prompt = model.chatTokens(messages);
        Completion c = model.engine().generate(prompt, params).getFirst();
        if (c.finish() == io.lightllm.engine.FinishReason.ERROR) {
            throw new IllegalStateException("generation failed: " + c.error());
        }
        return ChatResponse.builder().aiMessage(AiMessage.from(c.text())).modelName(model.name())
                .tokenUsage(new TokenUsage(prompt.length, c.tokens().length)).finishReason(LightLlmRequests.finishReason(c.finish())).build();
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }
}
