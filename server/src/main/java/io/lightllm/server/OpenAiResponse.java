package io.lightllm.server;

import io.javalin.http.Context;
import io.lightllm.engine.FinishReason;
import io.lightllm.engine.TokenEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Runs an OpenAI request in the engine and answers it, as one JSON object or as SSE chunks ended
 * by {@code data: [DONE]}. The completions and chat shapes differ only in the object names and in
 * how a choice carries its text ({@code text}, or {@code message} / {@code delta}).
 */
final class OpenAiResponse {
    private final ServerState server;
    private final boolean chat;
    private final String id;
    private final long created = System.currentTimeMillis() / 1000;

    OpenAiResponse(ServerState server, boolean chat) {
        this.server = server;
        this.chat = chat;
        this.id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
    }

    void answer(Context ctx, int[] prompt, OpenAiParams p) throws InterruptedException {
        answer(ctx, List.of(prompt), p);
    }

    /** Several prompts (completions only): each has n choices, prompt i's at indices i * n .. i * n + n - 1. */
    @SuppressWarnings("unchecked")
    void answer(Context ctx, List<int[]> prompts, OpenAiParams p) throws InterruptedException {
        this.prompts = prompts;
        promptScores = new List[prompts.size()];
        choiceCount = prompts.size() * p.params().n();
        lastPromptTokens = prompts.stream().mapToInt(t -> t[t.length - 1]).toArray();
        echoed = prompts.stream().map(t -> p.echo() ? server.model().tokenizer().decode(t, true) : "").toArray(String[]::new);
        String endpoint = chat ? "chat_completions" : "completions";
        try (Generation g = Generation.start(server, endpoint, prompts, p.params())) {
            if (p.stream()) {
                stream(new SseStream(ctx), g, p);
            } else {
                ctx.json(whole(g, p));
            }
        } catch (SseStream.ClientGone gone) {
            // the Generation was closed above, which aborted the request
        }
    }

    private Map<String, Object> whole(Generation g, OpenAiParams p) throws InterruptedException {
        int n = choiceCount;
        ChoiceLogprobs[] logprobs = logprobs(p);
        List<StringBuilder> texts = new ArrayList<>();
        FinishReason[] finish = new FinishReason[n];
        for (int i = 0; i < n; i++) {
            texts.add(new StringBuilder());
        }
        int completionTokens = 0;
        for (TokenEvent e = g.next(); e != null; e = g.next()) {
            completionTokens += e.token() >= 0 ? 1 : 0;
            keepPromptScores(e, p);
            texts.get(e.sequence()).append(e.text());
            addLogprobs(logprobs, e);
            if (e.finish() == FinishReason.ERROR) {
                throw new ApiException(500, "server_error", null, null, "generation failed: " + e.error(), Map.of());
            }
            if (e.last()) {
                finish[e.sequence()] = e.finish();
            }
        }
        List<Object> choices = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String text = texts.get(i).toString();
            int prompt = i / p.params().n();
            Object lp = logprobs == null ? null
                    : p.echo() ? logprobs[i].takeJsonAfterPrompt(prompts.get(prompt), promptScores[prompt], p.params().logprobs())
                    : logprobs[i].takeJson();
            List<Object> calls = chat && p.tools() != null ? p.tools().parse(text) : null;
            choices.add(calls != null
                    ? JsonOut.obj("index", i, "message", JsonOut.obj("role", "assistant", "content", null, "tool_calls", calls), "logprobs", lp,
                            "finish_reason", "tool_calls")
                    : chat
                    ? JsonOut.obj("index", i, "message", JsonOut.obj("role", "assistant", "content", text), "logprobs", lp,
                            "finish_reason", finish[i].apiName())
                    : withPromptLogprobs(JsonOut.obj("index", i, "text", echoed[prompt] + text, "logprobs", lp, "finish_reason", finish[i].apiName()),
                            p, prompt));
        }
        Map<String, Object> answer = JsonOut.obj("id", id, "object", chat ? "chat.completion" : "text_completion", "created", created,
                "model", server.model().name(), "choices", choices, "usage", JsonOut.usage(g.promptTokens(), completionTokens, g.cachedPromptTokens()));
        return chat ? withPromptLogprobs(answer, p, 0) : answer; // vLLM puts a chat's at the top, a completion's in each choice
    }

    /** The prompt's scores from the event that carries them (sequence 0's first of each prompt). */
    private void keepPromptScores(TokenEvent e, OpenAiParams p) {
        if (e.promptLogprobs() != null) {
            promptScores[e.sequence() / p.params().n()] = e.promptLogprobs();
        }
    }

    /** {@code json} with vLLM's prompt_logprobs of prompt {@code prompt} when the request asked for them. */
    private Map<String, Object> withPromptLogprobs(Map<String, Object> json, OpenAiParams p, int prompt) {
        if (p.promptLogprobs() >= 0) {
            json.put("prompt_logprobs", ChoiceLogprobs.vllmPromptLogprobs(server.model().tokenizer(), prompts.get(prompt), promptScores[prompt],
                    p.promptLogprobs()));
        }
        return json;
    }

    private void stream(SseStream sse, Generation g, OpenAiParams p) throws InterruptedException {
        if (chat) {
            for (int i = 0; i < choiceCount; i++) {
                sse.send(chunk(List.of(JsonOut.obj("index", i, "delta", JsonOut.obj("role", "assistant", "content", ""),
                        "logprobs", null, "finish_reason", null)), p, null));
            }
        }
        // with the prompt's logprobs (n = 1) the echo waits for the first event, which brings them
        boolean scored = p.params().promptLogprobs() >= 0;
        for (int i = 0; i < choiceCount && !scored; i++) {
            String echo = echoed[i / p.params().n()];
            if (!echo.isEmpty()) {
                sse.send(chunk(List.of(JsonOut.obj("index", i, "text", echo, "logprobs", null, "finish_reason", null)), p, null));
            }
        }
        ChoiceLogprobs[] logprobs = logprobs(p);
        int completionTokens = 0;
        // with tools an answer may be a call: it is sent whole at its end, as a tool_calls delta or as content
        StringBuilder[] held = chat && p.tools() != null ? new StringBuilder[choiceCount] : null;
        for (TokenEvent e = g.next(); e != null; e = g.next()) {
            completionTokens += e.token() >= 0 ? 1 : 0;
            if (e.promptLogprobs() != null) {
                keepPromptScores(e, p);
                int prompt = e.sequence() / p.params().n();
                Object lp = p.echo() && logprobs != null
                        ? logprobs[e.sequence()].takeJsonAfterPrompt(prompts.get(prompt), promptScores[prompt], p.params().logprobs()) : null;
                Map<String, Object> first = chat ? JsonOut.obj("index", e.sequence(), "delta", Map.of(), "logprobs", null, "finish_reason", null)
                        : withPromptLogprobs(JsonOut.obj("index", e.sequence(), "text", echoed[prompt], "logprobs", lp, "finish_reason", null), p, prompt);
                Map<String, Object> c = chunk(List.of(first), p, null);
                sse.send(chat ? withPromptLogprobs(c, p, prompt) : c);
            }
            if (held != null && e.finish() != FinishReason.ERROR) {
                int s = e.sequence();
                held[s] = held[s] == null ? new StringBuilder() : held[s];
                held[s].append(e.text());
                if (e.last()) {
                    List<Object> calls = p.tools().parse(held[s].toString());
                    List<Object> indexed = new ArrayList<>();
                    for (int k = 0; calls != null && k < calls.size(); k++) {
                        Map<String, Object> c = new java.util.LinkedHashMap<>(JsonOut.obj("index", k));
                        c.putAll((Map<String, Object>) calls.get(k));
                        indexed.add(c);
                    }
                    Map<String, Object> delta = calls != null ? JsonOut.obj("tool_calls", indexed) : JsonOut.obj("content", held[s].toString());
                    sse.send(chunk(List.of(JsonOut.obj("index", s, "delta", delta, "logprobs", null, "finish_reason",
                            calls != null ? "tool_calls" : e.finish().apiName())), p, null));
                }
                continue;
            }
            addLogprobs(logprobs, e);
            if (e.finish() == FinishReason.ERROR) {
                sse.send(JsonOut.error("generation failed: " + e.error(), "server_error", null, null));
                sse.sendRaw("[DONE]");
                return;
            }
            if (e.text().isEmpty() && !e.last()) {
                continue; // an incomplete character or a possible stop string: nothing to show yet (its logprobs wait too)
            }
            String finish = e.last() ? e.finish().apiName() : null;
            ChoiceLogprobs pending = logprobs == null ? null : logprobs[e.sequence()];
            Object lp = pending == null || pending.isEmpty() ? null : pending.takeJson();
            Map<String, Object> choice = chat
                    ? JsonOut.obj("index", e.sequence(), "delta", e.text().isEmpty() ? Map.of() : JsonOut.obj("content", e.text()),
                            "logprobs", lp, "finish_reason", finish)
                    : JsonOut.obj("index", e.sequence(), "text", e.text(), "logprobs", lp, "finish_reason", finish);
            sse.send(chunk(List.of(choice), p, null));
        }
        if (p.includeUsage()) {
            sse.send(chunk(List.of(), p, JsonOut.usage(g.promptTokens(), completionTokens, g.cachedPromptTokens())));
        }
        sse.sendRaw("[DONE]");
    }

    /** The request's prompts, and per prompt its scores when asked for (from sequence 0's first event). */
    private List<int[]> prompts;
    private List<io.lightllm.engine.TokenLogprobs>[] promptScores;

    /** Choices in the answer: prompts times n. */
    private int choiceCount;

    /** completions' echo, per prompt: the prompt's text before each of its choices' texts (else ""). */
    private String[] echoed;

    /** Per prompt, the token before the first generated one: token texts are decoded after it, so a leading space is kept. */
    private int[] lastPromptTokens;

    /** One gatherer per choice when the request asked for logprobs, else null. */
    private ChoiceLogprobs[] logprobs(OpenAiParams p) {
        if (p.params().logprobs() < 0) {
            return null;
        }
        ChoiceLogprobs[] out = new ChoiceLogprobs[choiceCount];
        for (int i = 0; i < out.length; i++) {
            out[i] = new ChoiceLogprobs(server.model().tokenizer(), chat, lastPromptTokens[i / p.params().n()]);
        }
        return out;
    }

    private static void addLogprobs(ChoiceLogprobs[] logprobs, TokenEvent e) {
        if (logprobs != null && e.logprobs() != null) {
            logprobs[e.sequence()].add(e.token(), e.logprobs());
        }
    }

    private Map<String, Object> chunk(List<Object> choices, OpenAiParams p, Object usage) {
        Map<String, Object> c = JsonOut.obj("id", id, "object", chat ? "chat.completion.chunk" : "text_completion", "created", created,
                "model", server.model().name(), "choices", choices);
        if (p.includeUsage()) {
            c.put("usage", usage); // null on every chunk but the last, as OpenAI sends it
        }
        return c;
    }
}
