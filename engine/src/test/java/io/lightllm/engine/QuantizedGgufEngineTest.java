package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.gguf.GgufArchitecturesTest;
import io.lightllm.models.gguf.GgufQuantizedTest;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Q4_K_M GGUF file (Q4_K matrices, Q6_K head, attn_v and ffn_down, written as llama-quantize does)
 * serves through the engine with its weights packed: greedy completions are those of the same
 * file with every matrix written back as its dequantised F32 values, and the device holds the
 * packed bytes (about 4.5-6.6 bits a weight) rather than 32.
 */
class QuantizedGgufEngineTest {
    @TempDir
    Path dir;

    @Test
    void aQ4KMFileGeneratesWhatItsDequantisedModelGenerates() throws Exception {
        Path hf = GgufQuantizedTest.wideLlama(Files.createDirectories(dir.resolve("hf")));
        Path q4km = dir.resolve("q4km.gguf"), dequantised = dir.resolve("dq.gguf");
        GgufArchitecturesTest.convert(hf, "llama", q4km, GgufQuantizedTest.policy("Q4_K_M"), false);
        GgufArchitecturesTest.convert(hf, "llama", dequantised, GgufQuantizedTest.policy("Q4_K_M"), true);
        List<String> prompts = List.of("Hello world", "the cat sat on");
        List<List<Integer>> packed = generate(q4km, prompts, true);
        List<List<Integer>> reference = generate(dequantised, prompts, false);
        assertEquals(reference, packed);
    }

    private static List<List<Integer>> generate(Path gguf, List<String> prompts, boolean packed) throws Exception {
        try (ModelFiles files = ModelFiles.open(gguf, LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            long f32Bytes = files.weights().names().stream().mapToLong(n -> files.weights().get(n).elementCount() * 4).sum();
            // the embedding (512 x 256) is dequantised to f32 for the lookup; every matrix stays packed
            assertTrue(!packed || model.weightBytes() < f32Bytes / 4, model.weightBytes() + " bytes on the device of " + f32Bytes + " as F32");
            Set<Integer> eos = new HashSet<>();
            Arrays.stream(files.stopTokenIds()).forEach(eos::add);
            try (Engine engine = Engine.start(model, EngineConfig.of(1024, eos), files.tokenizer())) {
                return prompts.stream().map(p -> engine.generate(p, SamplingParams.builder().maxNewTokens(12).ignoreEos(true).build())
                        .getFirst().tokens()).map(t -> Arrays.stream(t).boxed().toList()).toList();
            }
        }
    }
}
