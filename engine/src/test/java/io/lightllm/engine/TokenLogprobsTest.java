package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Token log-probabilities against log_softmax computed on the host in double from the raw logits.
 *
 * <p>Tolerance 1e-5 (absolute): the logits compared are the same numbers (the same uploaded row) or the
 * same forward pass run twice, which on the JVM backend may differ by a few ulps (VectorMatmul's
 * reduceLanes(ADD) has an unspecified order that can change between JIT tiers). Otherwise the only
 * difference is the device's f32 log-sum-exp against the host's double one. With the row maximum subtracted and a compensated sum, the device's sum of
 * exponentials is within a few f32 ulps (relative ~1e-7) of the exact one, its log within ~1e-7
 * absolute, and the subtraction logit - lse (|values| < 64 here, ulp 4e-6) adds at most a couple
 * of ulps; 1e-5 covers that with margin and is still far below any real difference between tokens.
 */
class TokenLogprobsTest {
    private static final double TOLERANCE = 1e-5;
    private static final int VOCAB = 300;

    /** The host reference: log_softmax of a row, in double. */
    static double[] logSoftmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp(v - max);
        }
        double lse = max + Math.log(sum);
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = logits[i] - lse;
        }
        return out;
    }

    /** Ids of a row from the most likely, lower id first on ties. */
    static Integer[] byLikelihood(float[] logits) {
        Integer[] ids = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
        Arrays.sort(ids, Comparator.comparingDouble((Integer i) -> -logits[i]).thenComparingInt(i -> i));
        return ids;
    }

    static void assertMatchesReference(float[] row, int chosen, int asked, TokenLogprobs got, String what) {
        double[] expected = logSoftmax(row);
        assertEquals(expected[chosen], got.logprob(), TOLERANCE, what + ": chosen token " + chosen);
        int above = 0;
        for (float v : row) {
            above += v > row[chosen] ? 1 : 0;
        }
        assertEquals(above + 1, got.rank(), what + ": rank");
        Integer[] order = byLikelihood(row);
        assertEquals(asked, got.topTokens().length, what + ": top count");
        for (int k = 0; k < asked; k++) {
            assertEquals(order[k], got.topTokens()[k], what + ": top " + k);
            assertEquals(expected[order[k]], got.topLogprobs()[k], TOLERANCE, what + ": top " + k + " logprob");
            if (k > 0) {
                assertTrue(got.topLogprobs()[k] <= got.topLogprobs()[k - 1], what + ": sorted");
            }
        }
    }

    @Test
    void everyAskingRowOfAMixedBatchGetsRawLogSoftmaxAndNobodyElseDoes() {
        Device device = Devices.get("jvm");
        Random random = new Random(17);
        int rows = 6;
        float[] logits = new float[rows * VOCAB];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (random.nextGaussian() * 4);
        }
        logits[3 * VOCAB + 7] = logits[3 * VOCAB + 9] = 30f; // a tie at the top: lower id first
        // logprobs are of the raw logits: penalties, masks and temperature must not change them
        SamplingParams[] params = {
            SamplingParams.builder().logprobs(0).build(),
            SamplingParams.builder().build(),
            SamplingParams.builder().temperature(0.7f).topK(10).logprobs(5).build(),
            SamplingParams.builder().repetitionPenalty(1.5f).presencePenalty(1f).logprobs(SamplingParams.MAX_LOGPROBS).build(),
            SamplingParams.builder().temperature(1.3f).topP(0.8f).build(),
            SamplingParams.builder().minNewTokens(4).stopTokenIds(List.of(2)).logprobs(3).build(),
        };
        List<Request> sequences = new ArrayList<>();
        for (int s = 0; s < rows; s++) {
            Request r = Request.group(s, new int[] {1, 2, 3, 7}, params[s], 100 + s, 8).getFirst();
            r.addToken(7);
            sequences.add(r);
        }
        int[] index = IntStream.range(0, rows).toArray();
        int[] one = new int[rows];
        Arrays.fill(one, 1);
        Step step = new Step(new NopadBatch(false, index, index, index, index, index, one, one), sequences, index);
        try (DeviceSampler sampler = new DeviceSampler(device, VOCAB, Set.of(2)); DeviceBuffer onDevice = device.upload(FloatArray.fromArray(logits))) {
            DeviceSampler.Sampled sampled = sampler.sample(step, onDevice);
            for (int s = 0; s < rows; s++) {
                float[] row = Arrays.copyOfRange(logits, s * VOCAB, (s + 1) * VOCAB);
                TokenLogprobs got = sampled.logprobs()[s];
                if (params[s].logprobs() < 0) {
                    assertNull(got, "row " + s + " did not ask");
                } else {
                    assertNotNull(got, "row " + s + " asked");
                    assertMatchesReference(row, sampled.tokens()[s], params[s].logprobs(), got, "row " + s);
                }
            }
            assertArrayEquals(new int[] {7, 9}, Arrays.copyOf(sampled.logprobs()[3].topTokens(), 2), "tied top logits: lower id first");
        }
    }

    @Test
    void outOfRangeLogprobsAreRefusedNamingTheField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SamplingParams.builder().logprobs(21).build());
        assertTrue(e.getMessage().startsWith("logprobs must be"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SamplingParams.builder().logprobs(-2).build());
    }

    /**
     * The engine's greedy output with logprobs on stories260K, against the same steps run directly
     * (prefill of the prompt, then one decode per generated token, as the engine runs a lone
     * request) through CausalLM.forwardToHost with log_softmax on the host.
     */
    @Test
    void engineLogprobsEqualHostLogSoftmaxOfTheModelsLogits() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            int[] prompt = golden.getFirst().inputIds();
            int steps = 8, top = 4;
            SamplingParams p = SamplingParams.builder().maxNewTokens(steps).ignoreEos(true).logprobs(top).build();
            Completion c;
            try (Engine engine = Engine.start(model, EngineConfig.of(256, eos), null)) {
                c = engine.generate(prompt, p).getFirst();
                // a request that does not ask gets none
                assertNull(engine.generate(prompt, SamplingParams.greedy(2)).getFirst().logprobs());
            }
            assertEquals(steps, c.tokens().length);
            assertEquals(steps, c.logprobs().size());
            List<float[]> rows = teacherForcedLogits(model, prompt, c.tokens());
            for (int i = 0; i < steps; i++) {
                TokenLogprobs lp = c.logprobs().get(i);
                assertMatchesReference(rows.get(i), c.tokens()[i], top, lp, "token " + i);
                assertEquals(c.tokens()[i], lp.topTokens()[0], "greedy: the chosen token is the most likely");
                assertEquals(lp.logprob(), lp.topLogprobs()[0], "greedy: top-1 logprob is the chosen one's");
            }
        });
    }

    /**
     * Prompt log-probabilities (vLLM's prompt_logprobs): entry i is prompt token i + 1's under the
     * model given the tokens before it, against log_softmax on the host of one prefill that returns every
     * token's logits; the same whether the prompt is prefilled whole or in chunks of 3, after another
     * request has put the prompt into the prefix cache (a scored prompt is computed whole), and with n = 2
     * (sequence 0 carries them). Requests that do not ask get none.
     */
    @Test
    void promptLogprobsEqualHostLogSoftmaxOfEveryPromptPosition() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            int[] prompt = golden.getFirst().inputIds();
            int top = 3;
            List<float[]> rows = everyTokenLogits(model, prompt);
            for (int chunk : new int[] {0, 3}) {
                EngineConfig config = EngineConfig.of(256, eos);
                config = new EngineConfig(config.router(), config.kvDtype(), config.eosTokenIds(), config.tokenizerThreads(), true, chunk);
                try (Engine engine = Engine.start(model, config, null)) {
                    assertNull(engine.generate(prompt, SamplingParams.greedy(2)).getFirst().promptLogprobs(), "not asked");
                    List<Completion> two = engine.generate(prompt, SamplingParams.builder().maxNewTokens(2).n(2).promptLogprobs(top).build());
                    assertNull(two.get(1).promptLogprobs(), "sequence 1 shares sequence 0's prompt");
                    List<TokenLogprobs> got = two.getFirst().promptLogprobs();
                    assertEquals(prompt.length - 1, got.size(), "chunk " + chunk);
                    for (int i = 0; i + 1 < prompt.length; i++) {
                        assertMatchesReference(rows.get(i), prompt[i + 1], top, got.get(i), "chunk " + chunk + ", prompt token " + (i + 1));
                    }
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SamplingParams.builder().promptLogprobs(21).build());
            assertTrue(e.getMessage().startsWith("prompt_logprobs must be"), e.getMessage());
        });
    }

    /** Logits [vocab] of every prompt token, from one prefill. */
    private static List<float[]> everyTokenLogits(CausalLM model, int[] prompt) {
        int vocab = model.vocabSize();
        List<float[]> out = new ArrayList<>();
        try (TokenKvPool pool = model.newKvPool(prompt.length, DType.F32); RequestTokenTable table = new RequestTokenTable(model.device(), 1, prompt.length)) {
            int[] positions = IntStream.range(0, prompt.length).toArray();
            float[] all = model.forwardToHost(new NopadBatch(true, prompt.clone(), positions, pool.alloc(prompt.length), new int[] {table.acquire()},
                    new int[] {0}, new int[] {prompt.length}, new int[] {prompt.length}, positions), pool, table).toArray();
            for (int i = 0; i < prompt.length; i++) {
                out.add(Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab));
            }
        }
        return out;
    }

    /** Logits [vocab] before each generated token: a prefill of the prompt, then decodes of tokens[0 .. n-2]. */
    private static List<float[]> teacherForcedLogits(CausalLM model, int[] prompt, int[] tokens) {
        int vocab = model.vocabSize();
        List<float[]> out = new ArrayList<>();
        try (TokenKvPool pool = model.newKvPool(prompt.length + tokens.length, DType.F32);
             RequestTokenTable table = new RequestTokenTable(model.device(), 1, prompt.length + tokens.length)) {
            int row = table.acquire();
            int[] positions = IntStream.range(0, prompt.length).toArray();
            FloatArray logits = model.forwardToHost(new NopadBatch(true, prompt.clone(), positions, pool.alloc(prompt.length), new int[] {row},
                    new int[] {0}, new int[] {prompt.length}, new int[] {prompt.length}), pool, table);
            out.add(Arrays.copyOf(logits.toArray(), vocab));
            for (int i = 0; i + 1 < tokens.length; i++) {
                int length = prompt.length + i + 1;
                logits = model.forwardToHost(new NopadBatch(false, new int[] {tokens[i]}, new int[] {length - 1}, pool.alloc(1), new int[] {row},
                        new int[] {0}, new int[] {1}, new int[] {length}), pool, table);
                out.add(Arrays.copyOf(logits.toArray(), vocab));
            }
        }
        return out;
    }
}
