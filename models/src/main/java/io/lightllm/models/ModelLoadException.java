package io.lightllm.models;

/**
 * A model could not be loaded: a missing or broken file, an unsupported architecture, dtype or
 * tensor type. The message is written for the person who named the model (the CLI prints it as is).
 */
public class ModelLoadException extends RuntimeException {
    public ModelLoadException(String message) {
        super(message);
    }

    public ModelLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
