package io.lightllm.models.vision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Qwen-VL against Qwen-VL-Chat's published code (modeling_qwen.py, visual.py) on the project's tiny fixture
 * ({@code scripts/fixtures/make_qwenvl.py}: a 2-layer ViT of 36 patches whose position table is interpolated from
 * 16 x 16, a Resampler of 16 queries (its sin-cos table interpolated from 4 x 4 to the 6 x 6 patches), a 1-layer
 * QWen), prompts with one {@code <img>...</img>} and with two: last-position logits within
 * {@link io.lightllm.models.llama.LlamaGoldenTest#tolerance} and 24 greedy tokens identical, alone and batched, on
 * the JVM and every accelerator, and at tp 2. The pixel values are the reference's (recorded); the Java
 * preprocessing is checked against them separately. Another image moves these logits by 0.027 to 0.05.
 */
class QwenVlGoldenTest {
    static Stream<String> devices() {
        return Stream.concat(Stream.of("jvm"), TestDevices.accelerators().stream());
    }

    @ParameterizedTest(name = "qwen-vl on {0}")
    @MethodSource("devices")
    void matchesThePublishedCode(String deviceId) {
        matchesThePublishedCode(List.of(Devices.get(deviceId)), "qwen-vl on " + deviceId);
    }

    /** Two JVM ranks: the language model split, the tower on rank 0, every rank placing the same features. */
    @Test
    void matchesThePublishedCodeAtTp2() {
        matchesThePublishedCode(RankDevices.resolve("jvm", 2), "qwen-vl at tp 2");
    }

    private static void matchesThePublishedCode(List<Device> devices, String what) {
        LlavaGolden.assertMatchesItsReference(SharedData.madeFixture("qwenvl"), devices, "image_start_id", what);
    }

    /** The tower alone: the first 256 feature values of each image (ViT, Resampler, ln_post, proj) as the reference's. */
    @Test
    void featuresMatchThePublishedCode() {
        Path dir = SharedData.madeFixture("qwenvl");
        JsonNode golden = JsonFields.read(dir.resolve("golden.json"));
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             VisionLanguageModel vl = (VisionLanguageModel) Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            assertEquals(Architectures.QWEN_VL, Architectures.of(files.config()));
            assertEquals(16, vl.tokensPerImage());
            assertEquals(42, vl.imageSize());
            for (String image : new String[] {"landscape.png", "portrait.png"}) {
                float[] features = vl.encode(List.of(LlavaGolden.pixels(golden, image)));
                JsonNode expected = golden.path("features").path(image);
                float worst = 0;
                for (int i = 0; i < expected.size(); i++) {
                    worst = Math.max(worst, Math.abs(features[i] - expected.get(i).floatValue()) / Math.max(1f, Math.abs(expected.get(i).floatValue())));
                }
                assertTrue(worst < 2e-4f, image + ": features differ by " + worst + " (relative)");
            }
        }
    }

    /**
     * The shapes {@code --load-format dummy} makes for Qwen-VL (TensorShapes) are the ones the tower loads: the fixture's
     * config with random weights encodes an image; the qwen-vl-chat preset (Qwen-VL-Chat's config.json) has its 9.66B
     * parameters (the language model's 7.7B and the visual module's 1.94B).
     */
    @Test
    void dummyWeightsHaveTheShapesTheTowerLoads() {
        Path dir = SharedData.madeFixture("qwenvl");
        try (CausalLM dummy = Models.dummy(dir.resolve("config.json").toString(), DType.BF16, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            float[] features = ((VisionLanguageModel) dummy.unwrap()).encode(List.of(new float[3 * 42 * 42]));
            assertEquals(16 * 128, features.length);
        }
        var c = Models.dummyConfig("qwen-vl-chat");
        assertEquals(Architectures.QWEN_VL, Architectures.of(c));
        long all = 0, visual = 0;
        for (var e : io.lightllm.models.decoder.TensorShapes.of(Architectures.QWEN_VL, c).entrySet()) {
            long n = java.util.Arrays.stream(e.getValue()).reduce(1, (a, b) -> a * b);
            all += n;
            visual += e.getKey().startsWith("transformer.visual.") ? n : 0;
        }
        assertEquals(9.66e9, all, 0.01e9, "Qwen-VL-Chat's parameters");
        assertEquals(1.94e9, visual, 0.01e9, "its visual module's");
    }

    /** visual.py's transform (PIL bicubic to 42 x 42, ToTensor, Normalize), read from config.json's visual.image_size. */
    @Test
    void pixelValuesEqualThePublishedTransform() throws Exception {
        LlavaGolden.assertProcessorMatchesItsReference(SharedData.madeFixture("qwenvl"));
    }

    @Test
    void imageSpansMustBeClosedAndMatchTheImages() {
        Path dir = SharedData.madeFixture("qwenvl");
        JsonNode golden = JsonFields.read(dir.resolve("golden.json"));
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             VisionLanguageModel vl = (VisionLanguageModel) Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
            int start = vl.imageTokenIndex(), end = vl.imageEndIndex();
            float[] pixels = LlavaGolden.pixels(golden, "portrait.png");
            int[] ids = vl.withImages(new int[] {5, start, end, 6}, List.of(pixels));
            assertEquals(2 + 2 + 16, ids.length, "an empty span becomes the image's 16 ids");
            io.lightllm.models.Golden recorded = io.lightllm.models.Golden.read(dir).getFirst();
            assertEquals(recorded.inputIds().length, vl.withImages(recorded.inputIds(), LlavaGolden.casePixels(golden, 0)).length,
                    "the reference's spans (16 pad ids between the tags) keep their length");
            assertTrue(vl.isPlaceholder(ids[2]) && ids[ids.length - 2] == end);
            assertThrows(IllegalArgumentException.class, () -> vl.withImages(new int[] {5, start, 7, 6}, List.of(pixels)), "not closed");
            assertThrows(IllegalArgumentException.class, () -> vl.withImages(new int[] {5, end, 6}, List.of()), "closed, never opened");
            assertThrows(IllegalArgumentException.class, () -> vl.withImages(new int[] {start, end, start, end}, List.of(pixels)), "two spans, one image");
            assertThrows(IllegalArgumentException.class, () -> vl.withImages(new int[] {5, 6}, List.of(pixels)), "no span, one image");
        }
    }

    /** torch's bicubic interpolation (align_corners=False, a = -0.75, borders clamped), up and down, as torch 2.13 computes it. */
    @Test
    void positionTablesAreInterpolatedAsTorchDoes() {
        // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode="bicubic", align_corners=False)
        float[] up = {-0.31640625f, 0.015625f, 0.5625f, 0.89453125f, 0.34765625f, 0.6796875f, 1.2265625f, 1.55859375f,
            1.44140625f, 1.7734375f, 2.3203125f, 2.65234375f, 2.10546875f, 2.4375f, 2.984375f, 3.31640625f};
        assertInterpolated(new float[] {0, 1, 2, 3}, 4, up);
        // torch.arange(16.).reshape(1, 1, 4, 4) ** 1.5 to 3 x 3
        float[] table = new float[16];
        for (int i = 0; i < 16; i++) {
            table[i] = (float) Math.pow(i, 1.5);
        }
        float[] down = {1.044040322303772f, 3.093446969985962f, 6.464963912963867f, 14.774772644042969f, 20.20658302307129f, 26.165307998657227f,
            39.755760192871094f, 46.95705795288086f, 54.593955993652344f};
        assertInterpolated(table, 3, down);
        FloatArray same = FloatArray.fromArray(new float[] {0, 1, 2, 3});
        assertEquals(same, QwenVisionTower.bicubic(same, 1, 2), "the same size: the table itself");
    }

    private static void assertInterpolated(float[] table, int to, float[] expected) {
        FloatArray out = QwenVisionTower.bicubic(FloatArray.fromArray(table), 1, to);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], out.get(i), 2e-5f * Math.max(1, Math.abs(expected[i])), "value " + i);
        }
    }
}
