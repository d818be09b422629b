package io.lightllm.models.decoder;

import static io.lightllm.models.llama.LlamaGoldenTest.assertMatchesGolden;
import static io.lightllm.models.llama.LlamaGoldenTest.tolerance;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
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
            String embedding = expected.embeddings().tokens() + ".weight";
            assertMatchesGolden(model, cases, tolerance(files.weights().get(embedding).type().dtype()), name + " on " + deviceId);
        }
    }
}
