package io.lightllm.server.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.ToIntFunction;

/**
 * Builds prompt texts of a wanted token length. Random token ids cannot be sent through text
 * APIs, so a prompt is a seeded sequence of common English words, and its length is measured by
 * the server's own tokenizer (a one-token request that reports prompt_tokens): a bounded search
 * over the word count finds the longest prefix whose token count does not exceed the target. The
 * result can fall short of the target by part of a word; the report gives the measured counts.
 */
final class PromptBuilder {
    /** A prompt and its length in the server's tokens (the bos token included when the server adds one). */
    public record Prompt(String text, int tokens) { }

    private static final String[] WORDS = ("the a and to of was in he she it they little day one time big said with his her "
            + "for on that had so very happy there saw play tree dog cat bird sun sky friend mom dad house ball toy park girl boy "
            + "went wanted found looked ran jumped walked smiled liked loved red blue green small old new good nice fun water "
            + "flower garden box book car boat hat cake apple bed door window road hill river fish bear rabbit duck").split(" ");
    /** Probe requests per prompt at most: a binary search over at most inputLen + 1 words needs about log2 of that. */
    private static final int MAX_PROBES = 24;

    /** What the token counter returns for a text that the server refuses as longer than the context. */
    static final int TOO_LONG = -1;

    private final ToIntFunction<String> countTokens;

    /** {@code countTokens}: the server's token count for a text, or {@link #TOO_LONG} (see {@link BenchClient#countPromptTokens}). */
    PromptBuilder(ToIntFunction<String> countTokens) {
        this.countTokens = countTokens;
    }

    Prompt build(int targetTokens, Random rng) {
        // every word adds at least one token, so targetTokens + 1 words are always too many
        List<String> words = new ArrayList<>();
        for (int i = 0; i <= targetTokens; i++) {
            words.add(WORDS[rng.nextInt(WORDS.length)]);
        }
        int fits = 0;
        int fitsTokens = 0;
        int tooMany = targetTokens + 1;
        int next = Math.max(1, targetTokens / 3); // about a third: few tokenizers split a common word into more than three tokens
        for (int probe = 0; probe < MAX_PROBES && tooMany - fits > 1; probe++) {
            int n = Math.clamp(next, fits + 1, tooMany - 1);
            int tokens = countTokens.applyAsInt(text(words, n));
            if (tokens == TOO_LONG) {
                tooMany = n;
                next = (fits + tooMany) / 2;
                continue;
            }
            if (tokens <= targetTokens) {
                fits = n;
                fitsTokens = tokens;
                if (tokens == targetTokens) {
                    break;
                }
            } else {
                tooMany = n;
            }
            // next guess: extrapolate tokens per word from this probe, then stay inside the open interval
            double perWord = Math.max(1e-3, tokens / (double) n);
            next = (int) Math.round(n + (targetTokens - tokens) / perWord);
            if (next <= fits || next >= tooMany) {
                next = (fits + tooMany) / 2;
            }
        }
        if (fits == 0) {
            throw new IllegalArgumentException("a prompt of " + targetTokens + " tokens is too short to hold one word with this server's tokenizer");
        }
        return new Prompt(text(words, fits), fitsTokens);
    }

    private static String text(List<String> words, int n) {
        return String.join(" ", words.subList(0, n));
    }
}
