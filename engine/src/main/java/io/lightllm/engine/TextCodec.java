package io.lightllm.engine;

/**
 * Text to token ids and back: what the engine needs of a tokenizer (the models module's
 * tokenizer plugs in through a method reference pair).
 */
public interface TextCodec {
    int[] encode(String text);

    /** The text of a run of token ids (may end in U+FFFD while a UTF-8 character is incomplete). */
    String decode(int[] ids);
}
