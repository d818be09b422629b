package io.lightllm.models.gguf;

import io.lightllm.models.weights.TensorType;

import java.util.Map;
import java.util.Optional;

/** GGML tensor type ids (ggml.h's enum ggml_type) and the ones this loader reads. */
final class GgmlType {
    private static final Map<Integer, TensorType> SUPPORTED = Map.ofEntries(
            Map.entry(0, TensorType.F32), Map.entry(1, TensorType.F16), Map.entry(2, TensorType.Q4_0), Map.entry(8, TensorType.Q8_0),
            Map.entry(12, TensorType.Q4_K), Map.entry(13, TensorType.Q5_K), Map.entry(14, TensorType.Q6_K), Map.entry(24, TensorType.I8),
            Map.entry(26, TensorType.I32), Map.entry(27, TensorType.I64), Map.entry(30, TensorType.BF16));

    private static final String[] NAMES = {
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
        "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
        "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0",
        "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
    };

    private GgmlType() {
    }

    static Optional<TensorType> tensorType(int id) {
        return Optional.ofNullable(SUPPORTED.get(id));
    }

    static String name(int id) {
        return id >= 0 && id < NAMES.length ? NAMES[id] : "type " + id;
    }
}
