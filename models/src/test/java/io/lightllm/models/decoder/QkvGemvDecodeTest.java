package io.lightllm.models.decoder;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Devices;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Batch-1 decode with the q/k/v projection's GEMV splitting, rotating and pooling its own output ({@code matmul.gemv_qkv=1},
 * {@link io.lightllm.kernels.Matmul#matmulGemvQkv}) against the same model with the GEMV and the split kernel: every decode
 * step's logits within {@link FoldedDecodeTest}'s tolerance (the GEMV adds each row's products in another order) and the
 * same greedy tokens, over Llama and Qwen2 (biases on q, k and v). The steps really take it: the first decode step
 * launches the q/k/v GEMV and no split kernel, the plain one the reverse.
 */
class QkvGemvDecodeTest {
    private static final int[] PROMPT = {1, 55, 203, 7, 99, 12};
    private static final int STEPS = 12;

    static Stream<String> devices() {
        return TestDevices.jvmAndAccelerators().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void splittingQkvGemvDecodesAsTheGemvAndTheSplitKernel(String id) {
        for (String fixture : new String[] {"llama", "qwen2"}) {
            Decoded plain = decode(id, fixture, false), split = decode(id, fixture, true);
            String what = id + " " + fixture;
            assertArrayEquals(plain.tokens, split.tokens, what + ": greedy tokens");
            for (int s = 0; s < STEPS; s++) {
                assertClose(FloatArray.fromArray(plain.logits[s]), FloatArray.fromArray(split.logits[s]), 1e-4f, 1e-4f, what + " step " + s);
            }
            assertTrue(split.kernels.contains("Matmul.matmulGemvQkv") && !split.kernels.contains("KvCache.splitQkv"),
                    what + ": the step launches the q/k/v GEMV and no split: " + split.kernels);
            assertTrue(!plain.kernels.contains("Matmul.matmulGemvQkv") && plain.kernels.contains("KvCache.splitQkv"),
                    what + ": the plain one the reverse: " + plain.kernels);
        }
    }

    private record Decoded(int[] tokens, float[][] logits, List<String> kernels) { }

    private static Decoded decode(String id, String fixture, boolean split) {
        String backend = "lightllm.tuning." + Devices.backendName(id) + ".";
        Map<String, String> tuning = new java.util.HashMap<>();
        tuning.put(backend + "matmul.gemv_qkv", split ? "1" : "0");
        tuning.put(backend + "matmul.gemv_fold", "0");
        if (!id.startsWith("cuda")) { // work-groups of an even number of rows (the JVM and PoCL take one by default), both runs alike
            tuning.put(backend + "matmul.gemv_columns", "2");
            tuning.put(backend + "reduce.local", "64");
        }
        Decoded[] result = new Decoded[1];
        TestProperties.with(tuning, () -> result[0] = decodeWithTuning(id, fixture));
        return result[0];
    }

    private static Decoded decodeWithTuning(String id, String fixture) {
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture(fixture), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get(id), Models.Quantization.NONE, true);
             TokenKvPool pool = model.newKvPool(64, DType.F32);
             RequestTokenTable table = new RequestTokenTable(model.device(), 1, 32)) {
            int vocab = model.vocabSize();
            int row = table.acquire();
            int[] pos = java.util.stream.IntStream.range(0, PROMPT.length).toArray();
            float[] last = model.forwardToHost(new NopadBatch(true, PROMPT, pos, pool.alloc(PROMPT.length), new int[] {row}, new int[] {0},
                    new int[] {PROMPT.length}, new int[] {PROMPT.length}), pool, table).toArray();
            int[] tokens = new int[STEPS];
            float[][] logits = new float[STEPS][];
            int length = PROMPT.length;
            List<String> kernels = List.of();
            for (int s = 0; s < STEPS; s++) {
                tokens[s] = argmax(last);
                // the first decode step's kernels, by name: it runs launch by launch (later ones may replay a recording)
                model.device().setProfiling(s == 0);
                last = model.forwardToHost(new NopadBatch(false, new int[] {tokens[s]}, new int[] {length}, pool.alloc(1), new int[] {row},
                        new int[] {0}, new int[] {1}, new int[] {length + 1}), pool, table).toArray();
                if (s == 0) {
                    kernels = model.device().drainProfile().stream().map(t -> t.name()).toList();
                    model.device().setProfiling(false);
                }
                logits[s] = last;
                length++;
            }
            return new Decoded(tokens, logits, kernels);
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
