package io.lightllm.models.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Expected values are read off the fixtures' config.json files by hand. */
class ModelConfigTest {

    private static ModelConfig tiny(String arch) {
        return Architectures.readConfig(SharedData.tinyFixture(arch).resolve("config.json"));
    }

    private static ModelConfig parse(String json) throws Exception {
        JsonNode node = JsonFields.mapper().readTree(json);
        return ModelConfig.fromJson(node, "test config");
    }

    @Test
    void llamaWithGqaAndDefaultRopeParameters() {
        ModelConfig c = tiny("llama");
        assertEquals("llama", c.modelType());
        assertEquals(List.of("LlamaForCausalLM"), c.architectures());
        assertEquals(64, c.hiddenSize());
        assertEquals(160, c.intermediateSize());
        assertEquals(2, c.numHiddenLayers());
        assertEquals(4, c.numAttentionHeads());
        assertEquals(2, c.numKeyValueHeads());
        assertEquals(2, c.kvGroupSize());
        assertEquals(16, c.headDim());
        assertEquals(512, c.vocabSize());
        assertEquals(512, c.maxPositionEmbeddings());
        assertEquals(1e-5, c.normEps());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(Optional.of("silu"), c.hiddenAct());
        assertEquals(0, c.bosTokenId());
        assertEquals(List.of(1), c.eosTokenIds());
        assertEquals(DType.BF16, c.dtype());
        assertFalse(c.attentionBias());
        assertEquals(RopeConfig.plain(10000.0), c.rope());
        assertEquals(16, c.rotaryDim());
        assertFalse(c.rotaryInterleaved());
        assertTrue(c.moe().isEmpty());
        assertEquals("LlamaForCausalLM", c.raw().path("architectures").get(0).asText());
    }

    @Test
    void llama3RopeFromRopeParametersWithTiedEmbeddings() {
        ModelConfig c = tiny("llama3_tied");
        assertEquals(new RopeConfig(RopeConfig.Type.LLAMA3, 500000.0, 8.0, 1.0, 4.0, 256), c.rope());
        assertEquals(1, c.numKeyValueHeads());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(DType.F16, c.dtype());
        assertEquals(1024, c.maxPositionEmbeddings());
    }

    @Test
    void mixtralExpertsAndNullHeadDim() {
        ModelConfig c = tiny("mixtral");
        assertEquals(Optional.of(new ModelConfig.Moe(4, 2)), c.moe());
        assertEquals(16, c.headDim()); // "head_dim": null -> hidden / heads
        assertEquals(1e6, c.rope().theta());
        assertEquals(0, c.slidingWindow()); // "sliding_window": null
    }

    @Test
    void qwen2HasImpliedQkvBiasAndSlidingWindowOff() {
        ModelConfig c = tiny("qwen2");
        assertTrue(c.attentionBias());
        assertFalse(c.mlpBias());
        assertEquals(0, c.slidingWindow());
        assertEquals(1e-6, c.normEps());
    }

    @Test
    void stablelmPartialRotaryLayerNormEpsAndQkvBias() {
        ModelConfig c = tiny("stablelm");
        assertEquals(0.25, c.partialRotaryFactor());
        assertEquals(4, c.rotaryDim());
        assertTrue(c.attentionBias()); // use_qkv_bias
        assertEquals(1e-5, c.normEps()); // layer_norm_eps
        assertEquals(4, c.numKeyValueHeads());
    }

    @Test
    void bloomUsesGpt2StyleKeys() {
        ModelConfig c = tiny("bloom");
        assertEquals(64, c.hiddenSize());
        assertEquals(2, c.numHiddenLayers()); // n_layer
        assertEquals(4, c.numAttentionHeads()); // n_head
        assertEquals(4, c.numKeyValueHeads());
        assertEquals(256, c.intermediateSize()); // 4 * hidden
        // ALiBi: config.json names no context; the declaration implies BLOOM's training length
        assertEquals(2048, c.maxPositionEmbeddings());
        assertEquals(1e-5, c.normEps()); // layer_norm_epsilon
        assertEquals(Optional.of("gelu_pytorch_tanh"), c.hiddenAct()); // bloom_gelu_forward, implied by the declaration
        assertTrue(c.attentionBias());
        assertTrue(c.mlpBias());
        assertTrue(c.tieWordEmbeddings());
    }

    @Test
    void starcoderMultiQueryKeys() {
        ModelConfig c = tiny("starcoder");
        assertEquals("gpt_bigcode", c.modelType());
        assertEquals(64, c.hiddenSize()); // n_embd
        assertEquals(512, c.maxPositionEmbeddings()); // n_positions
        assertEquals(1, c.numKeyValueHeads());
        assertEquals(256, c.intermediateSize()); // "n_inner": null
        assertEquals(Optional.of("gelu_pytorch_tanh"), c.hiddenAct());
        assertEquals(DType.F32, c.dtype());
    }

    @Test
    void stories260KUsesOlderRopeThetaKey() {
        ModelConfig c = ModelConfig.load(SharedData.model("stories260K").resolve("config.json"));
        assertEquals(RopeConfig.plain(10000.0), c.rope());
        assertEquals(8, c.headDim());
        assertEquals(172, c.intermediateSize());
        assertEquals(9.999999747378752e-06, c.normEps());
        assertEquals(1, c.bosTokenId());
        assertEquals(List.of(2), c.eosTokenIds());
        assertEquals(DType.F32, c.dtype()); // torch_dtype
        assertTrue(c.tieWordEmbeddings());
    }

    @Test
    void olderRopeScalingSpellings() throws Exception {
        String base = """
                {"model_type": "llama", "hidden_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": 100, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
                 "eos_token_id": [128001, 128008, 128009], "rope_scaling": %s}""";
        ModelConfig llama3 = parse(base.formatted("""
                {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 8192}"""));
        assertEquals(new RopeConfig(RopeConfig.Type.LLAMA3, 500000.0, 32.0, 1.0, 4.0, 8192), llama3.rope());
        assertEquals(List.of(128001, 128008, 128009), llama3.eosTokenIds());

        ModelConfig linear = parse(base.formatted("{\"type\": \"linear\", \"factor\": 2.0}"));
        assertEquals(new RopeConfig(RopeConfig.Type.LINEAR, 500000.0, 2.0, 1.0, 1.0, 0), linear.rope());

        ModelConfig none = parse(base.formatted("null"));
        assertEquals(RopeConfig.plain(500000.0), none.rope());

        ModelLoadException yarn = assertThrows(ModelLoadException.class,
                () -> parse(base.formatted("{\"rope_type\": \"yarn\", \"factor\": 4.0}")));
        assertTrue(yarn.getMessage().contains("unsupported rope type 'yarn'"), yarn.getMessage());
    }

    @Test
    void miniCpmScalingKeys() throws Exception {
        ModelConfig c = parse("""
                {"model_type": "minicpm", "hidden_size": 2304, "num_hidden_layers": 40, "num_attention_heads": 36,
                 "vocab_size": 122753, "rms_norm_eps": 1e-5, "scale_emb": 12, "scale_depth": 1.4, "dim_model_base": 256,
                 "torch_dtype": "bfloat16"}""");
        assertEquals(Optional.of(new ModelConfig.MiniCpmScaling(12.0, 1.4, 256)), c.miniCpm());
        assertEquals(36, c.numKeyValueHeads()); // default: as many as query heads
        assertEquals(64, c.headDim());
        assertEquals(DType.BF16, c.dtype());
    }

    @Test
    void missingRequiredKeyIsNamed() {
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> parse("""
                {"model_type": "llama", "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
                 "rms_norm_eps": 1e-6}"""));
        assertEquals("test config has no hidden_size / n_embd / d_model", e.getMessage());
    }

    @Test
    void generationConfigOfFixture() {
        ModelConfig model = tiny("llama");
        GenerationConfig g = GenerationConfig.load(SharedData.tinyFixture("llama"), model);
        assertEquals(0, g.bosTokenId());
        assertEquals(List.of(1), g.eosTokenIds());
        assertEquals(2, g.padTokenId());
        assertFalse(g.doSample());
        assertEquals(1.0, g.temperature());
    }

    @Test
    void generationConfigWithoutFileComesFromModel() {
        ModelConfig model = ModelConfig.load(SharedData.model("stories260K").resolve("config.json"));
        GenerationConfig g = GenerationConfig.load(SharedData.model("stories260K"), model);
        assertEquals(1, g.bosTokenId());
        assertEquals(List.of(2), g.eosTokenIds());
        assertEquals(50, g.topK());
    }
}
