package io.lightllm.engine;

/**
 * Log-probabilities of one generated token under the model's raw distribution: log_softmax of
 * the logits the model produced, before penalties, masks and temperature (vLLM's default
 * {@code raw_logprobs}), so the values describe the model, not the sampling settings.
 *
 * @param logprob     of the chosen token
 * @param topTokens   the {@link SamplingParams#logprobs()} most likely token ids, most likely first
 *                    (ties: lower id first); empty when 0 were asked
 * @param topLogprobs their log-probabilities, in the same order
 * @param rank        of the chosen token: 1 + the tokens more likely than it (vLLM's rank)
 */
public record TokenLogprobs(float logprob, int[] topTokens, float[] topLogprobs, int rank) {
    public TokenLogprobs {
        if (topTokens.length != topLogprobs.length) {
            throw new IllegalArgumentException("topTokens and topLogprobs differ in length: " + topTokens.length + " vs " + topLogprobs.length);
        }
    }
}
