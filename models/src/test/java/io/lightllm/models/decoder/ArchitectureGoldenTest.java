package io.lightllm.models.decoder;

import static io.lightllm.models.llama.LlamaGoldenTest.assertMatchesGolden;
import static io.lightllm.models.llama.LlamaGoldenTest.tolerance;
import static org.junit.jupiter.api.Assertions.assertSame;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The architectures beyond the Llama family against their reference on tiny fixtures: last-position logits
 * within {@link io.lightllm.models.llama.LlamaGoldenTest#tolerance} (same justification) and 24 greedy tokens
 * identical, alone and batched, on the JVM and every accelerator. The shared fixtures (transformers):
 * <ul>
 *   <li>bloom: LayerNorm, the embedding norm, ALiBi, q/k/v interleaved per head, the plain GELU MLP, biases;</li>
 *   <li>starcoder: learned absolute positions, multi-query attention from a stacked c_attn, LayerNorm, GELU;</li>
 *   <li>stablelm: LayerNorm with rotary on a quarter of each head, q/k/v biases;</li>
 *   <li>mixtral: the top-2-of-4 mixture of experts, in prefill and in (recorded) decode steps.</li>
 * </ul>
 * The project's own ({@code scripts/fixtures/make_tiny.py}: random parameters, biases and norm weights included,
 * golden data from the code published with each model, or transformers for Qwen3):
 * <ul>
 *   <li>qwen3: per-head q/k RMSNorms before rotary, head_dim independent of hidden/heads;</li>
 *   <li>qwen (v1, modeling_qwen.py): renamed config keys, stacked c_attn with bias, w2 as the gate;</li>
 *   <li>chatglm2 (modeling_chatglm.py): 2 multi-query groups, rotary on half of each head in interleaved pairs;</li>
 *   <li>internlm (modeling_internlm.py): q/k/v/o biases;</li>
 *   <li>baichuan7b (Baichuan-7B's modeling_baichuan.py): W_pack with rotary, the BaiChuanForCausalLM class name;</li>
 *   <li>baichuan2_7b (Baichuan2-7B's modeling_baichuan.py): W_pack with rotary and the normalised head rows (NormHead);</li>
 *   <li>baichuan13b / baichuan2_13b (each 13B's modeling_baichuan.py): W_pack with ALiBi, and Baichuan2's
 *       normalised head rows.</li>
 * </ul>
 * The 13B declarations are told apart from the 7B ones by the 5,120-wide hidden state of the real checkpoints,
 * which a tiny fixture cannot have: their golden test names its declaration, and
 * {@link #theRealBaichuanConfigsPickTheirDeclarations} checks the choice on the published configs' keys.
 */
class ArchitectureGoldenTest {
    static Stream<Arguments> checkpoints() {
        List<Arguments> out = new ArrayList<>();
        List<String> devices = TestDevices.jvmAndAccelerators();
        for (String device : devices) {
            out.add(Arguments.of(device, "bloom", false, Architectures.BLOOM));
            out.add(Arguments.of(device, "starcoder", false, Architectures.STARCODER));
            out.add(Arguments.of(device, "stablelm", false, Architectures.STABLELM));
            out.add(Arguments.of(device, "mixtral", false, Architectures.MIXTRAL));
            out.add(Arguments.of(device, "qwen3", true, Architectures.QWEN3));
            out.add(Arguments.of(device, "qwen", true, Architectures.QWEN));
            out.add(Arguments.of(device, "chatglm2", true, Architectures.CHATGLM2));
            out.add(Arguments.of(device, "internlm", true, Architectures.INTERNLM));
            out.add(Arguments.of(device, "baichuan7b", true, Architectures.BAICHUAN_7B));
            out.add(Arguments.of(device, "baichuan2_7b", true, Architectures.BAICHUAN2_7B));
            out.add(Arguments.of(device, "baichuan13b", true, Architectures.BAICHUAN_13B));
            out.add(Arguments.of(device, "baichuan2_13b", true, Architectures.BAICHUAN2_13B));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{1} on {0}")
    @MethodSource("checkpoints")
    void matchesItsReference(String deviceId, String name, boolean made, Architecture declaration) {
        Device device = Devices.get(deviceId);
        Path path = made ? SharedData.madeFixture(name) : SharedData.tinyFixture(name);
        List<Golden> cases = Golden.read(path);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM model = load(files, device, declaration)) {
            String embedding = declaration.embeddings().tokens() + ".weight";
            assertMatchesGolden(model, cases, tolerance(files.weights().get(embedding).type().dtype()), name + " on " + deviceId);
        }
    }

    /** The model by the declaration the checkpoint's config picks, except for the tiny 13B Baichuans (see the class doc). */
    private static CausalLM load(ModelFiles files, Device device, Architecture declaration) {
        if (declaration == Architectures.BAICHUAN_13B || declaration == Architectures.BAICHUAN2_13B) {
            return new DecoderModel(device, declaration, files.config(), files.weights(), Models.Quantization.NONE, bytes -> { });
        }
        CausalLM model = Models.load(files, device, Models.Quantization.NONE, true);
        assertSame(declaration, ((DecoderModel) model).architecture(), "the declaration that reads the fixture");
        return model;
    }

    @Test
    void theRealBaichuanConfigsPickTheirDeclarations() {
        assertSame(Architectures.BAICHUAN_7B, baichuan("baichuan7b", 4096, 64000), "Baichuan-7B");
        assertSame(Architectures.BAICHUAN2_7B, baichuan("baichuan2_7b", 4096, 125696), "Baichuan2-7B");
        assertSame(Architectures.BAICHUAN_13B, baichuan("baichuan13b", 5120, 64000), "Baichuan-13B");
        assertSame(Architectures.BAICHUAN2_13B, baichuan("baichuan2_13b", 5120, 125696), "Baichuan2-13B");
    }

    /** A fixture's config.json with the published width and vocabulary (the keys the choice reads). */
    private static Architecture baichuan(String fixture, int hidden, int vocab) {
        ObjectNode json = (ObjectNode) JsonFields.read(SharedData.madeFixture(fixture).resolve("config.json"));
        json.put("hidden_size", hidden).put("vocab_size", vocab).put("num_attention_heads", hidden / 128);
        return Architectures.of(Architectures.readConfig(json, "config"));
    }
}
