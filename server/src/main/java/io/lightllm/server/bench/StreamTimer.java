package io.lightllm.server.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.server.JsonBody;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads one SSE response line by line and stamps each event that carries a token: OpenAI chunks
 * whose choice has non-empty text (as vLLM's benchmark times chunks; the server holds back a token
 * with no text yet, such as part of a character, and sends it with the next), and LightLLM events
 * whose token id is not null. The first stamp gives TTFT, the gaps between stamps the ITLs. The events' text is
 * kept: the output a run generated, so that two runs (prefix cache on and off) can be checked to agree.
 */
final class StreamTimer {
    private final long start;
    private final boolean openAi;
    private final List<Long> stamps = new ArrayList<>();
    private final StringBuilder text = new StringBuilder();
    private long end;
    private boolean done;
    private String error;
    private int lightLlmTokens;
    private int usagePrompt = -1;
    private int usageCompletion = -1;

    StreamTimer(long startNanos, boolean openAi) {
        this.start = startNanos;
        this.openAi = openAi;
    }

    void line(String line) {
        long now = System.nanoTime();
        if (!line.startsWith("data:")) {
            return; // blank separators, comments and event names carry nothing to time
        }
        String data = line.substring("data:".length()).strip();
        if (openAi && data.equals("[DONE]")) {
            finish(now);
            return;
        }
        JsonNode event;
        try {
            event = JsonBody.MAPPER.readTree(data);
        } catch (JsonProcessingException e) {
            fail(now, "an SSE event is not JSON: " + data);
            return;
        }
        if (event.hasNonNull("error")) {
            fail(now, "the server reported an error: " + event.get("error"));
        } else if (openAi) {
            openAiChunk(event, now);
        } else {
            lightLlmEvent(event, now);
        }
    }

    private void openAiChunk(JsonNode chunk, long now) {
        JsonNode choice = chunk.path("choices").path(0);
        if (!choice.path("text").asText("").isEmpty()) {
            stamps.add(now);
            text.append(choice.path("text").asText());
        }
        JsonNode usage = chunk.path("usage");
        if (usage.isObject()) {
            usagePrompt = usage.path("prompt_tokens").asInt(-1);
            usageCompletion = usage.path("completion_tokens").asInt(-1);
        }
    }

    private void lightLlmEvent(JsonNode event, long now) {
        if (event.path("token").hasNonNull("id")) {
            stamps.add(now);
            lightLlmTokens++;
            text.append(event.path("token").path("text").asText(""));
        }
        if (event.path("finished").asBoolean(false)) {
            finish(now);
        }
    }

    private void finish(long now) {
        end = now;
        done = true;
        if (openAi && usageCompletion < 0) {
            error = "the stream ended without a usage chunk";
        } else if (stamps.isEmpty()) {
            error = "the stream ended without a token";
        }
    }

    private void fail(long now, String why) {
        end = now;
        done = true;
        error = why;
    }

    boolean done() {
        return done;
    }

    /** Why the request failed, or null; a stream cut before its end is a failure too. */
    String error() {
        return done ? error : "the stream ended before its last event";
    }

    int outputTokens() {
        return openAi ? usageCompletion : lightLlmTokens;
    }

    /** The generated text, as the events carried it. */
    String text() {
        return text.toString();
    }

    int usagePromptTokens() {
        return usagePrompt;
    }

    double ttftS() {
        return (stamps.getFirst() - start) / 1e9;
    }

    double latencyS() {
        return (end - start) / 1e9;
    }

    double[] itlS() {
        double[] gaps = new double[stamps.size() - 1];
        for (int i = 1; i < stamps.size(); i++) {
            gaps[i - 1] = (stamps.get(i) - stamps.get(i - 1)) / 1e9;
        }
        return gaps;
    }
}
