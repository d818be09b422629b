package io.lightllm.models.decoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.GreedyRunner;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every declaration, including those without a golden fixture yet, loads from the tensors
 * {@link TensorShapes} lists for it (random weights, {@code --load-format dummy}) and runs: logits
 * finite, and decode consistent with prefill (the greedy tokens after a prompt equal those after
 * the prompt extended by the first of them, wherever the choice is not a near tie). This checks
 * that a declaration's names, shapes and blocks fit together, not that it matches its reference.
 */
class EveryDeclarationTest {
    @TempDir
    static Path dir;

    static Stream<Architecture> declarations() {
        // the 13B Baichuans are told apart by their 5120-wide hidden state, too large for a quick test (ArchitectureGoldenTest
        // has them); a vision model needs its tower's config and weights besides (LlavaGoldenTest)
        return Architectures.ALL.stream().filter(a -> a != Architectures.BAICHUAN_13B && a != Architectures.BAICHUAN2_13B && a.vision() == null);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("declarations")
    void loadsAndDecodesLikeItPrefills(Architecture a) throws IOException {
        ObjectNode config = (ObjectNode) JsonFields.read(SharedData.tinyFixture("llama").resolve("config.json"));
        config.put("model_type", a.modelType());
        config.putArray("architectures").add(a.hfClasses().getFirst());
        if (a.attention().qkv() instanceof Architecture.Qkv.PerHead) {
            config.put("num_key_value_heads", config.get("num_attention_heads").asInt());
        }
        if (a == Architectures.STARCODER) {
            config.put("num_key_value_heads", 1);
        }
        if (a == Architectures.CHATGLM2) { // its own keys: multi-query groups, ffn_hidden_size
            config.put("ffn_hidden_size", config.get("intermediate_size").asInt()).put("multi_query_attention", true)
                    .put("multi_query_group_num", config.get("num_key_value_heads").asInt());
        }
        if (a.mlp() instanceof Architecture.MlpSpec.Experts) {
            config.put("num_local_experts", 4).put("num_experts_per_tok", 2);
        }
        Path file = dir.resolve(a.family().replaceAll("\\W", "_") + ".json");
        Files.writeString(file, config.toString());
        assertEquals(a, Architectures.of(Models.dummyConfig(file.toString())), "the declaration that reads this config");
        try (CausalLM model = Models.dummy(file.toString(), DType.BF16, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            int[] prompt = {0, 5, 17, 300, 41, 9, 77};
            GreedyRunner run = new GreedyRunner(model, new int[][] {prompt}, 4, DType.F32);
            for (float v : run.firstLogits[0]) {
                assertTrue(Float.isFinite(v), a.family() + ": logits must be finite");
            }
            int[] extended = java.util.Arrays.copyOf(prompt, prompt.length + 1);
            extended[prompt.length] = run.generated[0][0];
            GreedyRunner longer = new GreedyRunner(model, new int[][] {extended}, 3, DType.F32);
            for (int s = 0; s < 3; s++) {
                if (run.margins[0][s + 1] > 1e-4f) {
                    assertEquals(run.generated[0][s + 1], longer.generated[0][s], a.family() + ": greedy token " + (s + 1));
                }
            }
        }
    }

    @Test
    void mixtralPresetNamesEveryExpert() {
        var c = Models.dummyConfig("mixtral-8x7b");
        var shapes = TensorShapes.of(Architectures.of(c), c);
        assertTrue(shapes.containsKey("model.layers.31.block_sparse_moe.experts.7.w2.weight"));
        long params = shapes.values().stream().mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (x, y) -> x * y)).sum();
        assertEquals(46_702_792_704L, params, "Mixtral-8x7B's published parameter count");
    }
}
