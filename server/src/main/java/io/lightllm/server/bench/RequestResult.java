package io.lightllm.server.bench;

/**
 * One benchmark request as the client saw it; times in seconds.
 *
 * @param index           the request's position in the data set
 * @param promptTokens    the prompt's length in the server's tokens (OpenAI: usage.prompt_tokens; LightLLM: measured before the run)
 * @param requestedOutput max_tokens sent (with ignore_eos, the length the output must have)
 * @param outputTokens    tokens generated (OpenAI: usage.completion_tokens; LightLLM: streamed token events)
 * @param success         the stream ended normally
 * @param error           why it failed, or null
 * @param startS          when the request was sent, from the start of the run
 * @param ttftS           time to the first token (NaN when none came)
 * @param latencyS        end-to-end latency: sent to the last event
 * @param itlS            the gaps between successive token events
 * @param output          the generated text ("" when it failed)
 */
public record RequestResult(int index, int promptTokens, int requestedOutput, int outputTokens, boolean success, String error,
                            double startS, double ttftS, double latencyS, double[] itlS, String output) {
    static RequestResult failed(int index, int promptTokens, int requestedOutput, double startS, double elapsedS, String error) {
        return new RequestResult(index, promptTokens, requestedOutput, 0, false, error, startS, Double.NaN, elapsedS, new double[0], "");
    }

    /** Time per output token after the first, as vLLM defines it; NaN for a single-token output. */
    public double tpotS() {
        return outputTokens > 1 ? (latencyS - ttftS) / (outputTokens - 1) : Double.NaN;
    }
}
