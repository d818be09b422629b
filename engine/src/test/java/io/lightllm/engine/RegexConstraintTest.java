package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.runtime.Devices;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Structured output with real models on the JVM: whatever the model would say (sampled at
 * temperature 1.5, so it would say anything), every output is a whole match of the expression and
 * ends with STOP; with the mask alone guaranteeing it, a random-weight model does as well as a trained one.
 */
class RegexConstraintTest {
    @Test
    void sampledOutputsAlwaysMatch() throws Exception {
        for (String name : List.of("stories260K", "tiny llama")) {
            var path = name.equals("stories260K") ? SharedData.model("stories260K") : SharedData.tinyFixture("llama");
            try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
                 CausalLM model = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true)) {
                Set<Integer> eos = new HashSet<>();
                Arrays.stream(files.stopTokenIds()).forEach(eos::add);
                String regex = "(yes|no), the (cat|dog) is [a-z]{1,8}\\. [0-9]{2}";
                try (Engine engine = Engine.start(model, EngineConfig.of(1024, eos), files.tokenizer())) {
                    for (long seed = 0; seed < 12; seed++) {
                        SamplingParams p = SamplingParams.builder().temperature(1.5f).seed(seed).maxNewTokens(60).regex(regex).build();
                        Completion c = engine.generate("Once upon a time", p).getFirst();
                        assertTrue(Pattern.matches(regex, c.text()), name + " seed " + seed + ": '" + c.text() + "'");
                        assertEquals(FinishReason.STOP, c.finish(), name + " seed " + seed + ": '" + c.text() + "'");
                    }
                    Completion greedy = engine.generate("Once upon a time", SamplingParams.builder().maxNewTokens(60).regex(regex).build()).getFirst();
                    assertTrue(Pattern.matches(regex, greedy.text()), greedy.text());
                }
            }
        }
    }

    @Test
    void anInvalidExpressionIsRefused() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> SamplingParams.builder().regex("(unclosed").build());
        assertTrue(e.getMessage().contains("regular expression"), e.getMessage());
    }
}
