package io.lightllm.engine;

import io.lightllm.models.tokenizer.Tokenizer;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Structured output (the approach of outlines): a sequence's generated text must stay a prefix
 * of a match of a regular expression (a JSON schema is turned into one by the server), so before
 * each token is sampled every vocabulary token whose text would leave that language is masked on
 * the device (with the min_tokens masks, in {@link LogitPenalties}), and end-of-sequence is allowed
 * only once the text is a whole match. java.util.regex tells "a prefix of a match" by
 * {@link Matcher#hitEnd}: a failed match that ran into the end of the input could go on matching.
 *
 * <p>Cost: each step tries every token of the vocabulary against the text so far, so O(vocabulary
 * × text) character steps per constrained sequence and token (docs/api.md reports it).
 */
final class RegexConstraint {
    /** The text each token adds, decoded after a plain token so that leading spaces are kept. */
    static final class Vocabulary {
        final String[] texts;

        Vocabulary(Tokenizer tokenizer, int vocabSize, Set<Integer> special) {
            texts = new String[vocabSize];
            int anchor = tokenizer.encode("a", false).length > 0 ? tokenizer.encode("a", false)[0] : 0;
            String before = tokenizer.decode(new int[] {anchor}, false);
            for (int id = 0; id < vocabSize; id++) {
                String both = special.contains(id) ? "" : tokenizer.decode(new int[] {anchor, id}, true);
                String text = both.startsWith(before) ? both.substring(before.length()) : "";
                // a byte of a multi-byte character decodes to U+FFFD alone: such tokens are not offered
                texts[id] = text.indexOf('\uFFFD') >= 0 ? "" : text;
            }
        }
    }

    private final Pattern pattern;
    private final Vocabulary vocabulary;
    private final StringBuilder text = new StringBuilder();

    RegexConstraint(Pattern pattern, Vocabulary vocabulary) {
        this.pattern = pattern;
        this.vocabulary = vocabulary;
    }

    /** Whether appending {@code token}'s text keeps the output a prefix of a match (empty texts never do). */
    boolean allows(int token) {
        String t = token < vocabulary.texts.length ? vocabulary.texts[token] : "";
        if (t.isEmpty()) {
            return false;
        }
        Matcher m = pattern.matcher(text + t);
        return m.matches() || m.hitEnd();
    }

    /** Whether the output so far is a whole match (end-of-sequence may come now). */
    boolean complete() {
        return pattern.matcher(text).matches();
    }

    /** Whether some token extends the output (a whole match that none extends is done). */
    boolean canExtend() {
        for (int t = 0; t < vocabulary.texts.length; t++) {
            if (allows(t)) {
                return true;
            }
        }
        return false;
    }

    void advance(int token) {
        if (token < vocabulary.texts.length) {
            text.append(vocabulary.texts[token]);
        }
    }

    String text() {
        return text.toString();
    }
}
