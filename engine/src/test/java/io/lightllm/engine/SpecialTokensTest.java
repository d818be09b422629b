package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * skip_special_tokens through the engine on a model that generates a special token: the tiny StableLM fixture's third
 * golden case greedily generates id 0, a special token of its tokenizer (transformers' tokens, golden.json). With
 * skipSpecialTokens false its text is in the output, as the tokenizer decodes the tokens with their specials; with the
 * default it is left out. The tokens are the same either way.
 */
class SpecialTokensTest {
    @Test
    void aGeneratedSpecialTokenIsShownOnlyWhenNotSkipped() throws Exception {
        Path dir = SharedData.tinyFixture("stablelm");
        try (ModelFiles files = ModelFiles.open(dir, LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true);
             Engine engine = Engine.start(model, EngineConfig.of(256, Set.of()), files.tokenizer())) {
            Golden golden = Golden.read(dir).get(2);
            assertTrue(Arrays.stream(golden.greedyIds()).anyMatch(t -> t == 0), "the case generates <|endoftext|>");
            String special = files.tokenizer().decode(new int[] {0}, false);
            assertFalse(special.isEmpty());
            assertEquals("", files.tokenizer().decode(new int[] {0}, true), "id 0 is special: " + special);
            for (boolean skip : new boolean[] {true, false}) {
                SamplingParams p = SamplingParams.builder().maxNewTokens(golden.greedyIds().length).ignoreEos(true).skipSpecialTokens(skip).build();
                Completion c = engine.generate(golden.inputIds(), p).getFirst();
                assertArrayEquals(golden.greedyIds(), c.tokens());
                int[] all = java.util.stream.IntStream.concat(Arrays.stream(golden.inputIds()), Arrays.stream(c.tokens())).toArray();
                String whole = files.tokenizer().decode(all, skip), prompt = files.tokenizer().decode(golden.inputIds(), skip);
                assertEquals(whole.substring(prompt.length()), c.text(), "skip " + skip);
                assertEquals(!skip, c.text().contains(special), "skip " + skip + ": " + c.text());
            }
        }
    }
}
