package io.lightllm.models.tokenizer;

import io.lightllm.models.Golden;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.gguf.GgufWeights;
import io.lightllm.testing.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * stories260K's tokenizer twice: tokenizer.json through DJL, and the GGUF file's SentencePiece
 * metadata through our own BPE. Both must give transformers' ids (golden.json) and agree elsewhere.
 */
class StoriesTokenizersTest {
    private static final Path DIR = SharedData.model("stories260K");
    private static final List<String> PROMPTS = List.of(
            "", " ", "Once upon a time", "  two leading spaces", "trailing space ", "Lily and Ben went to the park.\nThey saw a big dog!",
            "Tabs\tand\nnewlines\n\n", "Numbers 12345 and punctuation: (a, b) -> {c}; 'quotes' \"double\"",
            "Unicode: café, naïve, 世界, 😀, Ωμέγα", "special <s> inside and </s> at the end </s>", "<unk>x<s>",
            "a".repeat(300) + " b");

    private static HfTokenizer hf;
    private static GgufWeights gguf;
    private static SentencePieceBpeTokenizer spm;

    @BeforeAll
    static void load() {
        hf = HfTokenizer.load(DIR);
        gguf = GgufWeights.open(DIR.resolve("stories260K.gguf"), LoadOptions.quietly());
        spm = SentencePieceBpeTokenizer.fromGguf(gguf.file());
    }

    @AfterAll
    static void close() {
        hf.close();
        gguf.close();
    }

    @Test
    void bothGiveTheGoldenIds() {
        for (Golden g : Golden.read(DIR)) {
            assertArrayEquals(g.inputIds(), hf.encode(g.prompt(), true), "DJL: '" + g.prompt() + "'");
            assertArrayEquals(g.inputIds(), spm.encode(g.prompt(), true), "GGUF: '" + g.prompt() + "'");
        }
    }

    @Test
    void identicalIdsAndTextOnOtherPrompts() {
        for (String p : PROMPTS) {
            for (boolean special : new boolean[] {true, false}) {
                int[] ids = hf.encode(p, special);
                assertArrayEquals(ids, spm.encode(p, special), "'" + p + "' addSpecial=" + special);
                for (boolean skip : new boolean[] {true, false}) {
                    assertEquals(hf.decode(ids, skip), spm.decode(ids, skip), "'" + p + "' skipSpecial=" + skip);
                }
            }
            if (!p.contains("<")) { // special tokens are dropped by skipSpecial, so only plain text round-trips
                assertEquals(p, spm.decode(spm.encode(p, true), true), "round trip of '" + p + "'");
            }
        }
    }

    @Test
    void decodeBrokenByteRunsAlike() {
        int[] cut = {1, spm.tokenToId("<0xE4>"), spm.tokenToId("<0xB8>"), spm.tokenToId("▁the")}; // 世 without its last byte
        assertEquals(hf.decode(cut, false), spm.decode(cut, false));
        assertEquals("\uFFFD\uFFFD the", spm.decode(cut, true));
    }

    @Test
    void sameVocabularyAndSpecialTokens() {
        assertEquals(512, hf.vocabSize());
        assertEquals(512, spm.vocabSize());
        for (int id = 0; id < 512; id++) {
            assertEquals(hf.idToToken(id), spm.idToToken(id), "id " + id);
            assertEquals(id, spm.tokenToId(spm.idToToken(id)));
            assertEquals(id, hf.tokenToId(hf.idToToken(id)));
        }
        assertEquals(Tokenizer.NO_TOKEN, spm.tokenToId("not a token"));
        assertEquals(1, hf.bosId());
        assertEquals(1, spm.bosId());
        assertArrayEquals(new int[] {2}, hf.eosIds());
        assertArrayEquals(new int[] {2}, spm.eosIds());
    }

    @Test
    void greedyTextOfGoldenDecodes() {
        String expected = "Once upon a time, there was a little girl named Lily.";
        int[] ids = hf.encode(expected, true);
        assertEquals(expected, hf.decode(ids, true));
        assertEquals(expected, spm.decode(ids, true));
    }
}
