package io.lightllm.models.tokenizer;

import java.util.Arrays;

/**
 * Turns a stream of generated token ids into text pieces, each complete: a UTF-8 character
 * spread over several byte-fallback tokens comes out once its last byte has arrived.
 *
 * <p>Each step decodes a short window of recent tokens twice, with and without the new one, and
 * returns the difference (the method of Hugging Face's text-generation-inference). Decoding a
 * window rather than single tokens keeps the SentencePiece space rule right: "▁upon" alone decodes
 * to "upon", but after "▁Once" to " upon". While the window's text ends in U+FFFD, a character is
 * still incomplete and nothing is returned.
 */
public final class IncrementalDetokenizer {
    /** Tokens of context kept before the unread ones, enough for any decoder's look-behind. */
    private static final int CONTEXT = 5;

    private final Tokenizer tokenizer;
    private final boolean skipSpecial;
    private int[] ids;
    private int size;
    /** Window start: tokens [prefix, read) were already returned and serve as context. */
    private int prefix;
    private int read;
    private final StringBuilder text = new StringBuilder();

    /** A detokenizer for text that starts at the first token fed. */
    public IncrementalDetokenizer(Tokenizer tokenizer, boolean skipSpecial) {
        this(tokenizer, new int[0], skipSpecial);
    }

    /**
     * A detokenizer for text that continues after {@code context} (the prompt), which is not
     * returned, except that a character the prompt leaves incomplete comes out whole with the
     * first generated piece.
     */
    public IncrementalDetokenizer(Tokenizer tokenizer, int[] context, boolean skipSpecial) {
        this.tokenizer = tokenizer;
        this.skipSpecial = skipSpecial;
        this.ids = Arrays.copyOf(context, Math.max(16, context.length * 2));
        this.size = context.length;
        int unread = context.length;
        // at most 3 trailing bytes of a 4-byte UTF-8 character can be incomplete
        while (unread > 0 && context.length - unread < 3 && decodeWindow(unread).endsWith("\uFFFD")) {
            unread--;
        }
        this.read = unread;
        this.prefix = Math.max(0, read - CONTEXT);
    }

    private String decodeWindow(int end) {
        return tokenizer.decode(Arrays.copyOfRange(ids, Math.max(0, end - CONTEXT), end), skipSpecial);
    }

    /** Adds one token; returns the newly completed text (often one word piece, "" while a character is incomplete). */
    public String next(int id) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, size * 2);
        }
        ids[size++] = id;
        String before = tokenizer.decode(Arrays.copyOfRange(ids, prefix, read), skipSpecial);
        String after = tokenizer.decode(Arrays.copyOfRange(ids, prefix, size), skipSpecial);
        if (after.length() <= before.length() || after.endsWith("\uFFFD")) {
            return "";
        }
        String delta = after.substring(before.length());
        prefix = read;
        read = size;
        text.append(delta);
        return delta;
    }

    /** At the end of the stream: whatever text is still held back (incomplete characters as U+FFFD). */
    public String flush() {
        String before = tokenizer.decode(Arrays.copyOfRange(ids, prefix, read), skipSpecial);
        String after = tokenizer.decode(Arrays.copyOfRange(ids, prefix, size), skipSpecial);
        String delta = after.length() > before.length() ? after.substring(before.length()) : "";
        prefix = read = size;
        text.append(delta);
        return delta;
    }

    /** All text returned so far. */
    public String text() {
        return text.toString();
    }
}
