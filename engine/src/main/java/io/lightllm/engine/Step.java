package io.lightllm.engine;

import io.lightllm.models.infer.NopadBatch;
import java.util.List;

/**
 * One planned forward step and who samples from it: sequence s takes its next token from row
 * {@code logitsRows[s]} of the step's logits (the n sequences of one prompt share a row after
 * its prefill).
 */
record Step(NopadBatch batch, List<Request> sequences, int[] logitsRows) {
    boolean prefill() {
        return batch.prefill();
    }
}
