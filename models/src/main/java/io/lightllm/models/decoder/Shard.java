package io.lightllm.models.decoder;

import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.parallel.Communicator;

/**
 * The part of a decoder one tensor-parallel rank holds (Megatron-style):
 * query heads {@code [firstHead, firstHead + heads)} with the kv heads they read
 * ({@code [firstKvHead, firstKvHead + kvHeads)}; when there are fewer kv heads than ranks each rank
 * keeps a copy of the one its query heads share), MLP rows {@code [firstIntermediate, + intermediate)},
 * and vocabulary rows {@code [firstVocab, + vocab)} of the head. {@link #whole} is the single-device
 * model: everything, and no communicator.
 */
public record Shard(int rank, int worldSize, int firstHead, int heads, int firstKvHead, int kvHeads,
                  int firstIntermediate, int intermediate, int firstVocab, int vocab, Communicator communicator) {

    public static Shard whole(ModelConfig c) {
        return new Shard(0, 1, 0, c.numAttentionHeads(), 0, c.numKeyValueHeads(), 0, c.intermediateSize(), 0, c.vocabSize(), null);
    }

    public static Shard of(ModelConfig c, Communicator communicator) {
        int rank = communicator.rank(), n = communicator.worldSize();
        int heads = c.numAttentionHeads(), kvHeads = c.numKeyValueHeads();
        if (heads % n != 0) {
            throw new ModelLoadException("--tp " + n + " must divide the " + heads + " attention heads");
        }
        if (kvHeads % n != 0 && n % kvHeads != 0) {
            throw new ModelLoadException("--tp " + n + " and the " + kvHeads + " kv heads must divide one another");
        }
        int localHeads = heads / n;
        int localKv = Math.max(1, kvHeads / n);
        // query head h reads kv head h / (heads / kvHeads): the first of this rank's query heads names its first kv head
        int firstHead = rank * localHeads;
        int firstKv = firstHead / (heads / kvHeads);
        int firstI = split(c.intermediateSize(), n, rank), endI = split(c.intermediateSize(), n, rank + 1);
        int firstV = split(c.vocabSize(), n, rank), endV = split(c.vocabSize(), n, rank + 1);
        return new Shard(rank, n, firstHead, localHeads, firstKv, localKv, firstI, endI - firstI, firstV, endV - firstV, communicator);
    }

    /** Start of part {@code part} of {@code total} items cut into {@code parts} near-equal parts. */
    private static int split(int total, int parts, int part) {
        return (int) ((long) total * part / parts);
    }

    public boolean sharded() {
        return worldSize > 1;
    }

    /** Whether a step of this rank can be recorded on the device: one device, or collectives that stay on it. */
    public boolean recordable() {
        return !sharded() || communicator.recordable();
    }

    /** Sums the ranks' partial outputs of a row-split projection (o, down); nothing on one device. */
    public void allReduce(io.lightllm.tornado.runtime.DeviceBuffer partial, int elements) {
        if (sharded()) {
            communicator.allReduceSum(partial, elements);
        }
    }
}
