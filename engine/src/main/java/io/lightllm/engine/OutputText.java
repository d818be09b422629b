package io.lightllm.engine;

import io.lightllm.models.tokenizer.IncrementalDetokenizer;
import io.lightllm.models.tokenizer.Tokenizer;
import java.util.List;

/**
 * One sequence's output text as its tokens arrive: complete characters from the models module's
 * {@link IncrementalDetokenizer} (UTF-8 safe, prompt as context), cut before the first stop
 * string. Text that could be the start of a stop string is held back until it is known not to be,
 * so a client never sees part of a stop string.
 */
final class OutputText {
    private final IncrementalDetokenizer detokenizer;
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    OutputText(Tokenizer tokenizer, int[] prompt, List<String> stops, boolean skipSpecial) {
        // the prompt is the text's context; an image's placeholder ids (past the tokenizer's ids) have no text
        this.detokenizer = new IncrementalDetokenizer(tokenizer, java.util.Arrays.stream(prompt).filter(t -> t < tokenizer.vocabSize()).toArray(),
                skipSpecial);
        this.stops = stops;
    }

    /** Text that the new token completes and that is safe to show. */
    String add(int token) {
        if (!stopped) {
            pending.append(detokenizer.next(token));
        }
        return release(false);
    }

    /** The rest of the text at the sequence's end. */
    String finish() {
        if (!stopped) {
            pending.append(detokenizer.flush());
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
