package io.lightllm.models.decoder;

import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * What one step's layers read besides the step buffers.
 *
 * @param invFreq            the rotary table (null for models without rotary embeddings)
 * @param attentionMaxSeqLen sizes decode attention's splits: the batch's longest context, rounded up to a power of two when the
 *                           step is recorded ({@link DecoderModel#recordedLength})
 */
record Step(NopadBatch batch, TokenKvPool pool, RequestTokenTable table, DeviceBuffer invFreq, int attentionMaxSeqLen) {
    int tokens() {
        return batch.tokens();
    }
}
