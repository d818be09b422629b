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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Batch-1 decode of int8 weights on int8 activations whose codes the norms write ({@code matmul.q8_codes=1},
 * {@link io.lightllm.kernels.ActivationCodes}) against the same model whose GEMVs round the normed rows themselves: the
 * same codes and scales go into the same integer sums, so the logits are the same floats on the JVM, and elsewhere
 * within one code's rounding of a fused multiply-add (1e-4, {@link FoldedDecodeTest}'s tolerance), with the same greedy
 * tokens. The steps really take the codes: the norms' codes kernels and the GEMVs on codes are launched, and no
 * f32-normed q/k/v or gate/up GEMV. (int4 blocks need rows of 128: the tiny fixtures' 64 do not take that path; the
 * kernels' own tests cover it.)
 */
class ActivationCodesDecodeTest {
    private static final int[] PROMPT = {1, 55, 203, 7, 99, 12};
    private static final int STEPS = 12;

    static Stream<String> devices() {
        return TestDevices.jvmAndAccelerators().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void decodeOnTheNormsCodesEqualsTheGemvsOwnRounding(String id) {
        Decoded own = decode(id, false), codes = decode(id, true);
        assertArrayEquals(own.tokens, codes.tokens, id + ": greedy tokens");
        float tolerance = id.equals("jvm") ? 0f : 1e-4f;
        for (int s = 0; s < STEPS; s++) {
            assertClose(FloatArray.fromArray(own.logits[s]), FloatArray.fromArray(codes.logits[s]), tolerance, tolerance, id + " step " + s);
        }
        assertTrue(codes.kernels.contains("Norms.rmsNormAddResidualCodes") && codes.kernels.contains("Matmul.matmulInt8GemvCodes")
                && codes.kernels.contains("Matmul.matmulInt8GemvGatedCodes"), id + ": the codes kernels run: " + codes.kernels);
        assertTrue(!codes.kernels.contains("Matmul.matmulInt8GemvGatedQ8"), id + ": gate/up reads no f32 row: " + codes.kernels);
        assertTrue(own.kernels.stream().noneMatch(k -> k.endsWith("Codes")), id + ": without the tuning no codes: " + own.kernels);
    }

    private record Decoded(int[] tokens, float[][] logits, List<String> kernels) { }

    private static Decoded decode(String id, boolean codes) {
        String backend = "lightllm.tuning." + Devices.backendName(id) + ".";
        Map<String, String> tuning = new HashMap<>();
        tuning.put(backend + "matmul.q8_codes", codes ? "1" : "0");
        tuning.put(backend + "matmul.int8_q8", "1");
        tuning.put(backend + "matmul.gemv_gated", "1");
        tuning.put(backend + "matmul.gemv_fold", "0");
        tuning.put(backend + "reduce.local", "64"); // the GEMVs on int8 activations shuffle within whole warps
        Decoded[] result = new Decoded[1];
        TestProperties.with(tuning, () -> result[0] = decodeWithTuning(id));
        return result[0];
    }

    private static Decoded decodeWithTuning(String id) {
        try (ModelFiles files = ModelFiles.open(SharedData.tinyFixture("llama"), LoadOptions.quietly());
             CausalLM model = Models.load(files, Devices.get(id), Models.Quantization.INT8, true);
             TokenKvPool pool = model.newKvPool(64, DType.F32);
             RequestTokenTable table = new RequestTokenTable(model.device(), 1, 32)) {
            int row = table.acquire();
            int[] pos = IntStream.range(0, PROMPT.length).toArray();
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
