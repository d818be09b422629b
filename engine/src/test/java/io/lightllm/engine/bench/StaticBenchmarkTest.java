package io.lightllm.engine.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import org.junit.jupiter.api.Test;

/**
 * The static benchmark prefills a batch too large for one step in several steps of whole requests (a batch of 256 x 512
 * tokens failed on the H200: one step's gate/up output past int indexing): the split must not change what the prefill
 * samples for any request, nor the KV slots the batch ends up holding.
 */
class StaticBenchmarkTest {
    @Test
    void aPrefillSplitIntoStepsSamplesWhatOneStepDoes() throws Exception {
        try (ModelFiles files = ModelFiles.open(SharedData.model("stories260K"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            StaticBenchmark.Result whole = StaticBenchmark.run(model, 7, 12, 3, DType.F32, 5, false, 7 * 12, StaticBenchmark.Decoding.GREEDY);
            // 25 tokens a step: two requests of 12 a step, four steps, the last with one request
            StaticBenchmark.Result split = StaticBenchmark.run(model, 7, 12, 3, DType.F32, 5, false, 25, StaticBenchmark.Decoding.GREEDY);
            assertArrayEquals(whole.firstTokens(), split.firstTokens());
            assertEquals(whole.peakKvTokens(), split.peakKvTokens());
            assertEquals(7, split.firstTokens().length);
        }
    }

    /**
     * A longer warm-up (the run repeated until it has decoded at least that many steps, its slots freed each time) and a
     * table of longer rows change nothing the measured run computes: the same first tokens and the same KV slots at peak.
     */
    @Test
    void aLongerWarmUpAndLongerTableRowsComputeTheSame() throws Exception {
        try (ModelFiles files = ModelFiles.open(SharedData.model("stories260K"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            StaticBenchmark.Result once = StaticBenchmark.run(model, 3, 9, 4, DType.F32, 3, false, StaticBenchmark.Decoding.GREEDY);
            StaticBenchmark.Result warmed = StaticBenchmark.run(model, 3, 9, 4, DType.F32, 3, false, StaticBenchmark.Decoding.GREEDY,
                    new StaticBenchmark.Setup(200, 20));
            assertArrayEquals(once.firstTokens(), warmed.firstTokens());
            assertEquals(once.peakKvTokens(), warmed.peakKvTokens(), "every warm-up run's slots were freed");
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new StaticBenchmark.Setup(0, -1));
        }
    }

    /**
     * Sampled runs (bench static --temperature): top-k 1 keeps only the most likely token, so the draw picks what the greedy
     * argmax picks whatever the uniform number; a wider sample picks tokens of the vocabulary.
     */
    @Test
    void aSampledRunWithTopKOnePicksTheGreedyTokens() throws Exception {
        try (ModelFiles files = ModelFiles.open(SharedData.model("stories260K"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            StaticBenchmark.Result greedy = StaticBenchmark.run(model, 5, 9, 2, DType.F32, 3, false, StaticBenchmark.Decoding.GREEDY);
            StaticBenchmark.Result topOne = StaticBenchmark.run(model, 5, 9, 2, DType.F32, 3, false, new StaticBenchmark.Decoding(0.8f, 1, 1f));
            assertArrayEquals(greedy.firstTokens(), topOne.firstTokens());
            StaticBenchmark.Result wide = StaticBenchmark.run(model, 5, 9, 2, DType.F32, 3, false, new StaticBenchmark.Decoding(1f, 50, 0.9f));
            for (int id : wide.firstTokens()) {
                org.junit.jupiter.api.Assertions.assertTrue(id >= 0 && id < model.vocabSize(), "token " + id);
            }
        }
    }
}
