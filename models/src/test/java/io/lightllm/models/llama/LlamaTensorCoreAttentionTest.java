package io.lightllm.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tensor-core attention kernels inside the model: a Llama of head dimension 64 (the tiny
 * fixtures have 16, which the portable kernels serve) with an f16 KV pool, run with the device's
 * attention on tensor cores and without, on the JVM (its warps emulated; the GPU run sets
 * {@code lightllm.test.devices} and checks cuda:0 the same way). Prefill and decode both go
 * through the kernels, GQA (two query heads a KV head).
 */
class LlamaTensorCoreAttentionTest {
    private static final String TENSOR_CORES = "attention.tensor_cores";

    /** The llama fixture with 2 query heads and 1 KV head of dimension 64 (new random q/k/v/o weights). */
    static Path checkpoint(Path dir) throws java.io.IOException {
        DerivedCheckpoint c = DerivedCheckpoint.of(SharedData.tinyFixture("llama"));
        int hidden = c.hidden(), heads = 2, kvHeads = 1, headDim = 64;
        c.config.put("num_attention_heads", heads).put("num_key_value_heads", kvHeads).put("head_dim", headDim);
        SplittableRandom r = new SplittableRandom(61);
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".self_attn.";
            c.put(p + "q_proj.weight", new long[] {heads * headDim, hidden}, random(r, heads * headDim * hidden, 0.25f));
            c.put(p + "k_proj.weight", new long[] {kvHeads * headDim, hidden}, random(r, kvHeads * headDim * hidden, 0.25f));
            c.put(p + "v_proj.weight", new long[] {kvHeads * headDim, hidden}, random(r, kvHeads * headDim * hidden, 0.25f));
            c.put(p + "o_proj.weight", new long[] {hidden, heads * headDim}, random(r, hidden * heads * headDim, 0.25f));
        }
        return c.write(dir);
    }

    private static float[] random(SplittableRandom r, int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    /** The devices to check: the JVM, and those named by lightllm.test.devices (cuda:0 on a GPU machine). */
    private static List<Device> devices() {
        List<Device> devices = new java.util.ArrayList<>(List.of(Devices.get("jvm")));
        String named = System.getProperty("lightllm.test.devices", "").trim();
        if (!named.isEmpty()) {
            for (String id : named.split("\\s*,\\s*")) {
                if (id.startsWith("cuda")) {
                    devices.add(Devices.get(id));
                }
            }
        }
        return devices;
    }

    @Test
    void tensorCoreAttentionGivesThePortableModelsTokens(@TempDir Path dir) throws Exception {
        Path path = checkpoint(dir);
        int[][] prompts = Golden.read(SharedData.tinyFixture("llama")).stream().map(Golden::inputIds).toArray(int[][]::new);
        int steps = 12;
        for (Device device : devices()) {
            String backend = device.id().contains(":") ? device.id().substring(0, device.id().indexOf(':')) : device.id();
            String key = "lightllm.tuning." + backend + "." + TENSOR_CORES;
            String before = System.getProperty(key);
            try (ModelFiles files = ModelFiles.open(path, LoadOptions.quietly());
                 CausalLM model = Models.load(files, device, Models.Quantization.NONE, true)) {
                System.setProperty(key, "0");
                assertEquals(DType.F32, model.preferredKvDtype(), device.id() + ": the portable kernels prefer f32 pools");
                GreedyRunner portable = new GreedyRunner(model, prompts, steps, DType.F16);
                System.setProperty(key, "1");
                assertEquals(DType.F16, model.preferredKvDtype(), device.id() + ": tensor cores prefer f16 pools");
                GreedyRunner tensorCores = new GreedyRunner(model, prompts, steps, DType.F16);
                float maxDiff = 0f, maxAbs = 0f;
                for (int p = 0; p < prompts.length; p++) {
                    for (int v = 0; v < portable.firstLogits[p].length; v++) {
                        maxDiff = Math.max(maxDiff, Math.abs(portable.firstLogits[p][v] - tensorCores.firstLogits[p][v]));
                        maxAbs = Math.max(maxAbs, Math.abs(portable.firstLogits[p][v]));
                    }
                }
                // the tensor cores round the scaled queries and the probabilities to f16 (relative 2^-11 each;
                // AttentionTest bounds each kernel): logits move by a small fraction of their size, while a wrong
                // head, slot, step or mask moves them by their own size. Zero would mean the kernels were not used.
                assertTrue(maxDiff > 0f, device.id() + ": the tensor-core kernels must actually run");
                assertTrue(maxDiff < 0.01f * maxAbs, device.id() + ": max |logit difference| " + maxDiff + " against max |logit| " + maxAbs);
                int compared = 0;
                for (int p = 0; p < prompts.length; p++) {
                    for (int s = 0; s < steps; s++) {
                        if (portable.margins[p][s] <= 4 * maxDiff) {
                            break; // a near tie may flip; what follows it is another sequence
                        }
                        assertEquals(portable.generated[p][s], tensorCores.generated[p][s], device.id() + " prompt " + p + " step " + s);
                        compared++;
                    }
                }
                assertTrue(compared >= prompts.length * steps / 2, device.id() + ": only " + compared + " greedy tokens were clear enough to compare");
            } finally {
                if (before == null) {
                    System.clearProperty(key);
                } else {
                    System.setProperty(key, before);
                }
            }
        }
    }
}
