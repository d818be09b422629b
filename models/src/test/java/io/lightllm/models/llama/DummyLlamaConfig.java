package io.lightllm.models.llama;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A config.json of a small two-layer Llama (vocabulary 512) for {@code Models.dummy}, in shapes a kernel path needs. */
final class DummyLlamaConfig {
    private DummyLlamaConfig() {
    }

    /** Writes dir/config.json and returns its path; {@code dtype} as transformers names it ("float32", "bfloat16"). */
    static Path write(Path dir, int hidden, int intermediate, int heads, int kvHeads, String dtype) throws IOException {
        return Files.writeString(dir.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d, "intermediate_size": %d,
                 "num_hidden_layers": 2, "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": 512,
                 "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
                 "hidden_act": "silu", "torch_dtype": "%s"}
                """.formatted(hidden, intermediate, heads, kvHeads, dtype));
    }
}
