package io.lightllm.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.decoder.TensorParallelModel;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.cuda.CudaBackend;
import io.lightllm.tornado.cuda.NcclGroup;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code --tp 2} on two GPUs with NCCL against {@code --tp 1} on the first: first-step logits
 * within {@link TensorParallelTest}'s tolerance (the same reasoning: only the order of the o and
 * down sums changes) and greedy ids identical, decode steps recorded as CUDA graphs that contain
 * the all-reduces. Needs two GPUs and libnccl (scripts/tp-check.sh).
 */
@Tag("gpu")
class TensorParallelGpuTest {
    private static final float TOLERANCE = 1e-4f;

    @BeforeAll
    static void twoGpusWithNccl() {
        Assumptions.assumeTrue(CudaBackend.INSTANCE.unavailableReason().isEmpty(), "CUDA unavailable");
        Assumptions.assumeTrue(CudaBackend.INSTANCE.devices().size() >= 2, "needs two GPUs");
        Assumptions.assumeTrue(NcclGroup.unavailableReason().isEmpty(), () -> "NCCL unavailable: " + NcclGroup.unavailableReason().get());
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("llama", SharedData.tinyFixture("llama")),
                Arguments.of("qwen2", SharedData.tinyFixture("qwen2")),
                Arguments.of("llama3_tied", SharedData.tinyFixture("llama3_tied")),
                Arguments.of("stories260K", SharedData.model("stories260K")));
    }

    /**
     * A rank that fails mid-step on a GPU: the step fails with its exception, the NCCL
     * communicators are aborted (rank 0's queued all-reduce would wait forever) and made anew, and
     * the decode steps recorded with the old ones are dropped; then the model gives the one-GPU
     * results again. The failure is injected into rank 1's first add-residual norm of a prefill,
     * right after the first all-reduce, once the decode steps have been recorded.
     */
    @org.junit.jupiter.api.Test
    void aFailedStepAbortsAndReconnects() {
        Path path = SharedData.tinyFixture("llama");
        List<Golden> golden = Golden.read(path);
        int steps = golden.getFirst().greedyIds().length;
        int[][] prompts = golden.stream().map(Golden::inputIds).toArray(int[][]::new);
        java.util.concurrent.atomic.AtomicBoolean armed = new java.util.concurrent.atomic.AtomicBoolean();
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM one = Models.load(files, RankDevices.resolve("cuda:0", 1), Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, RankDevices.resolve("cuda:0,1", 2), Models.Quantization.NONE, true)) {
            io.lightllm.tornado.runtime.Device rank1 = io.lightllm.tornado.runtime.Devices.get("cuda:1");
            rank1.override(io.lightllm.kernels.Norms.RMS_NORM_ADD_RESIDUAL, (device, grid, args) -> {
                if (armed.getAndSet(false)) {
                    throw new IllegalStateException("injected failure on rank 1");
                }
                device.launchPortable(io.lightllm.kernels.Norms.RMS_NORM_ADD_RESIDUAL, grid, args);
            });
            GreedyRunner expected = new GreedyRunner(one, prompts, steps, DType.F32);
            new GreedyRunner(split, prompts, steps, DType.F32); // records the decode steps
            armed.set(true);
            IllegalStateException e = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(90),
                    () -> org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                            () -> new GreedyRunner(split, prompts, steps, DType.F32)));
            assertEquals("injected failure on rank 1", e.getMessage());
            GreedyRunner after = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(90),
                    () -> new GreedyRunner(split, prompts, steps, DType.F32));
            for (int r = 0; r < prompts.length; r++) {
                LlamaGoldenTest.assertLogitsClose(expected.firstLogits[r], after.firstLogits[r], TOLERANCE, "after a failed step, request " + r);
                assertArrayEquals(expected.generated[r], after.generated[r], "after a failed step, request " + r + " greedy ids");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void ncclTp2MatchesOneGpu(String name, Path path) {
        List<Golden> golden = Golden.read(path);
        int steps = golden.getFirst().greedyIds().length;
        int[][] prompts = golden.stream().map(Golden::inputIds).toArray(int[][]::new);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM one = Models.load(files, RankDevices.resolve("cuda:0", 1), Models.Quantization.NONE, true);
             CausalLM split = Models.load(files, RankDevices.resolve("cuda:0,cuda:1", 2), Models.Quantization.NONE, true)) {
            assertEquals("nccl", ((TensorParallelModel) split).communicator().split(" ")[0]);
            GreedyRunner expected = new GreedyRunner(one, prompts, steps, DType.F32);
            GreedyRunner actual = new GreedyRunner(split, prompts, steps, DType.F32);
            for (int r = 0; r < prompts.length; r++) {
                LlamaGoldenTest.assertLogitsClose(expected.firstLogits[r], actual.firstLogits[r], TOLERANCE, name + " request " + r);
                assertArrayEquals(expected.generated[r], actual.generated[r], name + " request " + r + " greedy ids");
            }
        }
    }
}
