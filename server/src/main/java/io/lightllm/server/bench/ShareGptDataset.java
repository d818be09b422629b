package io.lightllm.server.bench;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import io.lightllm.server.JsonBody;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.ToIntFunction;

/**
 * Requests from a file of conversations in ShareGPT's format (a JSON array of
 * {@code {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}, ...]}},
 * such as ShareGPT_V3_unfiltered_cleaned_split.json), sampled as vLLM's benchmark_serving does:
 * the conversations are shuffled, each one's first turn is the prompt and its second turn's
 * length in tokens is the output length, and pairs with fewer than 4 prompt or output tokens,
 * more than 1,024 prompt tokens or more than 2,048 together (or more than the model's context)
 * are skipped. Lengths are the server's own token counts ({@link BenchClient#countPromptTokens}),
 * so an output length may include the bos token the server adds to every text.
 */
final class ShareGptDataset {
    static final int MIN_TOKENS = 4;
    static final int MAX_PROMPT_TOKENS = 1024;
    static final int MAX_TOTAL_TOKENS = 2048;

    /** A conversation's first two turns. */
    record Turns(String prompt, String completion) { }

    private ShareGptDataset() {
    }

    /** The first two turns of every conversation that has them, read as a stream (the usual file is 650 MB). */
    static List<Turns> read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--dataset-path " + file + ": no such file");
        }
        List<Turns> out = new ArrayList<>();
        try (JsonParser p = JsonBody.MAPPER.getFactory().createParser(file.toFile())) {
            if (p.nextToken() != JsonToken.START_ARRAY) {
                throw new IllegalArgumentException("--dataset-path " + file + ": expected a JSON array of conversations (ShareGPT's format)");
            }
            ObjectReader element = JsonBody.MAPPER.reader().without(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
            while (p.nextToken() == JsonToken.START_OBJECT) {
                JsonNode c = element.readTree(p);
                JsonNode turns = c.path("conversations");
                if (turns.size() >= 2 && turns.get(0).path("value").isTextual() && turns.get(1).path("value").isTextual()) {
                    out.add(new Turns(turns.get(0).get("value").textValue(), turns.get(1).get("value").textValue()));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("--dataset-path " + file + ": " + e.getMessage(), e);
        }
        return out;
    }

    /**
     * {@code n} requests from {@code conversations} in a seeded random order, measured with
     * {@code countTokens} (which returns {@link PromptBuilder#TOO_LONG} for a text beyond the context).
     */
    static List<LoadGenerator.Work> sample(List<Turns> conversations, int n, int context, ToIntFunction<String> countTokens, Random rng,
            Runnable onePrepared) {
        List<Turns> order = new ArrayList<>(conversations);
        Collections.shuffle(order, rng);
        List<LoadGenerator.Work> out = new ArrayList<>();
        for (Turns t : order) {
            if (out.size() == n) {
                break;
            }
            if (t.prompt().isEmpty() || t.completion().isEmpty()) {
                continue;
            }
            int prompt = countTokens.applyAsInt(t.prompt());
            int output = prompt == PromptBuilder.TOO_LONG ? PromptBuilder.TOO_LONG : countTokens.applyAsInt(t.completion());
            if (prompt < MIN_TOKENS || output < MIN_TOKENS || prompt > MAX_PROMPT_TOKENS || prompt + output > Math.min(MAX_TOTAL_TOKENS, context)) {
                continue;
            }
            out.add(new LoadGenerator.Work(new PromptBuilder.Prompt(t.prompt(), prompt), output));
            onePrepared.run();
        }
        if (out.size() < n) {
            throw new IllegalArgumentException("the dataset has " + out.size() + " usable conversations (first turn " + MIN_TOKENS + " to "
                    + MAX_PROMPT_TOKENS + " tokens, reply at least " + MIN_TOKENS + ", both within " + Math.min(MAX_TOTAL_TOKENS, context)
                    + "); --num-prompts asks for " + n);
        }
        return out;
    }
}
