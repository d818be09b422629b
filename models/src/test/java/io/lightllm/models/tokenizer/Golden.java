package io.lightllm.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.config.JsonFields;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The prompts and input_ids of a golden.json (written by transformers' tokenizer). */
record Golden(String prompt, int[] inputIds) {

    static List<Golden> read(Path dir) {
        List<Golden> cases = new ArrayList<>();
        for (JsonNode c : JsonFields.read(dir.resolve("golden.json")).path("cases")) {
            int[] ids = new int[c.path("input_ids").size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = c.path("input_ids").get(i).asInt();
            }
            cases.add(new Golden(c.path("prompt").asText(), ids));
        }
        if (cases.isEmpty()) {
            throw new IllegalStateException("no cases in " + dir.resolve("golden.json"));
        }
        return cases;
    }
}
