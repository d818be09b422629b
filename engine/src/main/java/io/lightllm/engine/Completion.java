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
 */
public record Completion(int sequence, int[] tokens, String text, java.util.List<TokenLogprobs> logprobs, FinishReason finish, String error) { }
