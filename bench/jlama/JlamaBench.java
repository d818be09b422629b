import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.model.functions.Generator;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.SafeTensorSupport;
import com.github.tjake.jlama.safetensors.prompt.PromptContext;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Jlama's decode speed on a Hugging Face directory, for the CPU comparison in docs/benchmarks.md
 * (run by compare.sh; not part of the product). Greedy generation of a short prompt, as
 * `lightllm bench static --input-len 16` measures the engine: prints one JSON line with the decode
 * tokens/s (generated tokens over generation time, the prompt's time apart) over `streams`
 * concurrent generations.
 *
 * bf16 runs on Jlama's Vector API operations, q4 (the directory quantised by Jlama on first use, next to
 * it) on its native SIMD library: on this machine each is the faster of the two for its weights.
 *
 * usage: java ... JlamaBench.java MODEL_DIR bf16|q4 TOKENS STREAMS
 */
public class JlamaBench {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String weights = args[1];
        // each on Jlama's faster path here: bf16 on its Vector API (Panama) operations, Q4 on its native SIMD library
        if (weights.equals("bf16")) {
            System.setProperty("jlama.force_panama_tensor_operations", "true");
        }
        int tokens = Integer.parseInt(args[2]);
        int streams = Integer.parseInt(args[3]);
        if (weights.equals("q4")) {
            Path q4 = dir.resolveSibling(dir.getFileName() + "-jlama-q4");
            if (!Files.isDirectory(q4)) {
                if (!Files.exists(dir.resolve("README.md"))) { // Jlama's quantizer copies the model card
                    Files.writeString(dir.resolve("README.md"), "Random weights (lightllm bench checkpoint).\n");
                }
                SafeTensorSupport.quantizeModel(dir, DType.Q4, new String[] {"model.embed_tokens.weight"}, null, Optional.of(q4));
            }
            dir = q4;
        }
        // Jlama's defaults (its CLI): f32 working memory, activations quantized to int8 for the quantized matmuls
        AbstractModel model = ModelSupport.loadModel(dir.toFile(), DType.F32, DType.I8);
        String prompt = "Once upon a time there was a little girl who lived in a village near the forest";
        // Jlama's token limit counts the prompt too
        int promptTokens = model.getTokenizer().encode(prompt).length;
        // warm-up as long as the measured run, as the engine's bench static warms up (its whole run, since session 18)
        model.generate(UUID.randomUUID(), PromptContext.of(prompt), 0.0f, promptTokens + tokens, (t, f) -> { });
        ExecutorService pool = Executors.newFixedThreadPool(streams);
        List<Future<Generator.Response>> running = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int s = 0; s < streams; s++) {
            running.add(pool.submit(() -> model.generate(UUID.randomUUID(), PromptContext.of(prompt), 0.0f, promptTokens + tokens, (t, f) -> { })));
        }
        long generated = 0, promptMs = 0, generateMs = 0;
        for (Future<Generator.Response> f : running) {
            Generator.Response r = f.get();
            generated += r.generatedTokens;
            promptMs = Math.max(promptMs, r.promptTimeMs);
            generateMs = Math.max(generateMs, r.generateTimeMs);
        }
        double wall = (System.nanoTime() - t0) / 1e9;
        pool.shutdown();
        System.out.printf("{\"engine\":\"jlama-0.8.4\",\"weights\":\"%s\",\"streams\":%d,\"generated\":%d,\"decode_tokens_per_s\":%.2f,"
                + "\"wall_tokens_per_s\":%.2f,\"prompt_ms\":%d}%n", weights, streams, generated, generated / (generateMs / 1000.0),
                generated / wall, promptMs);
        System.exit(0);
    }
}
