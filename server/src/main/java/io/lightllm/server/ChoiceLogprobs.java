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
        String before = tokenizer.decode(new int[] {previous}, false);
        String both = tokenizer.decode(new int[] {previous, token}, false);
        return both.startsWith(before) ? both.substring(before.length()) : tokenizer.decode(new int[] {token}, false);
    }

    private static List<Integer> bytes(String text) {
        List<Integer> out = new ArrayList<>();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            out.add(b & 0xff);
        }
        return out;
    }
}
