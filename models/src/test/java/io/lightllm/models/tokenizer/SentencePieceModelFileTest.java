package io.lightllm.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.ModelLoadException;
import io.lightllm.testing.SharedData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A SentencePiece tokenizer.model read without its tokenizer.json (how Baichuan and ChatGLM2 ship):
 * Llama-2's tokenizer.model against its own tokenizer.json (the Rust tokenizers library, an
 * independent implementation) on a few hundred strings of mixed scripts, ids and text.
 */
class SentencePieceModelFileTest {
    @TempDir
    Path dir;

    @Test
    void llama2ModelFileMatchesItsTokenizerJson() throws IOException {
        Path llama2 = SharedData.tokenizer("llama2");
        Files.copy(llama2.resolve("tokenizer.model"), dir.resolve("tokenizer.model"));
        Files.copy(llama2.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        try (Tokenizer reference = HfTokenizer.load(llama2); Tokenizer model = Tokenizer.load(dir)) {
            assertInstanceOf(SentencePieceBpeTokenizer.class, model);
            assertEquals(32000, model.vocabSize());
            assertEquals(reference.bosId(), model.bosId());
            assertArrayEquals(reference.eosIds(), model.eosIds());
            for (int id = 0; id < 32000; id += 97) {
                assertEquals(reference.idToToken(id), model.idToToken(id), "piece " + id);
            }
            for (String text : texts()) {
                for (boolean special : new boolean[] {true, false}) {
                    int[] ids = reference.encode(text, special);
                    assertArrayEquals(ids, model.encode(text, special), "'" + text + "' addSpecial=" + special);
                    assertEquals(reference.decode(ids, true), model.decode(ids, true), "decode of '" + text + "'");
                }
            }
        }
    }

    /**
     * ChatGLM2's tokenizer code (tokenization_chatglm.py): five special tokens appended after the
     * model's pieces, [gMASK] sop before every sequence, no BOS. Shown on Llama-2's model file.
     */
    @Test
    void chatGlmTokenizerAddsItsSpecialTokensAndPrefix() throws IOException {
        Path llama2 = SharedData.tokenizer("llama2");
        Files.copy(llama2.resolve("tokenizer.model"), dir.resolve("tokenizer.model"));
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"ChatGLMTokenizer\"}");
        try (Tokenizer reference = HfTokenizer.load(llama2); Tokenizer glm = Tokenizer.load(dir)) {
            assertEquals(32005, glm.vocabSize());
            assertEquals(32001, glm.tokenToId("[gMASK]"));
            assertEquals(32003, glm.tokenToId("sop"));
            int[] plain = reference.encode("你好 hello", false);
            int[] withPrefix = glm.encode("你好 hello", true);
            assertArrayEquals(new int[] {32001, 32003}, java.util.Arrays.copyOf(withPrefix, 2));
            assertArrayEquals(plain, java.util.Arrays.copyOfRange(withPrefix, 2, withPrefix.length));
            assertEquals("你好 hello", glm.decode(withPrefix, true));
            assertArrayEquals(new int[] {2}, glm.eosIds());
            assertTrue(glm.chatTemplate().orElseThrow().contains("[Round"));
        }
    }

    /**
     * The reference tokenizer itself: ChatGLM2's published ChatGLMTokenizer (sentencepiece), on Llama-2's
     * tokenizer.model, encoded 300 strings of mixed scripts, digits and whitespace, [gMASK] sop first
     * ({@code scripts/fixtures/make_tokenizer_goldens.py}); the loader must give the same ids.
     */
    @Test
    void chatGlmLayoutEncodesAsChatGlmsOwnTokenizer() throws Exception {
        Files.copy(SharedData.tokenizer("llama2").resolve("tokenizer.model"), dir.resolve("tokenizer.model"));
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"ChatGLMTokenizer\"}");
        com.fasterxml.jackson.databind.JsonNode golden;
        try (var in = SentencePieceModelFileTest.class.getResourceAsStream("/tokenizers/chatglm_layout_golden.json")) {
            golden = io.lightllm.models.config.JsonFields.mapper().readTree(in);
        }
        try (Tokenizer t = Tokenizer.load(dir)) {
            int compared = 0;
            for (var c : golden.path("cases")) {
                int[] expected = new int[c.path("ids").size()];
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = c.path("ids").get(i).asInt();
                }
                assertArrayEquals(expected, t.encode(c.path("text").asText(), true), c.path("text").asText());
                compared++;
            }
            assertEquals(300, compared);
        }
    }

    @Test
    void notAModelFile() throws IOException {
        Files.write(dir.resolve("tokenizer.model"), new byte[] {(byte) 0xff, (byte) 0xff, 0x01});
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("is not a SentencePiece model"), e.getMessage());
    }

    /** Fixed strings of many scripts, then random mixtures of their words, spaces and punctuation. */
    private static List<String> texts() {
        List<String> fixed = List.of("", " ", "Hello world", "  two leading spaces", "trailing ", "tabs\tand\nnewlines\n\n",
                "Numbers 1234567890, 3.14159 and -42!", "café naïve résumé Ærøskøbing", "Привет, как дела?", "Γειά σου κόσμε",
                "你好，世界。今天天气很好。", "こんにちは、世界！カタカナ", "안녕하세요 세계", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
                "สวัสดีชาวโลก", "emoji 😀🚀👍🏽 and ZWJ 👩‍👩‍👧", "code: for (int i = 0; i < n; i++) { x += a[i]; }",
                "mixed 中文 English русский 日本語 123", "\u00a0non-breaking\u2003em space", "<s> special </s> inside", "a".repeat(200));
        List<String> out = new ArrayList<>(fixed);
        List<String> words = new ArrayList<>();
        for (String f : fixed) {
            words.addAll(List.of(f.split(" ")));
        }
        Random random = new Random(7);
        String[] glue = {" ", "  ", "", "\n", ", ", ". ", "\t"};
        for (int i = 0; i < 300; i++) {
            StringBuilder b = new StringBuilder();
            for (int w = 0; w < 1 + random.nextInt(8); w++) {
                b.append(words.get(random.nextInt(words.size()))).append(glue[random.nextInt(glue.length)]);
            }
            out.add(b.toString());
        }
        return out;
    }
}
