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
 * @param promptLogprobs on sequence 0's first event of a request that asked ({@link SamplingParams#promptLogprobs()}):
 *                  entry i is the log-probability of prompt token i + 1; else null
 */
public record TokenEvent(long requestId, int sequence, int token, TokenLogprobs logprobs, String text, FinishReason finish, String error,
                         int cachedPromptTokens, java.util.List<TokenLogprobs> promptLogprobs) {
    public TokenEvent(long requestId, int sequence, int token, TokenLogprobs logprobs, String text, FinishReason finish, String error) {
        this(requestId, sequence, token, logprobs, text, finish, error, 0, null);
    }

    /** The same event as sequence {@code s} (several prompts of one API request number their sequences apart). */
    public TokenEvent withSequence(int s) {
        return new TokenEvent(requestId, s, token, logprobs, text, finish, error, cachedPromptTokens, promptLogprobs);
    }

    public boolean last() {
        return finish != null;
    }
}
