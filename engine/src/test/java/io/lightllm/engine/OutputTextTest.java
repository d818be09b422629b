package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.tokenizer.HfTokenizer;
import io.lightllm.testing.SharedData;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Streams real Llama 2 tokens (byte fallback included) and compares with decoding everything at once. */
class OutputTextTest {

    private static HfTokenizer llama2() {
        return HfTokenizer.load(SharedData.root().resolve("tokenizers/llama2"));
    }

    /** The text the output adds after the prompt, decoded in one go. */
    private static String expected(HfTokenizer t, int[] prompt, int[] output) {
        int[] all = IntStream.concat(IntStream.of(prompt), IntStream.of(output)).toArray();
        return t.decode(all, true).substring(t.decode(prompt, true).length());
    }

    @Test
    void piecesAddUpToTheWholeTextWithoutBrokenCharacters() {
        try (HfTokenizer t = llama2()) {
            int[] prompt = t.encode("Say:", true);
            int[] output = t.encode("naïve 日本語 🙂 done", false);
            OutputText text = new OutputText(t, prompt, List.of(), true);
            StringBuilder streamed = new StringBuilder();
            for (int id : output) {
                String piece = text.add(id);
                assertFalse(piece.contains("\uFFFD"), "piece " + piece);
                streamed.append(piece);
            }
            streamed.append(text.finish());
            assertEquals(expected(t, prompt, output), streamed.toString());
        }
    }

    /** skip_special_tokens false keeps a special token's text (here EOS, "</s>"); true, the default, leaves it out. */
    @Test
    void specialTokensAreShownOnlyWhenNotSkipped() {
        try (HfTokenizer t = llama2()) {
            int[] prompt = t.encode("Say:", true);
            int[] output = IntStream.concat(IntStream.of(t.encode("done.", false)), IntStream.of(2)).toArray();
            for (boolean skip : new boolean[] {true, false}) {
                OutputText text = new OutputText(t, prompt, List.of(), skip);
                StringBuilder streamed = new StringBuilder();
                for (int id : output) {
                    streamed.append(text.add(id));
                }
                streamed.append(text.finish());
                assertEquals(skip ? " done." : " done.</s>", streamed.toString(), "skip " + skip);
            }
        }
    }

    @Test
    void theTextEndsBeforeTheFirstStopStringAndNoPartOfItIsShown() {
        try (HfTokenizer t = llama2()) {
            int[] prompt = t.encode("Story:", true);
            int[] output = t.encode("It was late. THE END and then more THE END", false);
            String whole = expected(t, prompt, output);
            String wanted = whole.substring(0, whole.indexOf("THE END"));
            OutputText text = new OutputText(t, prompt, List.of("THE END", "zzz"), true);
            StringBuilder streamed = new StringBuilder();
            for (int id : output) {
                streamed.append(text.add(id));
                assertTrue(wanted.startsWith(streamed.toString()), "shown so far: " + streamed);
                if (text.stopped()) {
                    break;
                }
            }
            assertTrue(text.stopped());
            streamed.append(text.finish());
            assertEquals(wanted, streamed.toString());
        }
    }

    @Test
    void heldBackTextIsReleasedWhenItIsNotAStop() {
        try (HfTokenizer t = llama2()) {
            int[] prompt = t.encode("A", true);
            int[] output = t.encode(" THE ENDLESS", false);
            OutputText text = new OutputText(t, prompt, List.of("THE ENDS"), true);
            StringBuilder streamed = new StringBuilder();
            for (int id : output) {
                streamed.append(text.add(id));
            }
            streamed.append(text.finish());
            assertFalse(text.stopped());
            assertEquals(expected(t, prompt, output), streamed.toString());
        }
    }
}
