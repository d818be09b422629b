package io.lightllm.models.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.Golden;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.Models;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GGUF llama3 files carry the llama3 rope scaling as {@code rope_freqs.weight}: one divisor of
 * the inverse frequency per rotated pair (llama.cpp: θ_i = pos · base^(-2i/d) / rope_freqs[i]).
 * The stories260K GGUF with the llama3 divisors added must compute what the stories260K HF
 * checkpoint computes with the same llama3 scaling in its config.json.
 */
class GgufRopeFreqsTest {
    private static final Path STORIES = SharedData.model("stories260K");
    // llama3 scaling strong enough to move every rotated pair of stories260K (head dim 8, θ 10000)
    private static final double FACTOR = 8, LOW = 1, HIGH = 4;
    private static final int ORIGINAL_CONTEXT = 8;

    @TempDir
    Path tmp;

    @Test
    void ropeFreqsActAsLlama3Scaling() throws IOException {
        Path gguf = storiesWithRopeFreqs(llama3Divisors(8, 10000.0));
        Path hf = storiesHfWithLlama3Config();
        List<Golden> cases = Golden.read(STORIES);
        float moved = 0;
        for (Golden g : cases) {
            float[] fromGguf = lastLogits(gguf, g.inputIds());
            float[] fromHf = lastLogits(hf, g.inputIds());
            for (int i = 0; i < fromHf.length; i++) {
                // both are this engine in f32 on the same f32 weights; the divisors differ from the
                // llama3 table by float rounding only: the f32 golden bound (LlamaGoldenTest) applies
                assertTrue(Math.abs(fromGguf[i] - fromHf[i]) <= 1e-4f, "logit " + i + ": " + fromGguf[i] + " vs " + fromHf[i]);
                moved = Math.max(moved, Math.abs(fromHf[i] - g.lastLogits()[i]));
            }
        }
        assertTrue(moved > 1e-2f, "the scaling does not change the model (logits moved by " + moved + ")");
    }

    @Test
    void ropeFreqsOfTheWrongLengthAreRefused() throws IOException {
        Path gguf = storiesWithRopeFreqs(new float[] {1, 1, 1});
        try (ModelFiles files = ModelFiles.open(gguf, LoadOptions.quietly())) {
            ModelLoadException e = assertThrows(ModelLoadException.class,
                    () -> Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true));
            assertTrue(e.getMessage().contains("rope_freqs.weight") && e.getMessage().contains("has 3 values")
                    && e.getMessage().contains("4 pairs"), e.getMessage());
        }
    }

    /** HF's _compute_llama3_parameters, written as the divisor of each inverse frequency. */
    private static float[] llama3Divisors(int rotaryDim, double theta) {
        float[] d = new float[rotaryDim / 2];
        double lowWavelen = ORIGINAL_CONTEXT / LOW, highWavelen = ORIGINAL_CONTEXT / HIGH;
        for (int i = 0; i < d.length; i++) {
            double wavelen = 2 * Math.PI * Math.pow(theta, 2.0 * i / rotaryDim);
            if (wavelen < highWavelen) {
                d[i] = 1;
            } else if (wavelen > lowWavelen) {
                d[i] = (float) FACTOR;
            } else {
                double smooth = (ORIGINAL_CONTEXT / wavelen - LOW) / (HIGH - LOW);
                d[i] = (float) (1 / ((1 - smooth) / FACTOR + smooth));
            }
        }
        return d;
    }

    /** stories260K.gguf re-written (metadata and tensors as they are) with a rope_freqs.weight. */
    private Path storiesWithRopeFreqs(float[] divisors) throws IOException {
        Path out = Files.createDirectories(tmp.resolve("gguf")).resolve("stories-rope-freqs.gguf");
        GgufTestWriter w = new GgufTestWriter();
        try (GgufWeights source = GgufWeights.open(STORIES.resolve("stories260K.gguf"), LoadOptions.quietly())) {
            GgufFile f = source.file();
            for (Map.Entry<String, Object> e : f.metadata().entrySet()) {
                String k = e.getKey();
                switch (e.getValue()) {
                    case String s -> w.string(k, s);
                    case Integer i when k.equals("general.alignment") -> w.alignment(i);
                    case Integer i -> w.i32(k, i);
                    case Long l -> w.u64(k, l);
                    case Float x -> w.f32(k, x);
                    case Double x -> w.f64(k, x);
                    case Boolean b -> w.bool(k, b);
                    case String[] a -> w.stringArray(k, a);
                    case float[] a -> w.floatArray(k, a);
                    case int[] a -> w.intArray(k, a);
                    default -> throw new IllegalStateException("metadata " + k + " of type " + e.getValue().getClass());
                }
            }
            for (GgufTensorInfo info : f.tensorInfos()) {
                byte[] data = f.tensor(info, info.name()).data().toArray(ValueLayout.JAVA_BYTE);
                w.tensor(info.name(), info.ggmlType(), info.dims(), data);
            }
        }
        w.tensor("rope_freqs.weight", 0, new long[] {divisors.length}, GgufTestWriter.floats(divisors));
        w.write(out);
        return out;
    }

    /** The stories260K HF directory with llama3 rope scaling in config.json. */
    private Path storiesHfWithLlama3Config() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("hf"));
        for (String f : new String[] {"model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(STORIES.resolve(f), dir.resolve(f));
        }
        ObjectNode config = (ObjectNode) JsonFields.read(STORIES.resolve("config.json"));
        config.putObject("rope_scaling").put("rope_type", "llama3").put("factor", FACTOR).put("low_freq_factor", LOW)
                .put("high_freq_factor", HIGH).put("original_max_position_embeddings", ORIGINAL_CONTEXT);
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        return dir;
    }

    /** One prefill of {@code prompt}: the logits of its last position. */
    private static float[] lastLogits(Path model, int[] prompt) {
        try (ModelFiles files = ModelFiles.open(model, LoadOptions.quietly());
             CausalLM m = Models.load(files, Devices.get("jvm"), Models.Quantization.NONE, true);
             TokenKvPool pool = m.newKvPool(prompt.length, DType.F32);
             RequestTokenTable table = new RequestTokenTable(m.device(), 1, prompt.length)) {
            int row = table.acquire();
            int[] positions = new int[prompt.length];
            for (int i = 0; i < positions.length; i++) {
                positions[i] = i;
            }
            NopadBatch batch = new NopadBatch(true, prompt, positions, pool.alloc(prompt.length), new int[] {row},
                    new int[] {0}, new int[] {prompt.length}, new int[] {prompt.length});
            return m.forwardToHost(batch, pool, table).toArray();
        }
    }
}
