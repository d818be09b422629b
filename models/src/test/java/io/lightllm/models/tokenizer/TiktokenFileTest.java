package io.lightllm.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.config.JsonFields;
import io.lightllm.testing.SharedData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * tiktoken files against a real tokenizer: GPT-2's vocabulary is OpenAI's r50k_base, whose ranks are
 * GPT-2's ids, so GPT-2's tokenizer.json written out as a tiktoken file must give back exactly GPT-2's
 * 50,000 merges (derived from the ranks alone) and encode every text as GPT-2's tokenizer.json does.
 * The same file stands in for qwen.tiktoken to check Qwen v1's layout: specials after the ranks, its
 * split rule, no BOS, ChatML.
 */
class TiktokenFileTest {
    private static final List<String> TEXTS = List.of("Hello world", "The quick brown fox jumps over the lazy dog.",
            "indented\n\tcode();\n", "Unicode: café, naïve, 世界, 😀 🎉, Ωμέγα", "numbers 3.14159 and 2^10=1024", "x", "don't you've I'll");
    private static Path tiktoken;
    private static JsonNode gpt2;

    /** GPT-2's ids 0..50255 (50256 is its special end of text) as a tiktoken file: the raw bytes of each byte-level token. */
    @BeforeAll
    static void writeGpt2AsTiktoken(@TempDir Path dir) throws IOException {
        gpt2 = JsonFields.read(SharedData.tokenizer("gpt2").resolve("tokenizer.json"));
        Map<Character, Integer> unicodeToByte = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            unicodeToByte.put(TiktokenFile.byteLevel(String.valueOf((char) b)).charAt(0), b);
        }
        String[] byId = new String[50256];
        gpt2.path("model").path("vocab").properties().forEach(e -> {
            if (e.getValue().asInt() < byId.length) {
                byId[e.getValue().asInt()] = e.getKey();
            }
        });
        StringBuilder file = new StringBuilder();
        for (int id = 0; id < byId.length; id++) {
            byte[] bytes = new byte[byId[id].length()];
            for (int i = 0; i < bytes.length; i++) {
                bytes[i] = (byte) (int) unicodeToByte.get(byId[id].charAt(i));
            }
            file.append(Base64.getEncoder().encodeToString(bytes)).append(' ').append(id).append('\n');
        }
        tiktoken = Files.writeString(dir.resolve("qwen.tiktoken"), file, StandardCharsets.US_ASCII);
    }

    @Test
    void ranksGiveBackGpt2sMergesAndEncodings() {
        TiktokenFile bpe = TiktokenFile.read(tiktoken);
        List<String> merges = new ArrayList<>();
        gpt2.path("model").path("merges").forEach(m -> merges.add(m.isTextual() ? m.asText() : m.get(0).asText() + " " + m.get(1).asText()));
        assertEquals(merges, bpe.merges());
        try (HfTokenizer fromRanks = HfTokenizer.byteLevelBpe(bpe.tokens(), Map.of(), bpe.merges(), "", false, TokenizerSettings.none(), "test");
             HfTokenizer original = HfTokenizer.load(SharedData.tokenizer("gpt2"))) {
            for (String text : TEXTS) {
                assertArrayEquals(original.encode(text, false), fromRanks.encode(text, false), text);
                assertEquals(text, fromRanks.decode(fromRanks.encode(text, false), false));
            }
        }
    }

    /**
     * The reference tokenizer itself: Qwen's published QWenTokenizer (tiktoken), on the same file, encoded 300
     * strings of mixed scripts, digits, whitespace and special tokens ({@code scripts/fixtures/make_qwen_tokenizer_golden.py});
     * the loader must give the same ids, and decode them back to the (NFC) text.
     */
    @Test
    void qwenLayoutEncodesAsQwensOwnTokenizer(@TempDir Path dir) throws Exception {
        Files.copy(tiktoken, dir.resolve("qwen.tiktoken"));
        JsonNode golden;
        try (var in = TiktokenFileTest.class.getResourceAsStream("/tokenizers/qwen_layout_golden.json")) {
            golden = JsonFields.mapper().readTree(in);
        }
        try (Tokenizer t = Tokenizer.load(dir)) {
            int compared = 0;
            for (JsonNode c : golden.path("cases")) {
                String text = c.path("text").asText();
                int[] expected = new int[c.path("ids").size()];
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = c.path("ids").get(i).asInt();
                }
                assertArrayEquals(expected, t.encode(text, true), text);
                assertEquals(java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFC), t.decode(expected, false), text);
                compared++;
            }
            assertEquals(300, compared);
        }
    }

    /** Qwen-VL's tokenizer (config.json with visual beside it): its nine tags after the extras, &lt;img&gt; at ranks + 214. */
    @Test
    void qwenVlLayoutAddsItsImageTags(@TempDir Path dir) throws IOException {
        Files.copy(tiktoken, dir.resolve("qwen.tiktoken"));
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"qwen\", \"visual\": {\"image_start_id\": 50470}}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            int endOfText = 50256;
            assertEquals(endOfText + 208, t.tokenToId("<ref>"));
            assertEquals(endOfText + 214, t.tokenToId("<img>"), "Qwen-VL-Chat: 151643 + 214 = 151857, its image_start_id");
            assertEquals(endOfText + 215, t.tokenToId("</img>"));
            assertEquals(endOfText + 216, t.tokenToId("<imgpad>"));
            assertEquals(endOfText + 217, t.vocabSize());
            int[] ids = t.encode("Picture 1: <img></img>\n", true);
            assertEquals(endOfText + 214, ids[ids.length - 3]);
            assertEquals(endOfText + 215, ids[ids.length - 2]);
        }
    }

    @Test
    void qwenLayoutPutsSpecialsAfterTheRanksAndSplitsDigits(@TempDir Path dir) throws IOException {
        Files.copy(tiktoken, dir.resolve("qwen.tiktoken"));
        try (Tokenizer t = Tokenizer.load(dir)) {
            int endOfText = 50256;
            assertEquals(endOfText, t.tokenToId("<|endoftext|>"));
            assertEquals(endOfText + 1, t.tokenToId("<|im_start|>"));
            assertEquals(endOfText + 2, t.tokenToId("<|im_end|>"));
            assertEquals(endOfText + 3 + 204, t.tokenToId("<|extra_204|>"));
            assertEquals(endOfText + 3 + 205, t.vocabSize());
            assertEquals(Tokenizer.NO_TOKEN, t.bosId());
            assertArrayEquals(new int[] {endOfText}, t.eosIds());
            int[] chat = t.encode("<|im_start|>user\nhello<|im_end|>", true);
            assertEquals(endOfText + 1, chat[0], "no BOS, the special token whole");
            assertEquals(endOfText + 2, chat[chat.length - 1]);
            assertEquals("user\nhello", t.decode(chat, true));
            // Qwen's rule splits digits one by one (GPT-2's keeps "2024" a single chunk)
            int[] year = t.encode("2024", false);
            assertEquals(4, year.length);
            assertEquals("2", t.decode(new int[] {year[0]}, false));
            // NFC: a decomposed é reads as the composed one
            assertArrayEquals(t.encode("caf\u00e9", false), t.encode("cafe\u0301", false));
            Optional<String> template = t.chatTemplate();
            assertTrue(template.isPresent() && template.get().contains("<|im_start|>assistant"), String.valueOf(template));
        }
    }
}
