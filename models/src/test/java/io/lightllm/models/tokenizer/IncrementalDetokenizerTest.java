package io.lightllm.models.tokenizer;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.gguf.GgufWeights;
import io.lightllm.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IncrementalDetokenizerTest {
    private static final String TEXT = "Hello 😀 world, 世界 says héllo 🎉🎉 — done";

    /** Feeds {@code ids} one at a time and returns the pieces (each must be complete text). */
    private static List<String> stream(IncrementalDetokenizer d, int[] ids) {
        List<String> pieces = new ArrayList<>();
        for (int id : ids) {
            String piece = d.next(id);
            assertFalse(piece.contains("\uFFFD"), "piece with a broken character after id " + id);
            assertTrue(piece.isEmpty() || !Character.isLowSurrogate(piece.charAt(0)), "split surrogate pair");
            pieces.add(piece);
        }
        return pieces;
    }

    @Test
    void llama2ByteFallbackEmojiAndCjk() {
        try (HfTokenizer t = HfTokenizer.load(SharedData.root().resolve("tokenizers/llama2"))) {
            int[] ids = t.encode(TEXT, true);
            long byteTokens = Arrays.stream(ids).filter(id -> t.idToToken(id).startsWith("<0x")).count();
            assertTrue(byteTokens >= 8, "the emoji must go through byte fallback");
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, true);
            List<String> pieces = stream(d, ids);
            assertEquals("", d.flush());
            assertEquals(TEXT, String.join("", pieces));
            assertEquals(TEXT, d.text());
            assertTrue(pieces.stream().filter(String::isEmpty).count() >= byteTokens / 2,
                    "bytes of an incomplete character must be held back");
            assertTrue(pieces.contains("😀") || pieces.contains(" 😀"), pieces.toString());
        }
    }

    @Test
    void continuesAfterAPromptWithItsSpaces() {
        try (HfTokenizer t = HfTokenizer.load(SharedData.root().resolve("tokenizers/llama2"))) {
            int[] ids = t.encode(TEXT, true);
            int[] prompt = Arrays.copyOf(ids, 2); // <s> ▁Hello
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, prompt, true);
            String generated = String.join("", stream(d, Arrays.copyOfRange(ids, 2, ids.length)));
            assertEquals("Hello", t.decode(prompt, true));
            assertEquals(TEXT.substring("Hello".length()), generated);
        }
    }

    @Test
    void promptEndingInsideACharacter() {
        try (HfTokenizer t = HfTokenizer.load(SharedData.root().resolve("tokenizers/llama2"))) {
            int[] ids = t.encode(TEXT, true);
            int cut = 0;
            while (!t.decode(Arrays.copyOf(ids, cut), true).endsWith("\uFFFD")) {
                cut++;
            }
            String promptText = t.decode(Arrays.copyOf(ids, cut), true);
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, Arrays.copyOf(ids, cut), true);
            String generated = String.join("", stream(d, Arrays.copyOfRange(ids, cut, ids.length)));
            // the prompt shows the emoji's first byte as U+FFFD; the emoji itself comes out with the generated text
            assertEquals(TEXT, promptText.replace("\uFFFD", "") + generated);
            assertTrue(generated.startsWith("😀"), generated);
        }
    }

    @Test
    void allBytesThroughTheGgufTokenizer() {
        try (GgufWeights w = GgufWeights.open(SharedData.model("stories260K").resolve("stories260K.gguf"), LoadOptions.quietly())) {
            SentencePieceBpeTokenizer t = SentencePieceBpeTokenizer.fromGguf(w.file());
            int[] ids = t.encode(TEXT, true);
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, true);
            assertEquals(TEXT, String.join("", stream(d, ids)) + d.flush());
        }
    }

    @Test
    void flushReleasesAnIncompleteCharacter() {
        try (HfTokenizer t = HfTokenizer.load(SharedData.root().resolve("tokenizers/llama2"))) {
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, true);
            assertEquals("Hi", d.next(t.tokenToId("▁Hi")));
            assertEquals("", d.next(t.tokenToId("<0xF0>")));
            assertEquals("", d.next(t.tokenToId("<0x9F>")));
            assertEquals("\uFFFD\uFFFD", d.flush());
        }
    }
}
