package io.lightllm.engine;

/** Where a request is in the inference loop. */
public enum RequestStatus {
    /** queued for admission (new, or paused with its generated tokens). */
    WAITING,
    /** holds KV slots and a table row, decoding. */
    RUNNING,
    /** left the engine; see its finish reason. */
    FINISHED
}
