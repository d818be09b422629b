package io.lightllm.models.vision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.config.JsonFields;
import io.lightllm.testing.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The Llava fixture's images through its preprocessor_config.json equal transformers' CLIPImageProcessorPil
 * (recorded in golden.json): Pillow's bicubic resize reproduced bit for bit, so every value agrees to the
 * golden file's 6 decimals, where one 8-bit step of a pixel would move it by ~0.015.
 */
class ImageProcessorTest {
    @Test
    void pixelValuesEqualTransformers() throws Exception {
        Path dir = SharedData.madeFixture("llava");
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

    @Test
    void bytesThatAreNoImageAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageProcessor.decode("GIF89a but not".getBytes()));
        assertTrue(e.getMessage().contains("image"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ImageProcessor.decode(new byte[0]));
    }
}
