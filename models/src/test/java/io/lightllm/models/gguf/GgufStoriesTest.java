package io.lightllm.models.gguf;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.weights.SafetensorsWeights;
import io.lightllm.models.weights.Tensor;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.FloatArray;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * stories260K exists as the ggml-org GGUF file and as an HF directory made from the same weights:
 * the GGUF tensors, under their mapped names, must equal the HF tensors.
 */
class GgufStoriesTest {
    private static final Path DIR = SharedData.model("stories260K");
    private static final Path GGUF = DIR.resolve("stories260K.gguf");

    @Test
    void headerAndTensorTable() {
        try (GgufWeights w = GgufWeights.open(GGUF, LoadOptions.quietly())) {
            GgufFile f = w.file();
            assertEquals(3, f.version());
            assertEquals(48, f.tensorInfos().size());
            assertEquals(19, f.metadata().size());
            assertEquals("llama", f.getString("general.architecture"));
            assertEquals(512, f.getStringArray("tokenizer.ggml.tokens").length);
            GgufTensorInfo embd = f.tensorInfos().get(0);
            assertEquals("token_embd.weight", embd.name());
            assertArrayEquals(new long[] {64, 512}, embd.dims());
            assertArrayEquals(new long[] {512, 64}, embd.hfShape());
        }
    }

    @Test
    void tensorsEqualTheHfCheckpoint() {
        try (GgufWeights gguf = GgufWeights.open(GGUF, LoadOptions.quietly());
             SafetensorsWeights hf = SafetensorsWeights.open(DIR, LoadOptions.quietly())) {
            ModelConfig config = GgufModelConfig.from(gguf.file());
            int compared = 0;
            for (String name : hf.names()) {
                Tensor expected = hf.get(name);
                Tensor actual = gguf.get(name);
                assertArrayEquals(expected.shape(), actual.shape(), name);
                float[] want = expected.toFloat().toArray();
                float[] got = actual.toFloat().toArray();
                if (name.endsWith("q_proj.weight") || name.endsWith("k_proj.weight")) {
                    assertTrue(config.rotaryInterleaved());
                    assertFalse(java.util.Arrays.equals(want, got), name + " should be stored permuted");
                    got = halfSplitRows(got, (int) actual.dim(0), (int) actual.dim(1), config.headDim());
                }
                assertArrayEquals(want, got, name);
                compared++;
            }
            assertEquals(47, compared);
            // the GGUF file carries output.weight although the HF model ties it to the embedding
            assertArrayEquals(hf.get("model.embed_tokens.weight").toFloat().toArray(),
                    gguf.get("lm_head.weight").toFloat().toArray());
        }
    }

    /**
     * Undoes llama.cpp's Q/K row permutation, written from the layouts' definitions: in each head
     * of width d, HF row i < d/2 and its rotary partner i + d/2 are stored at rows 2i and 2i + 1.
     */
    private static float[] halfSplitRows(float[] interleaved, int rows, int cols, int headDim) {
        float[] out = new float[interleaved.length];
        for (int head = 0; head < rows / headDim; head++) {
            for (int i = 0; i < headDim / 2; i++) {
                int base = head * headDim;
                System.arraycopy(interleaved, (base + 2 * i) * cols, out, (base + i) * cols, cols);
                System.arraycopy(interleaved, (base + 2 * i + 1) * cols, out, (base + headDim / 2 + i) * cols, cols);
            }
        }
        return out;
    }

    @Test
    void configMatchesTheHfConfig() {
        ModelConfig hf = ModelConfig.load(DIR.resolve("config.json"));
        try (GgufWeights w = GgufWeights.open(GGUF, LoadOptions.quietly())) {
            ModelConfig g = GgufModelConfig.from(w.file());
            assertEquals(hf.modelType(), g.modelType());
            assertEquals(hf.architectures(), g.architectures());
            assertEquals(hf.hiddenSize(), g.hiddenSize());
            assertEquals(hf.intermediateSize(), g.intermediateSize());
            assertEquals(hf.numHiddenLayers(), g.numHiddenLayers());
            assertEquals(hf.numAttentionHeads(), g.numAttentionHeads());
            assertEquals(hf.numKeyValueHeads(), g.numKeyValueHeads());
            assertEquals(hf.headDim(), g.headDim());
            assertEquals(hf.vocabSize(), g.vocabSize());
            assertEquals(hf.normEps(), g.normEps());
            assertEquals(hf.rope(), g.rope());
            assertEquals(hf.rotaryDim(), g.rotaryDim());
            assertEquals(hf.bosTokenId(), g.bosTokenId());
            assertEquals(hf.eosTokenIds(), g.eosTokenIds());
            assertEquals(hf.hiddenAct(), g.hiddenAct());
            assertEquals(hf.dtype(), g.dtype());
            assertEquals(Optional.empty(), g.moe());
            // the GGUF file states a 2048 context (the HF conversion says 512, the training length) and has
            // its own output.weight, so it is not tied
            assertEquals(2048, g.maxPositionEmbeddings());
            assertFalse(g.tieWordEmbeddings());
            assertTrue(g.rotaryInterleaved());
            assertEquals("llama", g.raw().path("general.architecture").asText());
        }
    }

    @Test
    void viewsAreMapped() {
        try (GgufWeights w = GgufWeights.open(GGUF, LoadOptions.quietly())) {
            FloatArray v = (FloatArray) w.get("model.layers.2.mlp.down_proj.weight").view();
            assertTrue(v.segment().isMapped());
            assertEquals(64 * 172, v.getSize());
        }
    }

    @Test
    void nameTable() {
        assertEquals("model.layers.12.self_attn.o_proj.weight", GgufTensorNames.of(Architectures.LLAMA).toHf("blk.12.attn_output.weight"));
        assertEquals("model.layers.0.self_attn.q_proj.bias", GgufTensorNames.of(Architectures.LLAMA).toHf("blk.0.attn_q.bias"));
        assertEquals("lm_head.weight", GgufTensorNames.of(Architectures.LLAMA).toHf("output.weight"));
        assertEquals("rope_freqs.weight", GgufTensorNames.of(Architectures.LLAMA).toHf("rope_freqs.weight"));
        assertEquals(Optional.of("blk.3.ffn_up.weight"), GgufTensorNames.of(Architectures.LLAMA).toGguf("model.layers.3.mlp.up_proj.weight"));
        assertEquals(Optional.of("token_embd.weight"), GgufTensorNames.of(Architectures.LLAMA).toGguf("model.embed_tokens.weight"));
        assertEquals(Optional.empty(), GgufTensorNames.of(Architectures.LLAMA).toGguf("model.layers.3.mlp.experts.0.w1.weight"));
    }
}
