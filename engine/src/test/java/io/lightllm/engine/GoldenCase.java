package io.lightllm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.config.JsonFields;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** One case of a model's golden.json (Hugging Face transformers): the prompt's ids and the greedy continuation with eos ignored. */
record GoldenCase(int[] inputIds, int[] greedyIds) {

    static List<GoldenCase> read(Path modelDir) {
        List<GoldenCase> cases = new ArrayList<>();
        for (JsonNode c : JsonFields.read(modelDir.resolve("golden.json")).path("cases")) {
            cases.add(new GoldenCase(ints(c.path("input_ids")), ints(c.path("greedy_ids"))));
        }
        if (cases.isEmpty()) {
            throw new IllegalStateException("no cases in " + modelDir.resolve("golden.json"));
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
