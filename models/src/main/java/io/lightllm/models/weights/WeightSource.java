package io.lightllm.models.weights;

import java.util.SortedSet;

/**
 * The tensors of a model by their Hugging Face names ("model.layers.0.self_attn.q_proj.weight"),
 * whatever the file format. Tensors stay valid until {@link #close()} unmaps the files.
 */
public interface WeightSource extends AutoCloseable {

    /** The tensor called {@code hfName}; a {@link io.lightllm.models.ModelLoadException} naming the model if absent. */
    Tensor get(String hfName);

    boolean has(String hfName);

    /** Every tensor name, sorted. */
    SortedSet<String> names();

    /** Where the tensors come from (a directory or file), for messages. */
    String location();

    /** Unmaps the files; tensors obtained earlier must not be used afterwards. */
    @Override
    void close();
}
