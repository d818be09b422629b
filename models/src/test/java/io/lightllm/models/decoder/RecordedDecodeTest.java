package io.lightllm.models.decoder;

import static io.lightllm.models.llama.LlamaGoldenTest.assertMatchesGolden;
import static io.lightllm.models.llama.LlamaGoldenTest.tolerance;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.GreedyRunner;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.jvm.JvmDevice;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Decode steps replayed from recordings, which is how a GPU runs every decode step (CUDA graphs), on a JVM device that
 * records ({@code new JvmDevice(threads, true)}: it keeps a step's launches with their arguments frozen and refuses what
 * a graph cannot hold, so a step that records here records on a GPU). Each fixture's golden greedy tokens and logits come
 * out of the recorded steps, alone and batched (batch sizes, buckets of context and the mixture of experts' routing
 * each recorded and replayed); a batch runs as one of the recorded sizes, padded; and a recording is sized for the
 * context it serves, not the token table's row length.
 */
class RecordedDecodeTest {
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama", "mistral", "bloom", "stablelm", "mixtral"})
    void recordedStepsDecodeTheGoldenTokens(String fixture) {
        Path path = SharedData.tinyFixture(fixture);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM model = Models.load(files, new JvmDevice(2, true), Models.Quantization.NONE, true)) {
            String embedding = ((DecoderModel) model).architecture().embeddings().tokens() + ".weight";
            assertMatchesGolden(model, Golden.read(path), tolerance(files.weights().get(embedding).type().dtype()), fixture + ", recorded");
            assertFalse(((DecoderModel) model).recordedSteps().isEmpty(), fixture + ": the decode steps were recorded");
        }
    }

    /**
     * In a table of 4,096-token rows (a server's table is as long as the model's context), a request of 21 prompt tokens
     * decodes 23 steps at contexts of 22-44 tokens: with splits of 16 tokens (tuning), recorded for 32 and then 64 tokens
     * (2 and 4 splits), where one recording sized for the table took 64 splits (the most), nearly all empty, and a merge
     * over them every layer.
     */
    @Test
    void aRecordingIsSizedForTheContextNotTheTable() {
        Path path = SharedData.tinyFixture("llama");
        Golden first = Golden.read(path).getFirst();
        assertEquals(21, first.inputIds().length, "the fixture's first prompt");
        TestProperties.with(Map.of("lightllm.tuning.jvm.attention.split_len", "16"), () -> {
            try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
                 CausalLM model = Models.load(files, new JvmDevice(2, true), Models.Quantization.NONE, true)) {
                GreedyRunner run = new GreedyRunner(model, new int[][] {first.inputIds()}, first.greedyIds().length, DType.F32, 4096);
                assertArrayEquals(first.greedyIds(), run.generated[0], "greedy tokens");
                List<Integer> splits = ((DecoderModel) model).recordedSteps().stream().map(s -> s.splits().splits()).toList();
                assertEquals(List.of(2, 4), splits, "splits of the recordings, in the order they were made");
            }
        });
    }

    /**
     * Three of the fixture's prompts decode together as a recorded step of four requests, the fourth a padding request
     * (a token into the pool's padding slot, in the table's padding row): their tokens are the golden ones, a model with
     * experts routes the padding token too, and the only recordings are of four requests.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama", "mixtral"})
    void aBatchOfThreeDecodesAsARecordedStepOfFour(String fixture) {
        Path path = SharedData.tinyFixture(fixture);
        List<Golden> cases = Golden.read(path).subList(0, 3);
        try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
             CausalLM model = Models.load(files, new JvmDevice(2, true), Models.Quantization.NONE, true)) {
            GreedyRunner run = new GreedyRunner(model, cases.stream().map(Golden::inputIds).toArray(int[][]::new), cases.getFirst().greedyIds().length,
                    DType.F32);
            for (int c = 0; c < cases.size(); c++) {
                assertArrayEquals(cases.get(c).greedyIds(), run.generated[c], fixture + " case " + c);
            }
            List<DecoderModel.RecordedStep> steps = ((DecoderModel) model).recordedSteps();
            assertFalse(steps.isEmpty());
            assertTrue(steps.stream().allMatch(s -> s.requests() == 4), "recorded for four requests: " + steps);
        }
    }

    @Test
    void recordedSizesAreOneTwoFourAndMultiplesOfEight() {
        int[][] cases = {{1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {8, 8}, {9, 16}, {16, 16}, {17, 24}, {250, 256}, {257, 264}};
        for (int[] c : cases) {
            assertEquals(c[1], DecoderModel.recordedRequests(c[0]), "requests " + c[0]);
        }
        assertThrows(IllegalArgumentException.class, () -> DecoderModel.recordedRequests(0));
    }

    @Test
    void theRecordedLengthIsTheNextPowerOfTwoWithinTheTable() {
        assertEquals(1, DecoderModel.recordedLength(1, 4096));
        assertEquals(32, DecoderModel.recordedLength(32, 4096));
        assertEquals(64, DecoderModel.recordedLength(33, 4096));
        assertEquals(4096, DecoderModel.recordedLength(3000, 4096));
        assertEquals(3000, DecoderModel.recordedLength(2049, 3000), "at most the table's row length");
        assertEquals(3000, DecoderModel.recordedLength(3000, 3000));
        assertThrows(IllegalArgumentException.class, () -> DecoderModel.recordedLength(3001, 3000));
        assertThrows(IllegalArgumentException.class, () -> DecoderModel.recordedLength(0, 3000));
    }
}
