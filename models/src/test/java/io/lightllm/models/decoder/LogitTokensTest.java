package io.lightllm.models.decoder;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
 * A prefill that asks for the logits of every token of a prompt (prompt log-probabilities) gives,
 * at the row of token i, what a prefill of the prompt's first i + 1 tokens alone gives at its last
 * token (a causal model sees nothing after i), beside another request whose last token only is asked.
 */
class LogitTokensTest {
    static Stream<String> devices() {
        return TestDevices.jvmAndAccelerators().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void everyTokenRowIsThatPrefixsLastRow(String deviceId) {
        int[] scored = {1, 55, 203, 7, 99, 12};
        int[] other = {1, 17, 18};
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture("llama"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get(deviceId), Models.Quantization.NONE, true)) {
            int vocab = model.vocabSize();
            // request 0 is `other` (last token only), request 1 `scored` (every token): logit rows 0, then 1..6
            int t = other.length + scored.length;
            int[] ids = new int[t], pos = new int[t];
            System.arraycopy(other, 0, ids, 0, other.length);
            System.arraycopy(scored, 0, ids, other.length, scored.length);
            for (int i = 0; i < t; i++) {
                pos[i] = i < other.length ? i : i - other.length;
            }
            int[] logitTokens = new int[1 + scored.length];
            logitTokens[0] = other.length - 1;
            for (int i = 0; i < scored.length; i++) {
                logitTokens[1 + i] = other.length + i;
            }
            float[] all;
            try (TokenKvPool pool = model.newKvPool(64, DType.F32); RequestTokenTable table = new RequestTokenTable(model.device(), 4, 16)) {
                int[] rows = {table.acquire(), table.acquire()};
                NopadBatch batch = new NopadBatch(true, ids, pos, pool.alloc(t), rows, new int[] {0, other.length},
                        new int[] {other.length, scored.length}, new int[] {other.length, scored.length}, logitTokens);
                all = model.forwardToHost(batch, pool, table).toArray();
            }
            assertEquals((1 + scored.length) * vocab, all.length);
            assertClose(FloatArray.fromArray(lastLogits(model, other)), FloatArray.fromArray(Arrays.copyOfRange(all, 0, vocab)), 1e-4f, 1e-4f,
                    "the other request's last token");
            for (int i = 0; i < scored.length; i++) {
                float[] alone = lastLogits(model, Arrays.copyOf(scored, i + 1));
                assertClose(FloatArray.fromArray(alone), FloatArray.fromArray(Arrays.copyOfRange(all, (1 + i) * vocab, (2 + i) * vocab)), 1e-4f, 1e-4f,
                        "token " + i + " on " + deviceId);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void logitTokensMustBeNewTokensAndDecodeStepsKeepTheirOrder(String deviceId) {
        assertThrows(IllegalArgumentException.class, () -> new NopadBatch(true, new int[] {1, 2}, new int[] {0, 1}, new int[] {0, 1},
                new int[] {0}, new int[] {0}, new int[] {2}, new int[] {2}, new int[] {2}));
        assertThrows(IllegalArgumentException.class, () -> new NopadBatch(false, new int[] {1, 2}, new int[] {5, 6}, new int[] {0, 1},
                new int[] {0, 1}, new int[] {0, 1}, new int[] {1, 1}, new int[] {6, 7}, new int[] {1, 0}));
        // a leading decode has one new token
        assertThrows(IllegalArgumentException.class, () -> new NopadBatch(true, new int[] {1, 2, 3}, new int[] {0, 1, 5}, new int[] {0, 1, 2},
                new int[] {0, 1}, new int[] {0, 2}, new int[] {2, 1}, new int[] {2, 6}, new int[] {1, 2}, 1));
    }

    private static float[] lastLogits(CausalLM model, int[] prompt) {
        try (TokenKvPool pool = model.newKvPool(64, DType.F32); RequestTokenTable table = new RequestTokenTable(model.device(), 2, 16)) {
            int[] pos = new int[prompt.length];
            for (int i = 0; i < pos.length; i++) {
                pos[i] = i;
            }
            FloatArray l = model.forwardToHost(new NopadBatch(true, prompt, pos, pool.alloc(prompt.length), new int[] {table.acquire()},
                    new int[] {0}, new int[] {prompt.length}, new int[] {prompt.length}), pool, table);
            return l.toArray();
        }
    }
}
