package io.lightllm.engine;

/**
 * What the inference loop hands to detokenization: one new token of a sequence, and/or the
 * sequence's end. {@code token} is -1 when a sequence ends without a new token (aborted, failed).
 */
record GeneratedToken(Request request, int token, FinishReason finish, String error) {
    boolean last() {
        return finish != null;
    }
}
