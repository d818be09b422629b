package io.lightllm.engine;

import java.util.List;

/**
 * Turns one sequence's tokens into text as they come, safely for UTF-8 and for tokenizers whose
 * text depends on neighbours (SentencePiece's leading spaces): it decodes a short window of
 * tokens before and after the new ones and emits the difference, and waits while the text ends
 * in an incomplete character (U+FFFD) - the method of Hugging Face's text-generation-inference.
 * The window starts on the prompt's last tokens so the first output word gets its space.
 *
 * <p>Stop strings: the text is cut before the first occurrence of any of them, and text that
 * could be the start of one is held back until it is known not to be.
 */
final class IncrementalDetokenizer {
    private static final int PROMPT_CONTEXT = 4;
    private final TextCodec codec;
    private final List<String> stops;
    private final IntSequence ids = new IntSequence(64);
    private final StringBuilder pending = new StringBuilder();
    private int prefixOffset;
    private int readOffset;
    private boolean stopped;

    IncrementalDetokenizer(TextCodec codec, int[] prompt, List<String> stops) {
        this.codec = codec;
        this.stops = stops;
        for (int i = Math.max(0, prompt.length - PROMPT_CONTEXT); i < prompt.length; i++) {
            ids.add(prompt[i]);
        }
        prefixOffset = 0;
        readOffset = ids.size();
    }

    /** Text that the new token completes and that is safe to show. */
    String add(int token) {
        ids.add(token);
        String prefix = codec.decode(ids.range(prefixOffset, readOffset));
        String text = codec.decode(ids.range(prefixOffset, ids.size()));
        if (text.length() > prefix.length() && !text.endsWith("\uFFFD")) {
            pending.append(text, prefix.length(), text.length());
            prefixOffset = readOffset;
            readOffset = ids.size();
        }
        return release(false);
    }

    /** The rest of the text at the sequence's end. */
    String finish() {
        if (!stopped && readOffset < ids.size()) {
            String prefix = codec.decode(ids.range(prefixOffset, readOffset));
            String text = codec.decode(ids.range(prefixOffset, ids.size()));
            if (text.length() > prefix.length()) {
                pending.append(text, prefix.length(), text.length());
            }
            readOffset = ids.size();
        }
        return release(true);
    }

    /** Whether a stop string was found (the output ends before it). */
    boolean stopped() {
        return stopped;
    }

    private String release(boolean all) {
        if (stopped) {
            return "";
        }
        int cut = -1;
        for (String stop : stops) {
            int at = pending.indexOf(stop);
            if (at >= 0 && (cut < 0 || at < cut)) {
                cut = at;
            }
        }
        if (cut >= 0) {
            stopped = true;
            String out = pending.substring(0, cut);
            pending.setLength(0);
            return out;
        }
        int keep = all ? 0 : heldBack();
        String out = pending.substring(0, pending.length() - keep);
        pending.delete(0, pending.length() - keep);
        return out;
    }

    /** Length of the longest end of the pending text that begins some stop string. */
    private int heldBack() {
        int best = 0;
        for (String stop : stops) {
            for (int len = Math.min(stop.length() - 1, pending.length()); len > best; len--) {
                if (pending.substring(pending.length() - len).equals(stop.substring(0, len))) {
                    best = len;
                    break;
                }
            }
        }
        return best;
    }
}
