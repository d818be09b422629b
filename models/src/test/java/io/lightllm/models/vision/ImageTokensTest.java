package io.lightllm.models.vision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.tornado.api.FloatArray;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The image cache's bookkeeping with a stand-in encoder (each feature row is its image's first pixel plus the
 * row number): ids follow content, the images a step needs are encoded together and once, features dropped by
 * the budget are encoded again from the pixels, and only an image whose pixels were dropped is an error.
 */
class ImageTokensTest {
    private static final int VOCAB = 100, PER_IMAGE = 3, WIDTH = 2;

    private final List<Integer> batches = new ArrayList<>();

    private float[] encode(List<float[]> images) {
        batches.add(images.size());
        float[] out = new float[images.size() * PER_IMAGE * WIDTH];
        for (int i = 0; i < images.size(); i++) {
            for (int r = 0; r < PER_IMAGE; r++) {
                out[(i * PER_IMAGE + r) * WIDTH] = images.get(i)[0] + r;
            }
        }
        return out;
    }

    /** What a step does: encode the images without features, then read the rows. */
    private FloatArray rows(ImageTokens t, int[] ids) {
        t.encodeMissing(ids, this::encode);
        return t.rows(ids);
    }

    private static float[] image(float v) {
        return new float[] {v, 0, 0, 0}; // 16 bytes of pixels
    }

    @Test
    void encodesOnceTogetherAgainWhenDroppedAndFailsOnlyWithoutPixels() {
        // features: room for two images (2 x 3 rows x 2 floats x 4 bytes); pixels: room for two images
        ImageTokens t = new ImageTokens(VOCAB, PER_IMAGE, 2 * PER_IMAGE * WIDTH * 4, 2 * 16);
        int[] a = t.register(image(10)), b = t.register(image(20));
        assertArrayEquals(new int[] {100, 101, 102}, a);
        assertArrayEquals(a, t.register(image(10)), "the same pixels, the same ids");
        FloatArray rows = rows(t, new int[] {a[2], b[0], a[0]}); // row i at i * WIDTH
        assertEquals(List.of(2), batches, "both images in one encoder call");
        assertEquals(12f, rows.get(0));
        assertEquals(20f, rows.get(WIDTH));
        assertEquals(10f, rows.get(2 * WIDTH));
        rows(t, new int[] {a[1]});
        assertEquals(List.of(2), batches, "encoded features are kept");
        int[] c = t.register(image(30)); // a's pixels go: the encoder read a's before b's
        rows(t, new int[] {c[0]}); // c's features push out b's: the rows read b before a
        assertEquals(List.of(2, 1), batches);
        assertEquals(21f, rows(t, new int[] {b[1]}).get(0), "b's features were dropped: encoded again from its pixels");
        assertEquals(List.of(2, 1, 1), batches);
        // b's features push out a's, whose pixels are gone too
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> rows(t, new int[] {a[0]}));
        assertTrue(e.getMessage().contains("lightllm.vision.pixels.bytes"), e.getMessage());
        assertArrayEquals(a, t.register(image(10)), "a given again: its ids come back");
        assertEquals(10f, rows(t, new int[] {a[0]}).get(0), "and it is encoded again");
        assertEquals(List.of(2, 1, 1, 1), batches);
        assertThrows(IllegalStateException.class, () -> rows(t, new int[] {VOCAB + 99}), "an id never given");
        assertEquals(0, t.unencoded(new int[] {a[0], a[1]}));
        assertEquals(1, t.unencoded(new int[] {c[0], b[2], c[1], a[0]}), "a's features pushed out c's, the least recently read");
    }
}
