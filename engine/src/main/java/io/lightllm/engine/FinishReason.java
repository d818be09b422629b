package io.lightllm.engine;

/** Why a request left the engine. */
public enum FinishReason {
    /** eos, a stop token id or a stop string. */
    STOP,
    /** max_new_tokens, or the model's longest sequence. */
    LENGTH,
    /** cancelled by the client. */
    ABORT,
    /** the engine failed while running it (the message is in the final event). */
    ERROR;

    /** The name the OpenAI-style APIs use. */
    public String apiName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
