package io.lightllm.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
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
 * The Llama family against Hugging Face transformers: last-position logits within tolerance
 * and greedy continuations identical, on the JVM and every accelerator, for each prompt alone
 * and for all prompts of a checkpoint batched together (the nopad path must be exact).
 */
public class LlamaGoldenTest {
    /**
     * Logit tolerance by the checkpoint's stored dtype. Both sides compute in fp32 on the same
     * weights, so the engine's own error is summation order and last-ulp differences of
     * exp/rsqrt/cos: measured at 1.2e-5 on the f32 checkpoints. The golden files carry errors
     * of their own on 16-bit checkpoints: an independent float64 NumPy forward pass
     * ({@code scripts/llama_reference.py}) differs from golden.json by 6.3e-4 (llama), 5.6e-4
     * (mistral) and 1.05e-3 (qwen2), the same amounts this engine differs by, so the reference
     * rounded somewhere (bf16 intermediates) and the bound must cover its error, with a 3x margin.
     * A real bug (a swapped rotary half, a missing bias, a wrong norm) moves logits by 1e-2 or
     * more, and greedy ids are compared exactly in any case.
     */
    public static float tolerance(DType stored) {
        return switch (stored) {
            case F32 -> 1e-4f;
            case F16 -> 5e-4f;
            default -> 3e-3f;
        };
    }

    static Stream<Arguments> checkpoints() {
        List<Arguments> out = new ArrayList<>();
        List<String> devices = TestDevices.jvmAndAccelerators();
        for (String device : devices) {
            for (String arch : List.of("llama", "llama3_tied", "mistral", "qwen2")) {
                out.add(Arguments.of(device, arch, SharedData.tinyFixture(arch)));
            }
            out.add(Arguments.of(device, "stories260K", SharedData.model("stories260K")));
            out.add(Arguments.of(device, "stories260K.gguf", SharedData.model("stories260K").resolve("stories260K.gguf")));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{1} on {0}")
    @MethodSource("checkpoints")
    void matchesTransformers(String deviceId, String name, Path path) {
        Device device = Devices.get(deviceId);
        Path goldenDir = path.toString().endsWith(".gguf") ? path.getParent() : path;
        List<Golden> cases = Golden.read(goldenDir);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM model = Models.load(files, device, Models.Quantization.NONE, true)) {
            float tol = tolerance(files.weights().get("model.embed_tokens.weight").type().dtype());
            assertMatchesGolden(model, cases, tol, name + " on " + deviceId);
        }
    }

    /**
     * With the gated MLP's one-launch GEMV at batch 1 (tuning {@code matmul.gemv_gated}, on for this test on the JVM
     * and every accelerator), the tiny llama and stories260K still match transformers: the decode steps of each case
     * alone run it.
     */
    @org.junit.jupiter.api.Test
    void matchesTransformersWithTheGatedGemv() {
        List<String> keys = List.of("lightllm.tuning.jvm.matmul.gemv_gated", "lightllm.tuning.opencl.matmul.gemv_gated",
                "lightllm.tuning.cuda.matmul.gemv_gated");
        keys.forEach(k -> System.setProperty(k, "1"));
        try {
            List<String> devices = TestDevices.jvmAndAccelerators();
            for (String deviceId : devices) {
                for (Path path : List.of(SharedData.tinyFixture("llama"), SharedData.model("stories260K"))) {
                    try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
                         CausalLM model = Models.load(files, Devices.get(deviceId), Models.Quantization.NONE, true)) {
                        float tol = tolerance(files.weights().get("model.embed_tokens.weight").type().dtype());
                        assertMatchesGolden(model, Golden.read(path), tol, path.getFileName() + " gated GEMV on " + deviceId);
                    }
                }
            }
        } finally {
            keys.forEach(System::clearProperty);
        }
    }

    /**
     * With the prefill's matmuls on tensor cores (tuning {@code matmul.tensor_cores}, emulated on the JVM), the norms and
     * the gated activation write bf16 for them (Matmul.activationType), which the GEMMs read as they are, where they
     * would round f32 activations as they read them ({@code matmul.narrow_inputs=0}): the same logits and greedy ids,
     * bit for bit. The tiny llama's 21- and 17-token cases take the GEMM (more rows than the GEMV's 16), batched too.
     */
    @org.junit.jupiter.api.Test
    void sixteenBitActivationsGiveTheTensorCoresTheSameSums() {
        Path path = SharedData.tinyFixture("llama");
        int[][] prompts = Golden.read(path).stream().map(Golden::inputIds).toArray(int[][]::new);
        for (String deviceId : TestDevices.jvmAndAccelerators()) {
            String backend = "lightllm.tuning." + io.lightllm.tornado.runtime.Devices.backendName(deviceId) + ".matmul.";
            GreedyRunner[] runs = new GreedyRunner[2];
            for (int narrow = 0; narrow < 2; narrow++) {
                int at = narrow;
                io.lightllm.testing.TestProperties.with(java.util.Map.of(backend + "tensor_cores", "1", backend + "narrow_inputs",
                        String.valueOf(narrow)), () -> {
                    try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
                         CausalLM model = Models.load(files, Devices.get(deviceId), Models.Quantization.NONE, true)) {
                        runs[at] = new GreedyRunner(model, prompts, 6, DType.F32);
                    }
                });
            }
            for (int c = 0; c < prompts.length; c++) {
                assertArrayEquals(runs[0].firstLogits[c], runs[1].firstLogits[c], deviceId + " case " + c + ": prefill logits");
                assertArrayEquals(runs[0].generated[c], runs[1].generated[c], deviceId + " case " + c + ": greedy ids");
            }
        }
    }

    /**
     * A prompt step's prefill attention on the warpgroup kernel (tuned on, as CUDA runs it; emulated on the JVM) taking the
     * f16 query operand from the q/k/v split and writing its rows in the o projection's bf16 ({@code
     * attention.prefill_half_operands}), against f32 queries and rows (which the kernel and the tensor-core GEMM round the
     * same way as they read them): the same logits and greedy ids, bit for bit. A dummy bf16 Llama of head dimension 128
     * (the kernel's) over an f16 pool; 29 prompt rows take the GEMM, so o reads bf16; the kernel's launches are counted.
     */
    @org.junit.jupiter.api.Test
    void halfPrefillOperandsGiveTheSameModel(@org.junit.jupiter.api.io.TempDir Path tmp) throws java.io.IOException {
        Path config = DummyLlamaConfig.write(tmp, 256, 256, 2, 1, "bfloat16");
        int[][] prompts = {{1, 5, 9, 17, 33, 2, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 400}, {1, 3, 70, 71, 72, 73, 74, 75, 76}};
        for (String deviceId : TestDevices.jvmAndAccelerators()) {
            Device device = Devices.get(deviceId);
            if (!device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA)) {
                continue;
            }
            String backend = "lightllm.tuning." + Devices.backendName(deviceId) + ".";
            GreedyRunner[] runs = new GreedyRunner[2];
            long[] launches = new long[2];
            for (int half = 0; half < 2; half++) {
                int at = half;
                io.lightllm.testing.TestProperties.with(java.util.Map.of(backend + "matmul.tensor_cores", "1", backend + "attention.tensor_cores", "1",
                        backend + "attention.prefill_warpgroup", "1", backend + "attention.prefill_half_operands", String.valueOf(half)), () -> {
                    try (CausalLM model = Models.dummy(config.toString(), DType.BF16, device, Models.Quantization.NONE, true)) {
                        device.setProfiling(true);
                        runs[at] = new GreedyRunner(model, prompts, 4, DType.F16);
                        launches[at] = device.drainProfile().stream().filter(k -> k.name().contains("prefillF16D128")).count();
                        device.setProfiling(false);
                    }
                });
            }
            for (int c = 0; c < prompts.length; c++) {
                assertArrayEquals(runs[0].firstLogits[c], runs[1].firstLogits[c], deviceId + " case " + c + ": prefill logits");
                assertArrayEquals(runs[0].generated[c], runs[1].generated[c], deviceId + " case " + c + ": greedy ids");
            }
            assertTrue(launches[0] == 2 && launches[1] == 2, deviceId + ": the warpgroup prefill ran " + java.util.Arrays.toString(launches)
                    + " times, not once a layer");
        }
    }

    /** Each case alone, then all of them batched: logits within {@code tol} and greedy ids identical. */
    public static void assertMatchesGolden(CausalLM model, List<Golden> cases, float tol, String what) {
        int steps = cases.getFirst().greedyIds().length;
        int[][] prompts = cases.stream().map(Golden::inputIds).toArray(int[][]::new);
        for (int c = 0; c < cases.size(); c++) {
            GreedyRunner alone = new GreedyRunner(model, new int[][] {prompts[c]}, steps, DType.F32);
            assertLogitsClose(cases.get(c).lastLogits(), alone.firstLogits[0], tol, what + ": case " + c);
            assertArrayEquals(cases.get(c).greedyIds(), alone.generated[0], what + ": case " + c + " greedy ids");
        }
        GreedyRunner batched = new GreedyRunner(model, prompts, steps, DType.F32);
        for (int c = 0; c < cases.size(); c++) {
            assertLogitsClose(cases.get(c).lastLogits(), batched.firstLogits[c], tol, what + ": batched case " + c);
            assertArrayEquals(cases.get(c).greedyIds(), batched.generated[c], what + ": batched case " + c + " greedy ids");
        }
    }

    public static void assertLogitsClose(float[] expected, float[] actual, float tolerance, String what) {
        assertTrue(expected.length == actual.length, what + ": vocab " + actual.length + " vs golden " + expected.length);
        float worst = 0;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            float d = Math.abs(expected[i] - actual[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        assertTrue(worst <= tolerance, what + ": logit " + at + " differs by " + worst + " (expected " + (at >= 0 ? expected[at] : 0)
                + ", got " + (at >= 0 ? actual[at] : 0) + ")");
    }
}
