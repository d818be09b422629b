package io.lightllm.models.tokenizer;

import io.lightllm.models.Golden;

import ai.djl.util.Utils;
import io.lightllm.models.ModelLoadException;
import io.lightllm.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The DJL-backed tokenizer on real tokenizers; known ids are the published ones of each vocabulary. */
class HfTokenizerTest {
    private static final List<String> TEXTS = List.of(
            "Hello world", "The quick brown fox jumps over the lazy dog.", "  indented\n\tcode();\n",
            "Unicode: café, naïve, 世界, 😀 🎉, Ωμέγα", "numbers 3.14159 and 2^10=1024", "x");

    private static Path tokenizers(String name) {
        return SharedData.root().resolve("tokenizers").resolve(name);
    }

    @Test
    void llama2() {
        try (HfTokenizer t = HfTokenizer.load(tokenizers("llama2"))) {
            assertArrayEquals(new int[] {1, 15043, 3186}, t.encode("Hello world", true));
            assertArrayEquals(new int[] {15043, 3186}, t.encode("Hello world", false));
            assertEquals(32000, t.vocabSize());
            assertEquals(1, t.bosId());
            assertArrayEquals(new int[] {2}, t.eosIds());
            assertEquals("▁Hello", t.idToToken(15043));
            assertEquals(13, t.tokenToId("<0x0A>"));
            for (String text : TEXTS) {
                assertEquals(text, t.decode(t.encode(text, true), true), "round trip");
            }
            assertTrue(t.decode(t.encode("hi", true), false).startsWith("<s>"));
        }
    }

    @Test
    void gpt2() {
        try (HfTokenizer t = HfTokenizer.load(tokenizers("gpt2"))) {
            assertArrayEquals(new int[] {15496, 995}, t.encode("Hello world", true));
            assertEquals("Ġworld", t.idToToken(995));
            assertEquals(50256, t.tokenToId("<|endoftext|>"));
            assertEquals(Tokenizer.NO_TOKEN, t.bosId()); // no tokenizer_config.json beside it
            for (String text : TEXTS) {
                assertEquals(text, t.decode(t.encode(text, true), false), "round trip");
            }
        }
    }

    @Test
    void tinyFixturesGoldenIds() {
        for (String arch : List.of("llama", "llama3_tied", "mistral", "qwen2", "bloom", "starcoder", "mixtral", "stablelm")) {
            Path dir = SharedData.tinyFixture(arch);
            try (HfTokenizer t = HfTokenizer.load(dir)) {
                for (Golden g : Golden.read(dir)) {
                    assertArrayEquals(g.inputIds(), t.encode(g.prompt(), true), arch + ": '" + g.prompt() + "'");
                }
                assertEquals(0, t.bosId());
                assertArrayEquals(new int[] {1}, t.eosIds());
            }
        }
    }

    @Test
    void longInputIsNotTruncated() {
        try (HfTokenizer t = HfTokenizer.load(tokenizers("llama2"))) {
            String text = "word ".repeat(4999) + "word";
            assertEquals(5001, t.encode(text, true).length); // BOS + one "▁word" per word
        }
    }

    @Test
    void djlSeesTheCpuFlavour() {
        DjlNativeLibrary.prepare();
        assertEquals("cpu", Utils.getEnvOrSystemProperty("RUST_FLAVOR"));
    }

    @Test
    void directoryWithoutTokenizerJson(@TempDir Path dir) {
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> HfTokenizer.load(dir));
        assertEquals(dir + " has no tokenizer.json", e.getMessage());
    }
}
