package io.lightllm.models.vision;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.SharedData;
import org.junit.jupiter.api.Test;

/**
 * The Llava fixture's images through its preprocessor_config.json equal transformers' CLIPImageProcessorPil
 * (recorded in golden.json): Pillow's bicubic resize reproduced bit for bit, so every value agrees to the
 * golden file's 6 decimals, where one 8-bit step of a pixel would move it by ~0.015.
 */
class ImageProcessorTest {
    @Test
    void pixelValuesEqualTransformers() throws Exception {
        LlavaGolden.assertProcessorMatchesItsReference(SharedData.madeFixture("llava"));
    }

    @Test
    void bytesThatAreNoImageAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageProcessor.decode("GIF89a but not".getBytes()));
        assertTrue(e.getMessage().contains("image"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ImageProcessor.decode(new byte[0]));
    }
}
