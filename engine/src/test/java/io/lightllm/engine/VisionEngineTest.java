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
import io.lightllm.models.vision.VisionLanguageModel;
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
             VisionLanguageModel model = (VisionLanguageModel) Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            Set<Integer> eos = new HashSet<>();
            Arrays.stream(files.stopTokenIds()).forEach(eos::add);
            List<Golden> cases = Golden.read(dir);
            List<int[]> prompts = new ArrayList<>();
            for (int c = 0; c < cases.size(); c++) {
                prompts.add(model.withImages(cases.get(c).inputIds(), LlavaGolden.casePixels(golden, c)));
            }
            SamplingParams greedy = SamplingParams.builder().maxNewTokens(24).ignoreEos(true).build();
            long distinctImages = prompts.stream().flatMapToInt(Arrays::stream).filter(model::isPlaceholder).distinct().count() / model.tokensPerImage();
            boolean first = true;
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
                    // the encoder stage encoded every image before prefill (the second engine finds their features kept)
                    assertEquals(first ? distinctImages : 0, engine.imageStats().images(), "images the encoder stage encoded");
                    assertEquals(0, model.imagesEncodedInSteps(), "no step had to encode an image");
                    first = false;
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
                    assertEquals(0, engine.imageStats().pending());
                }
            }
        }
    }

    /**
     * The tower runs on an instance of its own of the language model's device (its own threads here), so the stage
     * encodes beside the steps. With room for one image's pixels, an image registered and pushed out by another before
     * it was encoded cannot be encoded: its request ends with an error from the stage (never reaching the router), the
     * other request, submitted with it, generates, and no KV slot is held afterwards.
     */
    @org.junit.jupiter.api.Test
    void anImageThatCannotBeEncodedFailsOnlyItsRequest() throws Exception {
        Path dir = SharedData.madeFixture("llava");
        JsonNode golden = JsonFields.read(dir.resolve("golden.json"));
        List<Golden> cases = Golden.read(dir);
        float[] first = LlavaGolden.casePixels(golden, 0).getFirst(), other = LlavaGolden.pixels(golden, "portrait.png");
        String previous = System.setProperty("lightllm.vision.pixels.bytes", Long.toString(4L * first.length));
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             VisionLanguageModel model = (VisionLanguageModel) Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            assertEquals(model.device().id(), model.encoderDevice().id());
            org.junit.jupiter.api.Assertions.assertNotSame(model.device(), model.encoderDevice(), "the tower has a device instance of its own");
            int[] dropped = model.withImages(cases.getFirst().inputIds(), List.of(first));
            int[] kept = model.withImages(cases.getFirst().inputIds(), List.of(other)); // pushes the first image's pixels out
            SamplingParams greedy = SamplingParams.builder().maxNewTokens(8).ignoreEos(true).build();
            try (Engine engine = Engine.start(model, EngineConfig.of(1024, Set.of()), files.tokenizer())) {
                CompletableFuture<List<Completion>> failing = CompletableFuture.supplyAsync(() -> engine.generate(dropped, greedy));
                CompletableFuture<List<Completion>> working = CompletableFuture.supplyAsync(() -> engine.generate(kept, greedy));
                Completion failed = failing.get(60, java.util.concurrent.TimeUnit.SECONDS).getFirst();
                assertEquals(FinishReason.ERROR, failed.finish());
                assertTrue(failed.error().contains("lightllm.vision.pixels.bytes"), failed.error());
                Completion done = working.get(60, java.util.concurrent.TimeUnit.SECONDS).getFirst();
                assertEquals(FinishReason.LENGTH, done.finish(), String.valueOf(done.error()));
                assertEquals(8, done.tokens().length);
                EngineStats s = engine.awaitIdle(5_000);
                assertEquals(s.capacity(), s.freeSlots() + s.cachedSlots(), "only the cache holds slots when idle");
                assertEquals(0, s.waiting());
                assertEquals(1, engine.imageStats().images());
                assertEquals(0, model.imagesEncodedInSteps());
            }
        } finally {
            if (previous == null) {
                System.clearProperty("lightllm.vision.pixels.bytes");
            } else {
                System.setProperty("lightllm.vision.pixels.bytes", previous);
            }
        }
    }
}
