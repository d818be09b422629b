package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.lightllm.models.infer.NopadBatch;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The device sampler (penalty kernel + io.lightllm.kernels.Sampling) against the host reference, over mixed settings in one batch. */
class DeviceSamplerTest {
    private static final int VOCAB = 64;
    private static final int EOS = 1;
    private final Device device = Devices.get("jvm");

    private static SamplingParams settings(int i) {
        return switch (i % 8) {
            case 0 -> SamplingParams.greedy(8);
            case 1 -> SamplingParams.builder().temperature(0.8f).build();
            case 2 -> SamplingParams.builder().temperature(1.2f).topK(5).build();
            case 3 -> SamplingParams.builder().temperature(1f).topP(0.7f).build();
            case 4 -> SamplingParams.builder().repetitionPenalty(1.3f).presencePenalty(0.4f).frequencyPenalty(0.2f).build();
            case 5 -> SamplingParams.builder().temperature(0.9f).topK(20).topP(0.9f).maxNewTokens(8).minNewTokens(6).stopTokenIds(List.of(7)).build();
            // logit_bias alone (greedy: +100 all but forces token 3), and beside penalties and sampling (bias first, then penalties)
            case 6 -> SamplingParams.builder().logitBias(java.util.Map.of(3, 100f, 9, -100f)).build();
            default -> SamplingParams.builder().temperature(1f).topK(10).repetitionPenalty(1.3f).frequencyPenalty(0.5f)
                    .logitBias(java.util.Map.of(2, 4f, 4, -2.5f, 11, 7f)).build();
        };
    }

    @Test
    void matchesTheHostReferenceForEveryRowOfAMixedBatch() {
        Random random = new Random(5);
        // one sampler for every trial, as the engine keeps one: its penalty arrays' buffers are reused and grown from trial
        // to trial (the entries' count changes with each trial's tokens)
        try (DeviceSampler sampler = new DeviceSampler(device, VOCAB, Set.of(EOS))) {
            trials(random, sampler);
        }
    }

    private void trials(Random random, DeviceSampler sampler) {
        for (int trial = 0; trial < 20; trial++) {
            int batchRows = 6;
            // the last row's prompt has two sequences (n = 2): rows 0..5 feed sequences 0..6
            int[] logitsRows = {0, 1, 2, 3, 4, 5, 5};
            float[] logits = new float[batchRows * VOCAB];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) (random.nextGaussian() * 3);
            }
            List<Request> sequences = new ArrayList<>();
            for (int s = 0; s < logitsRows.length; s++) {
                Request r = Request.group(s, random.ints(1 + random.nextInt(6), 0, VOCAB).toArray(), settings(s + trial), random.nextLong(), 8)
                        .getFirst();
                for (int g = random.nextInt(5); g > 0; g--) {
                    r.addToken(random.nextInt(VOCAB));
                }
                sequences.add(r);
            }
            int[] one = new int[batchRows];
            java.util.Arrays.fill(one, 1);
            int[] index = java.util.stream.IntStream.range(0, batchRows).toArray();
            Step step = new Step(new NopadBatch(false, index, index, index, index, index, one, one), sequences, logitsRows);
            FloatArray host = FloatArray.fromArray(logits);
            int[] expected = new HostSampler(VOCAB, Set.of(EOS)).sample(step, host);
            try (DeviceBuffer onDevice = device.upload(FloatArray.fromArray(logits))) {
                int[] tokens = sampler.sample(step, onDevice).tokens();
                assertArrayEquals(expected, tokens, "trial " + trial);
                for (int q = 0; q < tokens.length; q++) {
                    if (sequences.get(q).params().logitBias().getOrDefault(3, 0f) == 100f) {
                        org.junit.jupiter.api.Assertions.assertEquals(3, tokens[q], "a bias of 100 on a greedy row, logits ~ N(0, 3)");
                    }
                }
            }
        }
    }
}
