package io.lightllm.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.TokenUsage;
import io.lightllm.engine.TokenEvent;
import io.lightllm.server.LocalModel;
import java.util.concurrent.Flow;

/**
 * LangChain4j's {@link StreamingChatModel} over a model in this JVM: each piece of text reaches
 * {@link StreamingChatResponseHandler#onPartialResponse} as the engine's detokenizer releases it
 * (on the engine's thread), then the whole answer {@code onCompleteResponse}.
 */
public final class LightLlmStreamingChatModel implements StreamingChatModel {
    private final LocalModel model;
    private final int defaultMaxTokens;

    public LightLlmStreamingChatModel(LocalModel model, int defaultMaxTokens) {
        this.model = model;
        this.defaultMaxTokens = defaultMaxTokens;
    }

    public LightLlmStreamingChatModel(LocalModel model) {
        this(model, 512);
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        int[] prompt;
        io.lightllm.engine.SamplingParams params;
        try {
            params = LightLlmRequests.params(request, defaultMaxTokens);
            prompt = model.chatTokens(LightLlmRequests.messages(request.messages()));
        } catch (RuntimeException e) {
            handler.onError(e);
            return;
        }
        model.engine().submit(prompt, params).subscribe(new Flow.Subscriber<>() {
            private final StringBuilder text = new StringBuilder();
            private int tokens;

            public void onSubscribe(Flow.Subscription s) {
                s.request(Long.MAX_VALUE);
            }

            public void onNext(TokenEvent e) {
                tokens += e.token() >= 0 ? 1 : 0;
                if (e.text() != null && !e.text().isEmpty()) {
                    text.append(e.text());
                    handler.onPartialResponse(e.text());
                }
                if (e.last()) {
                    if (e.finish() == io.lightllm.engine.FinishReason.ERROR) {
                        handler.onError(new IllegalStateException("generation failed: " + e.error()));
                        return;
                    }
                    handler.onCompleteResponse(ChatResponse.builder().aiMessage(AiMessage.from(text.toString())).modelName(model.name())
                            .tokenUsage(new TokenUsage(prompt.length, tokens)).finishReason(LightLlmRequests.finishReason(e.finish())).build());
                }
            }

            public void onError(Throwable t) {
                handler.onError(t);
            }

            public void onComplete() {
            }
        });
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }
}
