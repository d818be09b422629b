package io.lightllm.models.decoder;

import static io.lightllm.models.llama.LlamaGoldenTest.assertLogitsClose;
import static io.lightllm.models.llama.LlamaGoldenTest.tolerance;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.GreedyRunner;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The architectures beyond the Llama family against Hugging Face transformers on their tiny
 * fixtures: last-position logits within {@link io.lightllm.models.llama.LlamaGoldenTest#tolerance}
 * (same reference, same justification) and 24 greedy tokens identical, alone and batched, on the
 * JVM and every accelerator. Each exercises blocks the Llama fixtures do not:
 * <ul>
 *   <li>bloom: LayerNorm, the embedding norm, ALiBi, q/k/v interleaved per head, the plain GELU MLP, biases;</li>
 *   <li>starcoder: learned absolute positions, multi-query attention from a stacked c_attn, LayerNorm, GELU;</li>
 *   <li>stablelm: LayerNorm with rotary on a quarter of each head, q/k/v biases;</li>
 *   <li>mixtral: the top-2-of-4 mixture of experts, in prefill and in (recorded) decode steps.</li>
 * </ul>
 */
class ArchitectureGoldenTest {
    static Stream<Arguments> checkpoints() {
        List<Arguments> out = new ArrayList<>();
        List<String> devices = new ArrayList<>(List.of("jvm"));
        devices.addAll(TestDevices.accelerators());
        for (String device : devices) {
            out.add(Arguments.of(device, "bloom", Architectures.BLOOM));
            out.add(Arguments.of(device, "starcoder", Architectures.STARCODER));
            out.add(Arguments.of(device, "stablelm", Architectures.STABLELM));
            out.add(Arguments.of(device, "mixtral", Architectures.MIXTRAL));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{1} on {0}")
    @MethodSource("checkpoints")
    void matchesTransformers(String deviceId, String name, Architecture expected) {
        Device device = Devices.get(deviceId);
        Path path = SharedData.tinyFixture(name);
        List<Golden> cases = Golden.read(path);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM model = Models.load(files, device, Models.Quantization.NONE, true)) {
            assertSame(expected, ((DecoderModel) model).architecture(), name + " is read by its declaration");
            int steps = cases.getFirst().greedyIds().length;
            String embedding = expected.embeddings().tokens() + ".weight";
            float tol = tolerance(files.weights().get(embedding).type().dtype());
            int[][] prompts = cases.stream().map(Golden::inputIds).toArray(int[][]::new);
            for (int c = 0; c < cases.size(); c++) {
                GreedyRunner alone = new GreedyRunner(model, new int[][] {prompts[c]}, steps, DType.F32);
                assertLogitsClose(cases.get(c).lastLogits(), alone.firstLogits[0], tol, name + " case " + c + " on " + deviceId);
                assertArrayEquals(cases.get(c).greedyIds(), alone.generated[0], name + " case " + c + " greedy ids on " + deviceId);
            }
            GreedyRunner batched = new GreedyRunner(model, prompts, steps, DType.F32);
            for (int c = 0; c < cases.size(); c++) {
                assertLogitsClose(cases.get(c).lastLogits(), batched.firstLogits[c], tol, name + " batched case " + c + " on " + deviceId);
                assertArrayEquals(cases.get(c).greedyIds(), batched.generated[c], name + " batched case " + c + " greedy ids on " + deviceId);
            }
        }
    }
}
