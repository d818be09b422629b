package io.lightllm.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.output.FinishReason;
import io.lightllm.engine.SamplingParams;
import io.lightllm.server.LocalModel;
import java.util.ArrayList;
import java.util.List;

/** LangChain4j's requests in the engine's terms: messages for the chat template, parameters for sampling. */
final class LightLlmRequests {
    private LightLlmRequests() {
    }

    static List<LocalModel.Message> messages(List<ChatMessage> messages) {
        List<LocalModel.Message> out = new ArrayList<>();
        for (ChatMessage m : messages) {
            out.add(switch (m) {
                case SystemMessage s -> LocalModel.system(s.text());
                case UserMessage u when u.hasSingleText() -> LocalModel.user(u.singleText());
                case UserMessage u -> throw new IllegalArgumentException("only text user messages are supported, got " + u.contents());
                case AiMessage a when !a.hasToolExecutionRequests() -> LocalModel.assistant(a.text() == null ? "" : a.text());
                case ToolExecutionResultMessage t -> new LocalModel.Message("tool", t.text());
                default -> throw new IllegalArgumentException("unsupported message " + m.type() + " (tool calls are not implemented)");
            });
        }
        return out;
    }

    /**
     * Sampling as the request asks: its temperature, top_p, top_k, penalties, stop strings and
     * output limit, each left at the engine's default when absent. Tools and JSON output are refused.
     */
    static SamplingParams params(ChatRequest r, int defaultMaxTokens) {
        if (r.toolSpecifications() != null && !r.toolSpecifications().isEmpty()) {
            throw new IllegalArgumentException("tool calling is not implemented");
        }
        if (r.responseFormat() != null && r.responseFormat().type() != ResponseFormatType.TEXT) {
            throw new IllegalArgumentException("response format " + r.responseFormat().type() + " is not implemented");
        }
        SamplingParams.Builder b = SamplingParams.builder().maxNewTokens(r.maxOutputTokens() != null ? r.maxOutputTokens() : defaultMaxTokens);
        if (r.temperature() != null) {
            b.temperature(r.temperature().floatValue());
        }
        if (r.topP() != null) {
            b.topP(r.topP().floatValue());
        }
        if (r.topK() != null) {
            b.topK(r.topK());
        }
        if (r.frequencyPenalty() != null) {
            b.frequencyPenalty(r.frequencyPenalty().floatValue());
        }
        if (r.presencePenalty() != null) {
            b.presencePenalty(r.presencePenalty().floatValue());
        }
        if (r.stopSequences() != null && !r.stopSequences().isEmpty()) {
            b.stopStrings(r.stopSequences());
        }
        return b.build();
    }

    static FinishReason finishReason(io.lightllm.engine.FinishReason f) {
        return switch (f) {
            case STOP -> FinishReason.STOP;
            case LENGTH -> FinishReason.LENGTH;
            default -> FinishReason.OTHER;
        };
    }
}
