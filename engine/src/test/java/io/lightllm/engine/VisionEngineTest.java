package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.vision.LlavaGolden;
import io.lightllm.models.vision.LlavaModel;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Prompts with images through the engine (the tiny Llava and Qwen-VL fixtures on the JVM): the golden prompts, one image and
 * two, submitted together (one prefill step encodes all three images) give transformers' greedy tokens, also with
 * chunked prefill cutting through the images; a repeated prompt reads its image tokens' KV from the prefix cache,
 * the same text with another image does not; prompt logprobs are refused for a prompt with images. The first case
 * of both fixtures has 4 tokens before its image's placeholders (Qwen-VL's include {@code <img>}).
 */
class VisionEngineTest {
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llava", "qwenvl"})
    void imagePromptsGenerateTheGoldenTokensAndTheCacheKeysOnTheImage(String fixture) throws Exception {
        Path dir = SharedData.madeFixture(fixture);
        JsonNode golden = JsonFields.read(dir.resolve("golden.json"));
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             LlavaModel model = (LlavaModel) Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            Set<Integer> eos = new HashSet<>();
            Arrays.stream(files.stopTokenIds()).forEach(eos::add);
            List<Golden> cases = Golden.read(dir);
            List<int[]> prompts = new ArrayList<>();
            for (int c = 0; c < cases.size(); c++) {
                prompts.add(model.withImages(cases.get(c).inputIds(), LlavaGolden.casePixels(golden, c)));
            }
            SamplingParams greedy = SamplingParams.builder().maxNewTokens(24).ignoreEos(true).build();
            for (EngineConfig config : List.of(EngineConfig.of(1024, eos), EngineConfig.of(1024, eos).withChunkedPrefill(16))) {
                try (Engine engine = Engine.start(model, config, files.tokenizer())) {
                    List<CompletableFuture<PrefixCacheEngineTest.Result>> runs = new ArrayList<>();
                    for (int[] p : prompts) {
                        runs.add(CompletableFuture.supplyAsync(() -> {
                            try {
                                return PrefixCacheEngineTest.run(engine, p, greedy);
                            } catch (Exception e) {
                                throw new RuntimeException(e);
                            }
                        }));
                    }
                    for (int c = 0; c < prompts.size(); c++) {
                        assertArrayEquals(cases.get(c).greedyIds(), runs.get(c).get().tokens(), "case " + c + " with " + config);
                    }
                    PrefixCacheEngineTest.Result again = PrefixCacheEngineTest.run(engine, prompts.getFirst(), greedy);
                    assertArrayEquals(cases.getFirst().greedyIds(), again.tokens(), "the repeated prompt");
                    assertTrue(again.cachedPromptTokens() > 4, "the repeat reads its image tokens from the cache: " + again.cachedPromptTokens());
                    int[] otherImage = model.withImages(cases.getFirst().inputIds(),
                            List.of(LlavaGolden.pixels(golden, "portrait.png")));
                    PrefixCacheEngineTest.Result other = PrefixCacheEngineTest.run(engine, otherImage, greedy);
                    assertTrue(other.cachedPromptTokens() <= 4, "another image shares only the text before it: " + other.cachedPromptTokens());
                    SamplingParams scored = SamplingParams.builder().maxNewTokens(2).promptLogprobs(0).build();
                    assertThrows(IllegalArgumentException.class, () -> engine.generate(prompts.getFirst(), scored));
                    EngineStats s = engine.awaitIdle(5_000);
                    assertEquals(s.capacity(), s.freeSlots() + s.cachedSlots(), "only the cache holds slots when idle");
                }
            }
        }
    }
}
