package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class SamplingParamsTest {

    private static String rejection(SamplingParams.Builder b) {
        return assertThrows(IllegalArgumentException.class, b::build).getMessage();
    }

    @Test
    void defaultsAreGreedyWithoutPenalties() {
        SamplingParams p = SamplingParams.builder().build();
        assertTrue(p.greedy());
        assertEquals(false, p.penalized());
        assertEquals(16, p.maxNewTokens());
        assertEquals(1, p.n());
    }

    @Test
    void everyBadFieldIsNamed() {
        assertEquals("temperature must be a finite number >= 0, got -1.0", rejection(SamplingParams.builder().temperature(-1)));
        assertEquals("temperature must be a finite number >= 0, got NaN", rejection(SamplingParams.builder().temperature(Float.NaN)));
        assertEquals("top_p must be in (0, 1], got 0.0", rejection(SamplingParams.builder().topP(0)));
        assertEquals("top_p must be in (0, 1], got 1.5", rejection(SamplingParams.builder().topP(1.5f)));
        assertEquals("top_k must be -1 (all tokens) or >= 1, got 0", rejection(SamplingParams.builder().topK(0)));
        assertEquals("repetition_penalty must be a finite number > 0, got 0.0", rejection(SamplingParams.builder().repetitionPenalty(0)));
        assertEquals("presence_penalty must be in [-2, 2], got 3.0", rejection(SamplingParams.builder().presencePenalty(3)));
        assertEquals("frequency_penalty must be in [-2, 2], got -2.5", rejection(SamplingParams.builder().frequencyPenalty(-2.5f)));
        assertEquals("max_new_tokens must be >= 1, got 0", rejection(SamplingParams.builder().maxNewTokens(0)));
        assertEquals("min_new_tokens must be in [0, max_new_tokens=4], got 5", rejection(SamplingParams.builder().maxNewTokens(4).minNewTokens(5)));
        assertEquals("n must be >= 1, got 0", rejection(SamplingParams.builder().n(0)));
        assertEquals("stop_token_ids must be non-negative token ids, got -3", rejection(SamplingParams.builder().stopTokenIds(List.of(2, -3))));
        assertEquals("stop must be non-empty strings, got \"\"", rejection(SamplingParams.builder().stopStrings(List.of(""))));
    }

    @Test
    void toBuilderRoundTrips() {
        SamplingParams p = SamplingParams.builder().temperature(0.7f).topP(0.9f).topK(40).repetitionPenalty(1.1f).presencePenalty(0.5f)
                .frequencyPenalty(0.25f).seed(42L).maxNewTokens(30).minNewTokens(3).ignoreEos(true).stopTokenIds(List.of(5))
                .stopStrings(List.of("\n\n")).n(2).build();
        assertEquals(p, p.toBuilder().build());
        assertTrue(p.penalized());
    }
}
