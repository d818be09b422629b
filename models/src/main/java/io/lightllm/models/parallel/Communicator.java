package io.lightllm.models.parallel;

import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * Collective operations among the ranks of one tensor-parallel model. Every rank calls the same
 * operations in the same order, each from its own thread and with a buffer on its own device.
 * A result is in the rank's buffer for whatever the rank runs next on its device (the host-memory
 * implementation returns once it is there; NCCL's queues the operation on the device like a kernel).
 */
public interface Communicator {
    int rank();

    int worldSize();

    /**
     * Replaces the first {@code elements} f32 values of {@code buffer} on every rank by their
     * sum over the ranks. Every rank gets the same bits, so replicated activations stay
     * identical across ranks.
     */
    void allReduceSum(DeviceBuffer buffer, int elements);

    /**
     * Concatenates the ranks' f32 blocks {@code [rows, columns[r]]} column-wise, rank 0 first,
     * into {@code gathered} {@code [rows, sum of columns]} on rank 0 (the root; the other ranks
     * pass null): what the vocabulary-split head uses to assemble full logits rows. Every rank
     * passes the same {@code columns}.
     */
    void gatherColumns(DeviceBuffer local, int rows, int[] columns, DeviceBuffer gathered);

    /** The check every {@link #gatherColumns} starts with: the root passes the buffer, the others null. */
    static void requireGatheredOnRootOnly(int rank, DeviceBuffer gathered) {
        if ((rank == 0) != (gathered != null)) {
            throw new IllegalArgumentException("rank 0, and only rank 0, passes the gathered buffer");
        }
    }

    /**
     * Whether the collectives are queued on the rank's device like kernels, so that a step
     * recorded on the device (a CUDA graph) may contain them; false when they go through the host.
     */
    boolean recordable();
}
