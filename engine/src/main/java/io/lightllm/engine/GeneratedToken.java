package io.lightllm.engine;

/**
 * What the inference loop hands to detokenization: one new token of a sequence, and/or the
 * sequence's end. {@code token} is -1 when a sequence ends without a new token (aborted, failed);
 * {@code logprobs} is null unless the request asked for them and there is a token.
 */
record GeneratedToken(Request request, int token, TokenLogprobs logprobs, FinishReason finish, String error) {
    boolean last() {
        return finish != null;
    }
}
