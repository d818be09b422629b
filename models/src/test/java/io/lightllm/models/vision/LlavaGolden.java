package io.lightllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/** The Llava fixture's golden.json beyond the text cases: the reference processor's pixel values, by image and by case. */
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
}
