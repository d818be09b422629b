package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class HostSamplerTest {
    private static final int EOS = 3;
    private final HostSampler sampler = new HostSampler(4, Set.of(EOS));

    private static Request request(SamplingParams p, long seed, int[] prompt, int... generated) {
        Request r = Request.group(0, prompt, p, seed, p.maxNewTokens()).getFirst();
        for (int t : generated) {
            r.addToken(t);
        }
        return r;
    }

    @Test
    void greedyTakesTheFirstLargestLogit() {
        Request r = request(SamplingParams.greedy(4), 1, new int[] {0});
        assertEquals(1, sampler.sample(new float[] {0, 5, 5, 1}, r));
    }

    @Test
    void penaltiesMatchHandComputedLogits() {
        // prompt {1}, output {0, 0, 3}. Repetition 2 over {0, 1, 3}: [1, -2, 0.5, 0.5];
        // then presence 0.5 + frequency 0.25 x count: token 0 (twice) -1 -> 0, token 3 (once) -0.75 -> -0.25.
        SamplingParams p = SamplingParams.builder().repetitionPenalty(2).presencePenalty(0.5f).frequencyPenalty(0.25f).ignoreEos(true).build();
        float[] logits = {2, -1, 0.5f, 1};
        assertEquals(2, sampler.sample(logits, request(p, 1, new int[] {1}, 0, 0, 3)));
        assertArrayEquals(new float[] {0, -2, 0.5f, -0.25f}, logits);
    }

    @Test
    void eosAndStopIdsAreMaskedBeforeMinNewTokens() {
        SamplingParams p = SamplingParams.builder().maxNewTokens(5).minNewTokens(2).stopTokenIds(List.of(0)).build();
        assertEquals(1, sampler.sample(new float[] {9, 1, 0, 10}, request(p, 1, new int[] {2}, 2)));
        assertEquals(EOS, sampler.sample(new float[] {9, 1, 0, 10}, request(p, 1, new int[] {2}, 2, 2)));
    }

    @Test
    void topKOfOneIsGreedyWhateverTheSeed() {
        SamplingParams p = SamplingParams.builder().temperature(1.5f).topK(1).build();
        for (long seed = 0; seed < 200; seed++) {
            assertEquals(2, sampler.sample(new float[] {1, 2, 3, 0}, request(p, seed, new int[] {0})));
        }
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // probabilities 0.5, 0.3, 0.2, 0: top_p 0.6 keeps {0.5, 0.3} (0.5 alone falls short)
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2), Float.NEGATIVE_INFINITY};
        SamplingParams p = SamplingParams.builder().temperature(1).topP(0.6f).build();
        Set<Integer> seen = new HashSet<>();
        for (long seed = 0; seed < 500; seed++) {
            seen.add(sampler.sample(logits.clone(), request(p, seed, new int[] {0})));
        }
        assertEquals(Set.of(0, 1), seen);
    }

    @Test
    void theSameSeedGivesTheSameTokensAndOthersDiffer() {
        SamplingParams p = SamplingParams.builder().temperature(1).build();
        float[] flat = {0, 0, 0, 0};
        int[] a = new int[64], b = new int[64], c = new int[64];
        Request ra = request(p, 42, new int[] {0}), rb = request(p, 42, new int[] {0}), rc = request(p, 43, new int[] {0});
        for (int k = 0; k < 64; k++) {
            ra.addToken(a[k] = sampler.sample(flat.clone(), ra));
            rb.addToken(b[k] = sampler.sample(flat.clone(), rb));
            rc.addToken(c[k] = sampler.sample(flat.clone(), rc));
        }
        assertArrayEquals(a, b);
        assertNotEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(c));
        assertTrue(java.util.Arrays.stream(a).distinct().count() == 4, "a uniform row over 64 draws uses every token");
    }
}
