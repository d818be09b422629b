package io.lightllm.engine;

import io.lightllm.models.tokenizer.Tokenizer;
import java.util.List;

/**
 * One submitted prompt on the detokenization side: its n sequences' detokenizers and the stream
 * their events go to. Used by the detokenization thread only (and by the canceller through
 * {@link #abort}).
 */
final class Submission {
    private final long id;
    private final TokenStream stream;
    private volatile List<Request> sequences = List.of();
    private OutputText[] texts;
    private boolean[] ended;
    private int open;
    private volatile boolean aborted;
    private boolean promptScoresSent;

    Submission(long id) {
        this.id = id;
        this.stream = new TokenStream(this::abort);
    }

    long id() { return id; }

    TokenStream stream() { return stream; }

    /** The sequences, once the prompt is tokenized and validated (before they reach the inference loop). */
    void start(List<Request> group, Tokenizer tokenizer) {
        texts = new OutputText[group.size()];
        ended = new boolean[group.size()];
        open = group.size();
        for (Request r : group) {
            if (tokenizer != null) {
                texts[r.sequenceIndex()] = new OutputText(tokenizer, r.prompt(), r.params().stopStrings(), r.params().skipSpecialTokens());
            }
        }
        sequences = group;
        if (aborted) {
            abort();
        }
    }

    /** Cancels every sequence at the inference loop's next step boundary. */
    void abort() {
        aborted = true;
        for (Request r : sequences) {
            r.requestFinish(FinishReason.ABORT);
        }
    }

    /** Turns a generated token into the sequence's event; true once every sequence has ended. */
    boolean accept(GeneratedToken g) {
        Request r = g.request();
        int s = r.sequenceIndex();
        if (ended[s]) {
            return false;   // tokens produced after a stop string, before the loop saw the stop
        }
        OutputText detok = texts[s];
        String text = null;
        FinishReason finish = g.finish();
        if (detok != null) {
            StringBuilder out = new StringBuilder();
            if (g.token() >= 0) {
                out.append(detok.add(g.token()));
            }
            if (detok.stopped()) {
                finish = FinishReason.STOP;
                r.requestFinish(FinishReason.STOP);
            } else if (finish != null) {
                out.append(detok.finish());
                if (detok.stopped()) {
                    finish = FinishReason.STOP;
                }
            }
            text = out.toString();
        }
        // the prompt's log-probabilities go with sequence 0's first event
        List<TokenLogprobs> promptScores = s == 0 && !promptScoresSent ? r.promptLogprobs() : null;
        promptScoresSent |= s == 0;
        stream.emit(new TokenEvent(id, s, g.token(), g.logprobs(), text, finish, g.error(), g.request().cachedPromptTokens(), promptScores));
        if (finish != null) {
            ended[s] = true;
            open--;
        }
        if (open == 0) {
            stream.complete();
            return true;
        }
        return false;
    }
}
