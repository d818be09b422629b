package io.lightllm.engine;

/**
 * One finished sequence, as {@link Engine#generate} returns it.
 *
 * @param sequence which of the prompt's n sequences
 * @param tokens   the generated token ids (a stop token id is included; tokens after a stop string are not)
 * @param text     the generated text, cut before a stop string (null without a tokenizer)
 * @param logprobs one entry per generated token when the request asked for them, else null
 * @param finish   why it ended
 * @param error    the failure for {@link FinishReason#ERROR}
 * @param promptLogprobs sequence 0 of a request that asked for them ({@link SamplingParams#promptLogprobs()}): entry i
 *                 is prompt token i + 1's; else null
 */
public record Completion(int sequence, int[] tokens, String text, java.util.List<TokenLogprobs> logprobs, FinishReason finish, String error,
                         java.util.List<TokenLogprobs> promptLogprobs) { }
