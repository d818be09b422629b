package io.lightllm.engine;

/**
 * One step of a sequence's output as it streams to the client: a new token and the text it
 * completes, and/or the sequence's end.
 *
 * @param requestId the submission's id
 * @param sequence  which of the prompt's n sequences (0 for n = 1)
 * @param token     the new token id, or -1 when the sequence ends without one
 * @param logprobs  the token's log-probabilities when the request asked for them ({@link SamplingParams#logprobs()} >= 0), else null
 * @param text      new text ready to show (may be empty while a character or a possible stop
 *                  string is incomplete); null when the engine has no tokenizer
 * @param finish    null while the sequence goes on, else why it ended
 * @param error     the failure for {@link FinishReason#ERROR}, else null
 * @param cachedPromptTokens prompt tokens whose KV came from the prefix cache (known once the prompt was prefilled)
 */
public record TokenEvent(long requestId, int sequence, int token, TokenLogprobs logprobs, String text, FinishReason finish, String error,
                         int cachedPromptTokens) {
    public TokenEvent(long requestId, int sequence, int token, TokenLogprobs logprobs, String text, FinishReason finish, String error) {
        this(requestId, sequence, token, logprobs, text, finish, error, 0);
    }

    public boolean last() {
        return finish != null;
    }
}
