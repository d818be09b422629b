package io.lightllm.models.parallel;

import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * Collective operations among the ranks of one tensor-parallel model. Every rank calls the same
 * operations in the same order, each from its own thread and with a buffer on its own device; a
 * call returns once the result is in that rank's buffer.
 */
public interface Communicator {
    int rank();

    int worldSize();

    /**
     * Replaces the first {@code elements} f32 values of {@code buffer} on every rank by their
     * sum over the ranks. Every rank gets the same bits (the sum is taken in rank order), so
     * replicated activations stay identical across ranks.
     */
    void allReduceSum(DeviceBuffer buffer, int elements);

    /**
     * Concatenates the ranks' f32 blocks {@code [rows, localColumns]} column-wise, rank 0 first,
     * into {@code gathered} {@code [rows, sum of localColumns]} on rank 0 (the root; the other
     * ranks pass null): what the vocabulary-split head uses to assemble full logits rows.
     */
    void gatherColumns(DeviceBuffer local, int rows, int localColumns, DeviceBuffer gathered);
}
