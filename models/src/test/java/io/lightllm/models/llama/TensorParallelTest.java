package io.lightllm.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.Models;
import io.lightllm.models.decoder.TensorParallelModel;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.models.parallel.RankGroup;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code --tp N} on JVM devices against the single-device model on the same checkpoint: the
 * first-step logits of every prompt (alone and batched) within a tolerance, and the greedy
 * continuations identical. The fixtures cover kv heads split over ranks (tiny llama at tp 2),
 * replicated (tiny llama at tp 4: 4 q heads over 2 kv heads; llama3_tied: 1 kv head), biases on q/k/v
 * (qwen2), a tied head split by vocabulary (llama3_tied) and a trained model (stories260K).
 */
class TensorParallelTest {
    /**
     * Both sides compute in f32 on the same weights; tensor parallelism only changes the order
     * of the sums of the o and down projections (a rank's partial dot product, then the sum
     * over ranks) and nothing else, so the logits differ by f32 rounding accumulated through the
     * layers: measured up to 3e-6 on these fixtures. 1e-4 leaves room for other summation
     * orders (a different core count per JVM device) while a wrong shard (a head paired with the
     * wrong kv head, a bias added twice, a misplaced vocabulary block) moves logits by 1e-2 or more.
     */
    private static final float TOLERANCE = 1e-4f;

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("llama", SharedData.tinyFixture("llama"), 2),
                Arguments.of("llama", SharedData.tinyFixture("llama"), 4),
                Arguments.of("qwen2", SharedData.tinyFixture("qwen2"), 2),
                Arguments.of("llama3_tied", SharedData.tinyFixture("llama3_tied"), 2),
                Arguments.of("llama3_tied", SharedData.tinyFixture("llama3_tied"), 4),
                Arguments.of("stories260K", SharedData.model("stories260K"), 4),
                // the other blocks: ALiBi slopes of a rank's heads, per-head fused qkv (bloom); a replicated
                // multi-query kv head from a stacked c_attn and learned positions (starcoder); LayerNorm and
                // partial rotary (stablelm); every expert split by rows under a replicated router (mixtral)
                Arguments.of("bloom", SharedData.tinyFixture("bloom"), 2),
                Arguments.of("starcoder", SharedData.tinyFixture("starcoder"), 2),
                Arguments.of("stablelm", SharedData.tinyFixture("stablelm"), 2),
                Arguments.of("mixtral", SharedData.tinyFixture("mixtral"), 2),
                Arguments.of("qwen3", SharedData.madeFixture("qwen3"), 2),
                Arguments.of("qwen", SharedData.madeFixture("qwen"), 2),
                Arguments.of("chatglm2", SharedData.madeFixture("chatglm2"), 2),
                Arguments.of("internlm", SharedData.madeFixture("internlm"), 2));
    }

    @ParameterizedTest(name = "{0} at tp {2}")
    @MethodSource("cases")
    void matchesOneDevice(String name, Path path, int tp) {
        List<Golden> golden = Golden.read(path);
        int steps = golden.getFirst().greedyIds().length;
        int[][] prompts = golden.stream().map(Golden::inputIds).toArray(int[][]::new);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM one = Models.load(files, new JvmDevice(1), Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, RankDevices.resolve("jvm", tp), Models.Quantization.NONE, true)) {
            assertEquals(tp, ((TensorParallelModel) split).worldSize());
            for (int c = 0; c < prompts.length; c++) {
                compare(new GreedyRunner(one, new int[][] {prompts[c]}, steps, DType.F32),
                        new GreedyRunner(split, new int[][] {prompts[c]}, steps, DType.F32), name + " case " + c + " at tp " + tp);
            }
            compare(new GreedyRunner(one, prompts, steps, DType.F32), new GreedyRunner(split, prompts, steps, DType.F32),
                    name + " batched at tp " + tp);
        }
    }

    /**
     * tp 8 (the fixtures' 4 heads stop at tp 4): random weights of an 8-head shape, each kv head its
     * own rank's (8 kv heads) or replicated over four ranks (2 kv heads), against one device.
     */
    @ParameterizedTest(name = "{0} kv heads at tp 8")
    @org.junit.jupiter.params.provider.ValueSource(ints = {8, 2})
    void dummyModelAtTp8(int kvHeads, @org.junit.jupiter.api.io.TempDir Path dir) throws java.io.IOException {
        Path config = java.nio.file.Files.writeString(dir.resolve("config.json"), ("{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\","
                + " \"hidden_size\": 128, \"intermediate_size\": 256, \"num_hidden_layers\": 2, \"num_attention_heads\": 8,"
                + " \"num_key_value_heads\": %d, \"vocab_size\": 512, \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5,"
                + " \"tie_word_embeddings\": false}").formatted(kvHeads));
        int[][] prompts = {{1, 5, 9, 17}, {1, 3, 200, 7, 7, 40}};
        try (CausalLM one = Models.dummy(config.toString(), DType.F32, new JvmDevice(1), Models.Quantization.NONE, true);
             CausalLM split = Models.dummy(config.toString(), DType.F32, RankDevices.resolve("jvm", 8), Models.Quantization.NONE, true)) {
            compare(new GreedyRunner(one, prompts, 12, DType.F32), new GreedyRunner(split, prompts, 12, DType.F32), kvHeads + " kv heads at tp 8");
        }
    }

    /**
     * Two ranks sharing one OpenCL device (PoCL in CI), meeting in host memory: against the same
     * device at tp 1, so only the split changes (same tolerance as on the JVM).
     */
    @Test
    void ranksShareAnOpenClDevice() {
        Device cl = io.lightllm.testing.TestDevices.opencl();
        Path path = SharedData.tinyFixture("qwen2");
        List<Golden> golden = Golden.read(path);
        int[][] prompts = golden.stream().map(Golden::inputIds).toArray(int[][]::new);
        int steps = golden.getFirst().greedyIds().length;
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM one = Models.load(files, cl, Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, RankDevices.resolve(cl.id(), 2), Models.Quantization.NONE, true)) {
            assertEquals("host memory", ((TensorParallelModel) split).communicator());
            compare(new GreedyRunner(one, prompts, steps, DType.F32), new GreedyRunner(split, prompts, steps, DType.F32), cl.id() + " shared");
        }
    }

    /** Two ranks on one device: the communicator must not assume a device per rank. */
    @Test
    void ranksMayShareOneDevice() {
        Path path = SharedData.tinyFixture("llama");
        List<Golden> golden = Golden.read(path);
        int[][] prompts = golden.stream().map(Golden::inputIds).toArray(int[][]::new);
        int steps = golden.getFirst().greedyIds().length;
        Device shared = new JvmDevice(1);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM one = Models.load(files, new JvmDevice(1), Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, List.of(shared, shared), Models.Quantization.NONE, true)) {
            compare(new GreedyRunner(one, prompts, steps, DType.F32), new GreedyRunner(split, prompts, steps, DType.F32), "shared device");
        }
    }

    @Test
    void refusesASplitOfHeadsThatDoesNotDivide() {
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture("llama"), LoadOptions.quietly())) {
            ModelLoadException e = assertThrows(ModelLoadException.class,
                    () -> Models.load(files, RankDevices.resolve("jvm", 3), Models.Quantization.NONE, true));
            assertTrue(e.getMessage().contains("--tp 3 must divide the 4 attention heads"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RankDevices.resolve("jvm,jvm", 4));
        assertTrue(e.getMessage().contains("lists 2 devices but --tp is 4"), e.getMessage());
    }

    /**
     * A rank that fails between two collectives (here rank 1's first add-residual norm, right after
     * the first all-reduce, fails once) fails the step on every rank instead of leaving rank 0
     * waiting for it; the next steps run and give the one-device results.
     */
    @Test
    void aRankFailingMidStepFailsTheStepAndTheModelRecovers() {
        Path path = SharedData.tinyFixture("llama");
        List<Golden> golden = Golden.read(path);
        int[][] prompts = golden.stream().map(Golden::inputIds).toArray(int[][]::new);
        int steps = golden.getFirst().greedyIds().length;
        JvmDevice faulty = new JvmDevice(1);
        java.util.concurrent.atomic.AtomicBoolean armed = new java.util.concurrent.atomic.AtomicBoolean();
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM one = Models.load(files, new JvmDevice(1), Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, List.of(new JvmDevice(1), faulty), Models.Quantization.NONE, true)) {
            faulty.override(io.lightllm.kernels.Norms.RMS_NORM_ADD_RESIDUAL, (device, grid, args) -> {
                if (armed.getAndSet(false)) {
                    throw new IllegalStateException("injected failure on rank 1");
                }
                device.launchPortable(io.lightllm.kernels.Norms.RMS_NORM_ADD_RESIDUAL, grid, args);
            });
            armed.set(true);
            IllegalStateException e = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(60),
                    () -> assertThrows(IllegalStateException.class, () -> new GreedyRunner(split, prompts, steps, DType.F32)));
            assertEquals("injected failure on rank 1", e.getMessage(), "the step reports the rank that failed, not the ranks it woke");
            compare(new GreedyRunner(one, prompts, steps, DType.F32), new GreedyRunner(split, prompts, steps, DType.F32), "after a failed step");
        }
    }

    /** JVM ranks meet in host memory; asking for NCCL there is refused with the reason, not ignored. */
    @Test
    void choosesTheCommunicatorByDevice() {
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture("llama"), LoadOptions.quietly())) {
            try (CausalLM split = Models.load(files, RankDevices.resolve("jvm", 2), Models.Quantization.NONE, true)) {
                assertEquals("host memory", ((TensorParallelModel) split).communicator());
            }
            System.setProperty(RankGroup.PROPERTY, "nccl");
            try {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> Models.load(files, RankDevices.resolve("jvm", 2), Models.Quantization.NONE, true));
                assertTrue(e.getMessage().contains("jvm is not a CUDA device"), e.getMessage());
            } finally {
                System.clearProperty(RankGroup.PROPERTY);
            }
        }
    }

    private static void compare(GreedyRunner expected, GreedyRunner actual, String what) {
        for (int r = 0; r < expected.generated.length; r++) {
            LlamaGoldenTest.assertLogitsClose(expected.firstLogits[r], actual.firstLogits[r], TOLERANCE, what + " request " + r);
            assertArrayEquals(expected.generated[r], actual.generated[r], what + " request " + r + " greedy ids");
        }
    }
}
