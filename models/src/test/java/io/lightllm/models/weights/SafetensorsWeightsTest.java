package io.lightllm.models.weights;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelLoadException;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Expected values were read from the files with numpy (an independent reader). */
class SafetensorsWeightsTest {
    private static final Path STORIES = SharedData.model("stories260K");

    @Test
    void singleFileF32() {
        try (SafetensorsWeights w = SafetensorsWeights.open(STORIES, LoadOptions.quietly())) {
            assertEquals(2 + 5 * 9, w.names().size());
            Tensor k = w.get("model.layers.0.self_attn.k_proj.weight");
            assertArrayEquals(new long[] {32, 64}, k.shape());
            assertEquals(TensorType.F32, k.type());
            Tensor norm = w.get("model.norm.weight");
            FloatArray v = assertInstanceOf(FloatArray.class, norm.view());
            assertArrayEquals(new float[] {2.4583089351654053f, 1.3673226833343506f, 1.7504382133483887f, 1.1078318357467651f},
                    new float[] {v.get(0), v.get(1), v.get(2), v.get(3)});
            Tensor down = w.get("model.layers.4.mlp.down_proj.weight");
            assertArrayEquals(new long[] {64, 172}, down.shape());
            assertEquals(-0.0035068716388195753f, ((FloatArray) down.view()).get(63 * 172 + 171));
            // numpy's double sum over the embedding: -752.3677446640068; summing the same 32768 floats in
            // double in another order differs only by rounding (~1e-13 relative), hence 1e-9
            FloatArray emb = (FloatArray) w.get("model.embed_tokens.weight").view();
            double sum = 0;
            for (int i = 0; i < emb.getSize(); i++) {
                sum += emb.get(i);
            }
            assertEquals(-752.3677446640068, sum, 1e-9);
        }
    }

    @Test
    void viewsShareTheMappedFile() {
        try (SafetensorsWeights w = SafetensorsWeights.open(STORIES, LoadOptions.quietly())) {
            NativeArray v = w.get("model.norm.weight").view();
            assertTrue(v.segment().isMapped(), "view must be the mmap'd file, not a copy");
            assertTrue(v.segment().isReadOnly());
        }
    }

    @Test
    void bf16Fixture() {
        try (SafetensorsWeights w = SafetensorsWeights.open(SharedData.tinyFixture("llama"), LoadOptions.quietly())) {
            assertEquals(21, w.names().size());
            assertTrue(w.has("lm_head.weight"));
            BFloat16Array norm = assertInstanceOf(BFloat16Array.class, w.get("model.norm.weight").view());
            assertEquals(1.0234375f, norm.getFloat(0));
            assertEquals(0.96484375f, norm.getFloat(1));
            Tensor up = w.get("model.layers.1.mlp.up_proj.weight");
            assertArrayEquals(new long[] {160, 64}, up.shape());
            assertEquals(-0.02880859375f, up.toFloat().get(0));
            assertEquals(0.09326171875f, up.view().getFloat(2));
        }
    }

    @Test
    void missingTensorIsNamed() {
        try (SafetensorsWeights w = SafetensorsWeights.open(STORIES, LoadOptions.quietly())) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> w.get("model.layers.7.mlp.up_proj.weight"));
            assertEquals("tensor model.layers.7.mlp.up_proj.weight not found in " + STORIES, e.getMessage());
            assertFalse(w.has("model.layers.7.mlp.up_proj.weight"));
        }
    }

    @Test
    void shardedDirectoryEqualsSingleFile(@TempDir Path dir) throws IOException {
        try (SafetensorsWeights single = SafetensorsWeights.open(STORIES, LoadOptions.quietly())) {
            List<Tensor> first = new ArrayList<>();
            List<Tensor> second = new ArrayList<>();
            StringBuilder map = new StringBuilder();
            for (String name : single.names()) {
                boolean early = name.startsWith("model.layers.0") || name.startsWith("model.layers.1") || name.contains("embed");
                (early ? first : second).add(single.get(name));
                map.append(map.isEmpty() ? "" : ",").append('"').append(name).append("\":\"")
                        .append(early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors").append('"');
            }
            SafetensorsWriter.write(dir.resolve("model-00001-of-00002.safetensors"), first);
            SafetensorsWriter.write(dir.resolve("model-00002-of-00002.safetensors"), second);
            Files.writeString(dir.resolve(SafetensorsWeights.INDEX_FILE), "{\"metadata\":{},\"weight_map\":{" + map + "}}");

            try (SafetensorsWeights sharded = SafetensorsWeights.open(dir, LoadOptions.quietly())) {
                assertEquals(single.names(), sharded.names());
                for (String name : single.names()) {
                    Tensor a = single.get(name);
                    Tensor b = sharded.get(name);
                    assertArrayEquals(a.shape(), b.shape(), name);
                    assertEquals(-1L, a.data().mismatch(b.data()), name);
                }
            }
        }
    }

    @Test
    void indexNamingAMissingTensor(@TempDir Path dir) throws IOException {
        try (SafetensorsWeights single = SafetensorsWeights.open(STORIES, LoadOptions.quietly())) {
            SafetensorsWriter.write(dir.resolve("a.safetensors"), List.of(single.get("model.norm.weight")));
        }
        Files.writeString(dir.resolve(SafetensorsWeights.INDEX_FILE),
                "{\"weight_map\":{\"model.norm.weight\":\"a.safetensors\",\"lm_head.weight\":\"a.safetensors\"}}");
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith("tensor lm_head.weight listed in"), e.getMessage());
    }

    @Test
    void truncatedFile(@TempDir Path dir) throws IOException {
        byte[] whole = Files.readAllBytes(STORIES.resolve("model.safetensors"));
        Files.write(dir.resolve("model.safetensors"), java.util.Arrays.copyOf(whole, whole.length - 1000));
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().contains("is truncated: tensor"), e.getMessage());

        Files.write(dir.resolve("model.safetensors"), java.util.Arrays.copyOf(whole, 5));
        e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().contains("is truncated: 5 bytes"), e.getMessage());

        Files.write(dir.resolve("model.safetensors"), java.util.Arrays.copyOf(whole, 300));
        e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().contains("is truncated: its header needs"), e.getMessage());
    }

    @Test
    void badHeader(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("model.safetensors");
        SafetensorsTestFiles.write(file, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", new byte[8]);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith("bad safetensors header in " + file), e.getMessage());

        SafetensorsTestFiles.write(file, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", new byte[12]);
        e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().contains("tensor a F32[3] needs 12 bytes but data_offsets are [0,8]"), e.getMessage());

        Files.writeString(file, "this is not a safetensors file at all");
        e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith("bad safetensors header in " + file + ": header length"), e.getMessage());
    }

    @Test
    void unknownDtype(@TempDir Path dir) throws IOException {
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"),
                "{\"x\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", new byte[8]);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith("tensor x in ") && e.getMessage().contains("has unsupported dtype F64"), e.getMessage());
    }

    @Test
    void directoryWithoutWeights(@TempDir Path dir) {
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsWeights.open(dir, LoadOptions.quietly()));
        assertEquals(dir + " has no model.safetensors or model.safetensors.index.json", e.getMessage());
    }
}
