package io.lightllm.server;

import io.lightllm.engine.TokenLogprobs;
import io.lightllm.models.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * OpenAI's {@code logprobs} object of one choice, gathered token by token. A token's text is what
 * it adds to the text after the token before it (so "▁there" is " there", and the tokens' texts
 * join to the generated text, as /generate's details and vLLM give them; decoded alone, a
 * SentencePiece token would lose its leading space). A byte-fallback piece of a multi-byte
 * character gives U+FFFD, and {@code bytes} are then those of U+FFFD, not the raw byte.
 * <ul>
 * <li>chat: {@code {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], "refusal": null}};</li>
 * <li>completions (legacy): {@code {tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset}}, where
 * each top_logprobs map holds the N most likely tokens plus the chosen one (so up to N + 1, as
 * OpenAI documents), and text_offset counts characters from the start of the generated text.</li>
 * </ul>
 * For streaming, {@link #takeJson} hands out what was gathered since the last call; offsets go on.
 */
final class ChoiceLogprobs {
    private final Tokenizer tokenizer;
    private final boolean chat;
    private final List<Object> content = new ArrayList<>();
    private final List<String> tokens = new ArrayList<>();
    private final List<Float> tokenLogprobs = new ArrayList<>();
    private final List<Object> topLogprobs = new ArrayList<>();
    private final List<Integer> textOffsets = new ArrayList<>();
    private int offset;
    private int previous;

    /** @param previous the prompt's last token, which the first generated token follows */
    ChoiceLogprobs(Tokenizer tokenizer, boolean chat, int previous) {
        this.tokenizer = tokenizer;
        this.chat = chat;
        this.previous = previous;
    }

    void add(int token, TokenLogprobs lp) {
        String text = text(token);
        if (chat) {
            List<Object> top = new ArrayList<>();
            for (int k = 0; k < lp.topTokens().length; k++) {
                String t = text(lp.topTokens()[k]);
                top.add(JsonOut.obj("token", t, "logprob", lp.topLogprobs()[k], "bytes", bytes(t)));
            }
            content.add(JsonOut.obj("token", text, "logprob", lp.logprob(), "bytes", bytes(text), "top_logprobs", top));
        } else {
            tokens.add(text);
            tokenLogprobs.add(lp.logprob());
            Map<String, Object> top = new LinkedHashMap<>();
            for (int k = 0; k < lp.topTokens().length; k++) {
                top.putIfAbsent(text(lp.topTokens()[k]), lp.topLogprobs()[k]);
            }
            top.putIfAbsent(text, lp.logprob());
            topLogprobs.add(top);
            textOffsets.add(offset);
            offset += text.length();
        }
        previous = token;
    }

    boolean isEmpty() {
        return chat ? content.isEmpty() : tokens.isEmpty();
    }

    /**
     * completions with echo: the object with the prompt's tokens first (the first has no logprob and no
     * alternatives, as OpenAI gave it; each other's alternatives cut to {@code top}), then the generated
     * tokens since the last call. Prompt token texts leave special tokens out, as the echoed text does, so
     * the texts join to the choice's text and text_offset counts from its start.
     */
    Map<String, Object> takeJsonAfterPrompt(int[] prompt, List<TokenLogprobs> scores, int top) {
        List<String> promptTokens = new ArrayList<>();
        List<Float> promptLogprobs = new ArrayList<>();
        List<Object> promptTop = new ArrayList<>();
        List<Integer> promptOffsets = new ArrayList<>();
        int at = 0;
        for (int i = 0; i < prompt.length; i++) {
            String text = i == 0 ? tokenizer.decode(new int[] {prompt[0]}, true) : text(prompt[i - 1], prompt[i], true);
            promptTokens.add(text);
            promptOffsets.add(at);
            at += text.length();
            if (i == 0) {
                promptLogprobs.add(null);
                promptTop.add(null);
                continue;
            }
            TokenLogprobs lp = scores.get(i - 1);
            promptLogprobs.add(lp.logprob());
            Map<String, Object> alternatives = new LinkedHashMap<>();
            for (int k = 0; k < Math.min(top, lp.topTokens().length); k++) {
                alternatives.putIfAbsent(text(prompt[i - 1], lp.topTokens()[k], true), lp.topLogprobs()[k]);
            }
            alternatives.putIfAbsent(text, lp.logprob());
            promptTop.add(alternatives);
        }
        Map<String, Object> generated = takeJson();
        int shift = at;
        offset += at; // tokens added from now on (a stream) count from the choice's start too
        promptTokens.addAll(cast(generated.get("tokens")));
        promptLogprobs.addAll(cast(generated.get("token_logprobs")));
        promptTop.addAll(cast(generated.get("top_logprobs")));
        for (Integer offset : ChoiceLogprobs.<Integer>cast(generated.get("text_offset"))) {
            promptOffsets.add(offset + shift);
        }
        return JsonOut.obj("tokens", promptTokens, "token_logprobs", promptLogprobs, "top_logprobs", promptTop, "text_offset", promptOffsets);
    }

    @SuppressWarnings("unchecked")
    private static <T> List<T> cast(Object list) {
        return (List<T>) list;
    }

    /**
     * vLLM's {@code prompt_logprobs}: null for the first prompt token, then for each other a map from
     * token id to {@code {logprob, rank, decoded_token}} holding the prompt token and the {@code top} most likely.
     */
    static List<Object> vllmPromptLogprobs(Tokenizer tokenizer, int[] prompt, List<TokenLogprobs> scores, int top) {
        List<Object> out = new ArrayList<>();
        out.add(null);
        for (int i = 1; i < prompt.length; i++) {
            TokenLogprobs lp = scores.get(i - 1);
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put(Integer.toString(prompt[i]), JsonOut.obj("logprob", lp.logprob(), "rank", lp.rank(),
                    "decoded_token", tokenizer.decode(new int[] {prompt[i]}, false)));
            for (int k = 0; k < Math.min(top, lp.topTokens().length); k++) {
                int id = lp.topTokens()[k];
                entry.putIfAbsent(Integer.toString(id), JsonOut.obj("logprob", lp.topLogprobs()[k], "rank", k + 1,
                        "decoded_token", tokenizer.decode(new int[] {id}, false)));
            }
            out.add(entry);
        }
        return out;
    }

    /** The object for the tokens added since the last call (all of them for a whole answer). */
    Map<String, Object> takeJson() {
        Map<String, Object> json = chat
                ? JsonOut.obj("content", List.copyOf(content), "refusal", null)
                : JsonOut.obj("tokens", List.copyOf(tokens), "token_logprobs", List.copyOf(tokenLogprobs),
                        "top_logprobs", List.copyOf(topLogprobs), "text_offset", List.copyOf(textOffsets));
        content.clear();
        tokens.clear();
        tokenLogprobs.clear();
        topLogprobs.clear();
        textOffsets.clear();
        return json;
    }

    /** What {@code token} adds after {@link #previous}. */
    private String text(int token) {
        return text(previous, token, false);
    }

    /** What {@code token} adds after {@code before}. */
    private String text(int before, int token, boolean skipSpecial) {
        String first = tokenizer.decode(new int[] {before}, skipSpecial);
        String both = tokenizer.decode(new int[] {before, token}, skipSpecial);
        return both.startsWith(first) ? both.substring(first.length()) : tokenizer.decode(new int[] {token}, skipSpecial);
    }

    private static List<Integer> bytes(String text) {
        List<Integer> out = new ArrayList<>();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            out.add(b & 0xff);
        }
        return out;
    }
}
