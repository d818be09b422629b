package io.lightllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.tokenizer.IncrementalDetokenizer;
import io.lightllm.models.weights.Tensor;
import io.lightllm.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelFilesTest {
    private static final Path STORIES = SharedData.model("stories260K");

    @Test
    void hfDirectory() {
        try (ModelFiles m = ModelFiles.open(STORIES, LoadOptions.quietly())) {
            assertEquals(ModelFiles.Format.HF_SAFETENSORS, m.format());
            assertEquals("llama", m.config().modelType());
            assertFalse(m.config().rotaryInterleaved());
            Tensor embed = m.weights().get("model.embed_tokens.weight");
            assertArrayEquals(new long[] {512, 64}, embed.shape());
            assertArrayEquals(new int[] {1, 403, 407, 261, 378}, m.tokenizer().encode("Once upon a time", true));
            assertArrayEquals(new int[] {2}, m.stopTokenIds());
        }
    }

    @Test
    void ggufFileAlone() {
        try (ModelFiles m = ModelFiles.open(STORIES.resolve("stories260K.gguf"), LoadOptions.quietly())) {
            assertEquals(ModelFiles.Format.GGUF, m.format());
            assertTrue(m.config().rotaryInterleaved());
            assertEquals(47 + 1, m.weights().names().size()); // its own lm_head (output.weight) besides the 47 HF tensors
            assertArrayEquals(new int[] {1, 403, 407, 261, 378}, m.tokenizer().encode("Once upon a time", true));
            assertArrayEquals(new int[] {2}, m.stopTokenIds());
            assertEquals(1, m.generationConfig().bosTokenId());
        }
    }

    @Test
    void everyTinyFixtureLoads() {
        for (String arch : List.of("llama", "llama3_tied", "mistral", "qwen2", "bloom", "starcoder", "mixtral", "stablelm")) {
            try (ModelFiles m = ModelFiles.open(SharedData.tinyFixture(arch), LoadOptions.quietly())) {
                assertTrue(io.lightllm.models.decoder.Architectures.modelTypes().contains(m.config().modelType()), arch);
                assertFalse(m.weights().names().isEmpty(), arch);
                assertArrayEquals(new int[] {1}, m.stopTokenIds(), arch);
                assertEquals(2, m.generationConfig().padTokenId(), arch);
            }
        }
    }

    @Test
    void streamsGoldenGreedyIdsToTransformersText() {
        // golden.json's first case: the greedy continuation of "<s>" and transformers' decoding of it
        JsonNode golden = JsonFields.read(STORIES.resolve("golden.json")).path("cases").get(0);
        int[] prompt = StreamSupport.stream(golden.path("input_ids").spliterator(), false).mapToInt(JsonNode::asInt).toArray();
        int[] greedy = StreamSupport.stream(golden.path("greedy_ids").spliterator(), false).mapToInt(JsonNode::asInt).toArray();
        assertArrayEquals(new int[] {1}, prompt);
        for (Path source : List.of(STORIES, STORIES.resolve("stories260K.gguf"))) {
            try (ModelFiles m = ModelFiles.open(source, LoadOptions.quietly())) {
                IncrementalDetokenizer d = new IncrementalDetokenizer(m.tokenizer(), prompt, true);
                StringBuilder text = new StringBuilder();
                for (int id : greedy) {
                    text.append(d.next(id));
                }
                text.append(d.flush());
                assertEquals(golden.path("greedy_text").asText(), text.toString(), source.toString());
            }
        }
    }

    @Test
    void progressBarOnStderrUnlessQuiet() {
        PrintStream saved = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            ModelFiles.open(STORIES, new LoadOptions(false, true)).close();
            String loud = captured.toString(StandardCharsets.UTF_8);
            assertTrue(loud.contains("Loading stories260K [") && loud.contains("100%") && loud.endsWith("\n"), loud);
            captured.reset();
            ModelFiles.open(STORIES, LoadOptions.quietly()).close();
            assertEquals("", captured.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(saved);
        }
    }

    @Test
    void unsupportedArchitecture(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), """
                {"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                 "vocab_size": 10, "layer_norm_eps": 1e-5}""");
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelFiles.open(dir, LoadOptions.quietly()));
        assertEquals("unsupported architecture 'gpt_neox' (model_type in " + dir.resolve("config.json")
                + "); supported: Yi, baichuan, bloom, chatglm, gpt_bigcode, internlm, llama, llava, minicpm, mistral, mixtral, qwen, qwen2, qwen3, stablelm, yi", e.getMessage());
    }

    @Test
    void brokenOrMissingInputs(@TempDir Path dir) throws IOException {
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelFiles.open(dir.resolve("nope"), LoadOptions.quietly()));
        assertEquals("model not found: " + dir.resolve("nope"), e.getMessage());

        e = assertThrows(ModelLoadException.class, () -> ModelFiles.open(dir, LoadOptions.quietly()));
        assertEquals(dir + " is not a model directory: it has no config.json and no .gguf file", e.getMessage());

        Path fixture = SharedData.tinyFixture("qwen2");
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
            Files.copy(fixture.resolve(f), dir.resolve(f));
        }
        byte[] weights = Files.readAllBytes(fixture.resolve("model.safetensors"));
        Files.write(dir.resolve("model.safetensors"), Arrays.copyOf(weights, weights.length / 2));
        e = assertThrows(ModelLoadException.class, () -> ModelFiles.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith(dir.resolve("model.safetensors") + " is truncated: tensor"), e.getMessage());

        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\", ");
        e = assertThrows(ModelLoadException.class, () -> ModelFiles.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith("cannot parse " + dir.resolve("config.json")), e.getMessage());
    }
}
