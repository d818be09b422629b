package io.lightllm.models.vision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Llava-1.5 against transformers' LlavaForConditionalGeneration on the project's tiny fixture
 * ({@code scripts/fixtures/make_llava.py}: a CLIP tower of 25 patches, the MLP projector, a Llama), prompts
 * with one image and with two: last-position logits within {@link io.lightllm.models.llama.LlamaGoldenTest#tolerance}
 * and 24 greedy tokens identical, alone and batched, on the JVM and every accelerator. The pixel values are the
 * reference processor's (recorded), so this checks the model; {@link ImageProcessorTest} checks the pixels.
 * Another image moves these logits by 0.029, ten times the tolerance.
 */
class LlavaGoldenTest {
    static Stream<String> devices() {
        return Stream.concat(Stream.of("jvm"), TestDevices.accelerators().stream());
    }

    @ParameterizedTest(name = "llava on {0}")
    @MethodSource("devices")
    void matchesTransformers(String deviceId) {
        matchesTransformers(List.of(Devices.get(deviceId)), "llava on " + deviceId);
    }

    /** Two JVM ranks: the language model split, the tower on rank 0, every rank placing the same features. */
    @Test
    void matchesTransformersAtTp2() {
        matchesTransformers(RankDevices.resolve("jvm", 2), "llava at tp 2");
    }

    private static void matchesTransformers(List<Device> devices, String what) {
        LlavaGolden.assertMatchesItsReference(SharedData.madeFixture("llava"), devices, "image_token_index", what);
    }

    @Test
    void theSameImageGetsTheSameIdsAndAnotherImageOthers() {
        Path dir = SharedData.madeFixture("llava");
        JsonNode golden = JsonFields.read(dir.resolve("golden.json"));
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             VisionLanguageModel llava = (VisionLanguageModel) Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            assertEquals(Architectures.LLAVA, Architectures.of(files.config()));
            int[] a = llava.imageTokens(LlavaGolden.pixels(golden, "landscape.png"));
            int[] b = llava.imageTokens(LlavaGolden.pixels(golden, "portrait.png"));
            assertEquals(25, a.length);
            assertArrayEquals(a, llava.imageTokens(LlavaGolden.pixels(golden, "landscape.png")), "same pixels, same ids (the prefix cache keys on them)");
            assertTrue(b[0] >= a[a.length - 1] + 1 || b[b.length - 1] < a[0], "another image, other ids");
            assertTrue(llava.isPlaceholder(a[3]) && !llava.isPlaceholder(5) && !llava.isPlaceholder(b[b.length - 1] + 1));
            int image = llava.imageTokenIndex();
            assertThrows(IllegalArgumentException.class, () -> llava.withImages(new int[] {0, image, image}, List.of(LlavaGolden.pixels(golden, "portrait.png"))),
                    "two image tokens, one image");
            assertThrows(IllegalArgumentException.class, () -> llava.imageTokens(new float[12]), "pixels of the wrong size");
            assertFalse(llava.isPlaceholder(-1));
        }
    }
}
