package io.lightllm.models.decoder;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Devices;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A prefill step that mixes decodes with prompts, as chunked prefill builds them (its decodes first, then prompt
 * chunks, {@link NopadBatch#decodes}): the leading decodes go through decode attention and the rest through prefill attention
 * ({@code AttentionBlock.attend}). Every entry's logits must be what the same tokens give in steps of one kind: the
 * decodes in a decode step, each prompt (a chunk over its cached first tokens, or a whole one) prefilled alone.
 * The tolerance is {@link LogitTokensTest}'s: f32 pools, only the attention kernels' order of sums differs.
 */
class MixedStepTest {
    private static final int[] A = {1, 55, 203, 7, 99};
    private static final int[] B = {1, 17, 18, 40, 41, 42, 300};
    private static final int[] C = {1, 90, 91, 92, 93, 94};
    private static final int[] D = {1, 60, 61, 62};
    private static final int NEXT_A = 120, NEXT_B = 121;
    private static final int C_CACHED = 3;

    static Stream<String> devices() {
        return TestDevices.jvmAndAccelerators().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void leadingDecodesAndPromptsGiveWhatStepsOfOneKindGive(String deviceId) {
        check(deviceId, 1e-4f);
    }

    /**
     * Under batch invariance the same, bit for bit: a decode takes decode attention with or without prompt chunks beside
     * it, and the chunk and the prompt after it give what they give prefilled alone ({@code BatchInvariance}).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void underBatchInvarianceEveryEntryIsBitForBitAStepOfOneKind(String deviceId) {
        io.lightllm.testing.TestProperties.with(java.util.Map.of(io.lightllm.kernels.BatchInvariance.PROPERTY, "true"), () -> check(deviceId, 0f));
    }

    private static void check(String deviceId, float tolerance) {
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture("llama"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get(deviceId), Models.Quantization.NONE, true)) {
            int vocab = model.vocabSize();
            float[] mixed, decodes;
            try (TokenKvPool pool = model.newKvPool(128, DType.F32); RequestTokenTable table = new RequestTokenTable(model.device(), 4, 16)) {
                Session s = new Session(model, pool, table, 4);
                s.step(true, new int[][] {A, B, Arrays.copyOf(C, C_CACHED)}, new int[] {0, 1, 2});
                // A and B decode one token each, C's rest over its cached first tokens, D whole: four logit rows
                mixed = s.step(true, new int[][] {{NEXT_A}, {NEXT_B}, Arrays.copyOfRange(C, C_CACHED, C.length), D}, new int[] {0, 1, 2, 3}, 2);
            }
            try (TokenKvPool pool = model.newKvPool(128, DType.F32); RequestTokenTable table = new RequestTokenTable(model.device(), 4, 16)) {
                Session s = new Session(model, pool, table, 2);
                s.step(true, new int[][] {A, B}, new int[] {0, 1});
                decodes = s.step(false, new int[][] {{NEXT_A}, {NEXT_B}}, new int[] {0, 1});
            }
            assertEquals(4 * vocab, mixed.length);
            assertClose(FloatArray.fromArray(decodes), FloatArray.fromArray(Arrays.copyOf(mixed, 2 * vocab)), tolerance, tolerance,
                    "the leading decodes on " + deviceId);
            assertClose(FloatArray.fromArray(alone(model, C)), FloatArray.fromArray(Arrays.copyOfRange(mixed, 2 * vocab, 3 * vocab)), tolerance,
                    tolerance, "the chunk over a cached prefix on " + deviceId);
            assertClose(FloatArray.fromArray(alone(model, D)), FloatArray.fromArray(Arrays.copyOfRange(mixed, 3 * vocab, 4 * vocab)), tolerance,
                    tolerance, "the whole prompt after them on " + deviceId);
        }
    }

    /** A prompt prefilled alone: its last token's logits. */
    private static float[] alone(CausalLM model, int[] prompt) {
        try (TokenKvPool pool = model.newKvPool(64, DType.F32); RequestTokenTable table = new RequestTokenTable(model.device(), 1, 16)) {
            return new Session(model, pool, table, 1).step(true, new int[][] {prompt}, new int[] {0});
        }
    }

    /** Requests with a table row each; a step appends new tokens to some of them and returns the logits of each one's last. */
    private record Session(CausalLM model, TokenKvPool pool, RequestTokenTable table, int[] rows, int[] lengths) {
        Session(CausalLM model, TokenKvPool pool, RequestTokenTable table, int requests) {
            this(model, pool, table, acquire(table, requests), new int[requests]);
        }

        private static int[] acquire(RequestTokenTable table, int n) {
            int[] rows = new int[n];
            for (int i = 0; i < n; i++) {
                rows[i] = table.acquire();
            }
            return rows;
        }

        float[] step(boolean prefill, int[][] newTokens, int[] requests) {
            return step(prefill, newTokens, requests, prefill ? 0 : requests.length);
        }

        /** {@code decodes}: the leading entries that are decode steps of running sequences ({@link NopadBatch#decodes}). */
        float[] step(boolean prefill, int[][] newTokens, int[] requests, int decodes) {
            int t = Arrays.stream(newTokens).mapToInt(a -> a.length).sum();
            int[] ids = new int[t], pos = new int[t], rowsOf = new int[requests.length], starts = new int[requests.length],
                    counts = new int[requests.length], lens = new int[requests.length];
            int at = 0;
            for (int i = 0; i < requests.length; i++) {
                int r = requests[i];
                starts[i] = at;
                counts[i] = newTokens[i].length;
                rowsOf[i] = rows[r];
                for (int token : newTokens[i]) {
                    ids[at] = token;
                    pos[at++] = lengths[r]++;
                }
                lens[i] = lengths[r];
            }
            return model.forwardToHost(new NopadBatch(prefill, ids, pos, pool.alloc(t), rowsOf, starts, counts, lens,
                    NopadBatch.lastTokens(starts, counts), decodes), pool, table).toArray();
        }
    }
}
