package io.lightllm.models.tokenizer;

import io.lightllm.models.ModelLoadException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** Text to token ids and back, for one model's vocabulary. */
public interface Tokenizer extends AutoCloseable {
    /** Returned by {@link #tokenToId} and {@link #bosId} when there is no such token. */
    int NO_TOKEN = -1;

    /**
     * The ids of {@code text}. Special-token strings in the text ("&lt;s&gt;") become their ids;
     * {@code addSpecial} adds the tokens the model wants around a sequence (usually BOS).
     */
    int[] encode(String text, boolean addSpecial);

    /** The text of {@code ids}; {@code skipSpecial} leaves out special tokens (BOS, EOS, ...). */
    String decode(int[] ids, boolean skipSpecial);

    /** The id of a vocabulary entry, or {@link #NO_TOKEN}. */
    int tokenToId(String token);

    /** The vocabulary entry of {@code id} (its raw form, e.g. "▁the" or "&lt;0x0A&gt;"). */
    String idToToken(int id);

    /** The beginning-of-sequence token, or {@link #NO_TOKEN}. */
    int bosId();

    /** Tokens that end a sequence (may be empty). */
    int[] eosIds();

    /** Number of ids (the largest id + 1). */
    int vocabSize();

    /** The Jinja chat template shipped with the tokenizer, kept for the server. */
    Optional<String> chatTemplate();

    @Override
    default void close() {
    }

    /**
     * The tokenizer of a Hugging Face model directory: its tokenizer.json, or where there is none a
     * SentencePiece tokenizer.model (Baichuan, ChatGLM2) or Qwen v1's qwen.tiktoken.
     */
    static Tokenizer load(Path dir) {
        if (Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            return HfTokenizer.load(dir);
        }
        if (Files.isRegularFile(dir.resolve("tokenizer.model"))) {
            return SentencePieceBpeTokenizer.fromModelFile(dir);
        }
        if (Files.isRegularFile(dir.resolve("qwen.tiktoken"))) {
            return HfTokenizer.qwenTiktoken(dir);
        }
        throw new ModelLoadException(dir + " has no tokenizer.json, no SentencePiece tokenizer.model and no qwen.tiktoken");
    }

    /** The tokenizer a GGUF file carries: SentencePiece ("llama") or byte-level BPE ("gpt2"). */
    static Tokenizer fromGguf(io.lightllm.models.gguf.GgufFile f) {
        String model = f.getString("tokenizer.ggml.model");
        return switch (model) {
            case "llama" -> SentencePieceBpeTokenizer.fromGguf(f);
            case "gpt2" -> HfTokenizer.fromGguf(f);
            default -> throw new ModelLoadException("GGUF tokenizer model '" + model + "' in " + f.path()
                    + " is not supported (supported: llama (SentencePiece BPE), gpt2 (byte-level BPE))");
        };
    }
}
