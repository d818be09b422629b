package io.lightllm.models.infer;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * A decoder-only language model ready to run nopad batches on one device: what the engine
 * drives. The KV pool and the request table belong to the caller, so the engine decides who
 * gets memory.
 */
public interface CausalLM extends AutoCloseable {
    Device device();

    int vocabSize();

    /** Bytes the weights take on the device (what is left is for the KV pool). */
    long weightBytes();

    /**
     * How many ranks keep weights and a KV pool of their own in {@link #device()}'s memory: 1, or
     * under tensor parallelism the ranks placed on that same memory (several ranks on one device;
     * JVM ranks, which all live in host memory). Sizing the pool from memory divides by it.
     */
    default int ranksSharingMemory() {
        return 1;
    }

    /**
     * Whether {@code id}, past the vocabulary, stands for a row of embeddings the model places itself (an
     * image's features in a vision model, {@code io.lightllm.models.vision}). Such ids may appear in prompts
     * only; they are never sampled, penalised or detokenized.
     */
    default boolean isPlaceholder(int id) {
        return false;
    }

    /** The encoder of the images this model's prompts may hold (a vision model's), run by the engine as a stage before prefill; null for a text model. */
    default ImageEncoder imageEncoder() {
        return null;
    }

    /** The model itself, under any wrapper that only owns what it reads (a dummy model's weights): for a model's own API, e.g. a vision model's. */
    default CausalLM unwrap() {
        return this;
    }

    /**
     * Forgets what the model recorded or decided from the launch tuning (its recorded decode steps, which kernels a step
     * takes), so that the next steps follow tuning properties changed since: benchmarks that compare tunings on one
     * loaded model ({@code bench static --variants}). One device; a model that cannot says so.
     */
    default void tuningChanged() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot change its tuning after loading");
    }

    /** Longest sequence the model accepts. */
    int maxSequenceLength();

    /** The KV pool dtype this model's attention runs best over on its device ({@code --kv-dtype auto}). */
    io.lightllm.tornado.api.DType preferredKvDtype();

    /** The pool dtype asked for, or with {@code null} ({@code --kv-dtype auto}) the {@link #preferredKvDtype}. */
    default io.lightllm.tornado.api.DType kvDtype(io.lightllm.tornado.api.DType requested) {
        return requested != null ? requested : preferredKvDtype();
    }

    /** A KV pool of {@code slots} tokens in the layout this model's attention reads. */
    TokenKvPool newKvPool(int slots, io.lightllm.tornado.api.DType dtype);

    /**
     * Runs one step: writes the new tokens' K/V into {@code pool} and their slots into
     * {@code table}, and returns the device buffer of logits [batch.logitRows(), vocab] for the
     * batch's {@link NopadBatch#logitTokens} (by default the last new token of each request). The
     * buffer is reused by the next call.
     */
    DeviceBuffer forward(NopadBatch batch, TokenKvPool pool, RequestTokenTable table);

    /** {@link #forward} with the logits copied to the host. */
    default FloatArray forwardToHost(NopadBatch batch, TokenKvPool pool, RequestTokenTable table) {
        DeviceBuffer logits = forward(batch, pool, table);
        FloatArray out = FloatArray.allocate(batch.logitRows() * vocabSize());
        device().read(logits, 0, out.segment());
        return out;
    }

    @Override
    void close();
}
