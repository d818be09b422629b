package io.lightllm.models.vision;

import static io.lightllm.models.llama.LlamaGoldenTest.assertMatchesGolden;
import static io.lightllm.models.llama.LlamaGoldenTest.tolerance;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A vision fixture's golden.json beyond the text cases (the reference processor's pixel values, by image and by
 * case), and the golden check every vision model's test makes with them.
 */
public final class LlavaGolden {
    private LlavaGolden() {
    }

    /** The pixel values transformers' processor made of {@code image} (a file name of the fixture). */
    public static float[] pixels(JsonNode golden, String image) {
        JsonNode array = golden.path("pixel_values").path(image);
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).floatValue();
        }
        return out;
    }

    /** The pixel values of case {@code c}'s images, in the order its prompt holds them. */
    public static List<float[]> casePixels(JsonNode golden, int c) {
        List<float[]> out = new ArrayList<>();
        for (JsonNode name : golden.path("cases").get(c).path("images")) {
            out.add(pixels(golden, name.asText()));
        }
        return out;
    }

    /**
     * The vision model of the made fixture {@code dir} on {@code devices} against its golden cases: each case's
     * prompt with its images placed ({@link VisionLanguageModel#withImages}), last-position logits within the bf16
     * tolerance and the greedy tokens identical, alone and batched. {@code imageIdKey}: the golden.json field
     * holding the image token id the model must report.
     */
    static void assertMatchesItsReference(Path dir, List<Device> devices, String imageIdKey, String what) {
        JsonNode golden = JsonFields.read(dir.resolve("golden.json"));
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             CausalLM model = Models.load(files, devices, Models.Quantization.NONE, true)) {
            VisionLanguageModel vl = (VisionLanguageModel) model;
            assertEquals(golden.path(imageIdKey).asInt(), vl.imageTokenIndex());
            List<Golden> cases = new ArrayList<>();
            List<Golden> recorded = Golden.read(dir);
            for (int c = 0; c < recorded.size(); c++) {
                Golden g = recorded.get(c);
                cases.add(new Golden(g.prompt(), vl.withImages(g.inputIds(), casePixels(golden, c)), g.lastLogits(), g.greedyIds(), g.greedyText()));
            }
            assertMatchesGolden(model, cases, tolerance(DType.BF16), what);
        }
    }

    /**
     * The fixture's two images through its own preprocessing ({@link ImageProcessor#load}) against the pixel values the
     * reference recorded: every value within 1.5e-6 (the golden file's 6 decimals; one 8-bit step of a pixel moves a
     * value by ~0.015).
     */
    static void assertProcessorMatchesItsReference(Path dir) throws IOException {
        JsonNode golden = JsonFields.read(dir.resolve("golden.json")).path("pixel_values");
        ImageProcessor processor = ImageProcessor.load(dir);
        for (String name : new String[] {"landscape.png", "portrait.png"}) {
            float[] pixels = processor.process(ImageProcessor.decode(Files.readAllBytes(dir.resolve(name))));
            JsonNode expected = golden.path(name);
            assertEquals(expected.size(), pixels.length, name);
            float worst = 0;
            for (int i = 0; i < pixels.length; i++) {
                worst = Math.max(worst, Math.abs(pixels[i] - expected.get(i).floatValue()));
            }
            assertTrue(worst <= 1.5e-6f, name + ": largest difference " + worst);
        }
    }
}
