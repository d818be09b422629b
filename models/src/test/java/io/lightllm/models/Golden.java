package io.lightllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.config.JsonFields;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One case of a golden.json, written by Hugging Face transformers (fp32 math on the stored
 * weights): the prompt, its input_ids, the logits at the last prompt position and the greedy
 * continuation (eos ignored).
 */
public record Golden(String prompt, int[] inputIds, float[] lastLogits, int[] greedyIds, String greedyText) {

    public static List<Golden> read(Path dir) {
        List<Golden> cases = new ArrayList<>();
        for (JsonNode c : JsonFields.read(dir.resolve("golden.json")).path("cases")) {
            float[] logits = new float[c.path("last_logits").size()];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) c.path("last_logits").get(i).asDouble();
            }
            cases.add(new Golden(c.path("prompt").asText(), ints(c.path("input_ids")), logits, ints(c.path("greedy_ids")),
                    c.path("greedy_text").asText()));
        }
        if (cases.isEmpty()) {
            throw new IllegalStateException("no cases in " + dir.resolve("golden.json"));
        }
        return cases;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
