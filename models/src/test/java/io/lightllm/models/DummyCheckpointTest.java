package io.lightllm.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.GreedyRunner;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A dummy model written as a checkpoint is, loaded from its files, the dummy model: the same logits, bit for bit. */
class DummyCheckpointTest {
    @Test
    void writtenCheckpointLoadsToTheSameModel(@TempDir Path dir) throws Exception {
        String config = SharedData.tinyFixture("llama").resolve("config.json").toString();
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Path out = dir.resolve(dtype.name());
            Models.writeDummyCheckpoint(config, dtype, out);
            Files.copy(SharedData.tinyFixture("llama").resolve("tokenizer.json"), out.resolve("tokenizer.json"));
            assertTrue(Files.readString(out.resolve("config.json")).contains("\"torch_dtype\""));
            int[][] prompts = {{1, 5, 9, 17}, {1, 3}};
            try (ModelFiles files = ModelFiles.open(out, LoadOptions.quietly());
                 CausalLM loaded = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true);
                 CausalLM dummy = Models.dummy(config, dtype, Devices.get("jvm"), Models.Quantization.NONE, true)) {
                GreedyRunner a = new GreedyRunner(loaded, prompts, 6, DType.F32), b = new GreedyRunner(dummy, prompts, 6, DType.F32);
                for (int r = 0; r < prompts.length; r++) {
                    assertArrayEquals(b.firstLogits[r], a.firstLogits[r], dtype + " prompt " + r);
                    assertArrayEquals(b.generated[r], a.generated[r], dtype + " prompt " + r);
                }
            }
        }
    }
}
