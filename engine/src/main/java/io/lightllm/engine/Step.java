package io.lightllm.engine;

import io.lightllm.models.infer.NopadBatch;
import java.util.List;

/**
 * One planned forward step and who samples from it: sequence s takes its next token from row
 * {@code logitsRows[s]} of the step's logits (the n sequences of one prompt share a row after
 * its prefill). {@code promptsDone}: the requests whose prompt's KV this step completes (what the
 * prefix cache takes in); a chunk of a longer prompt is in the batch but in none of the lists.
 * {@code promptScores}: the logits rows of prompt tokens to score (prompt log-probabilities).
 */
record Step(NopadBatch batch, List<Request> sequences, int[] logitsRows, List<Request> promptsDone, List<PromptScores> promptScores) {
    /** A decode step: no prompt completes in it. */
    Step(NopadBatch batch, List<Request> sequences, int[] logitsRows) {
        this(batch, sequences, logitsRows, List.of(), List.of());
    }

    /** Logits rows {@code firstRow ..} hold prompt positions {@code firstPosition ..}; each scores the next prompt token. */
    record PromptScores(Request request, int firstRow, int firstPosition, int count) { }

    boolean prefill() {
        return batch.prefill();
    }
}
