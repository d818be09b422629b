package io.lightllm.cli;

import io.lightllm.engine.bench.KernelProfile;
import io.lightllm.engine.bench.StaticBenchmark;
import io.lightllm.kernels.bench.KernelBench;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.tornado.api.DType;
import java.util.List;

/**
 * {@code lightllm bench static ...}: the static batch benchmark of a model;
 * {@code lightllm bench kernels ...}: the kernel library's throughput on a device;
 * {@code lightllm bench serve ...}: a running server's latency and throughput under a request load;
 * {@code lightllm bench checkpoint ...}: a dummy model written as a Hugging Face checkpoint;
 * {@code lightllm bench vision ...}: a vision model's image encoder (tower and projector) in images per second.
 */
final class BenchCommand implements Main.Command {
    @Override
    public String help(String subcommand) {
        String staticHelp = "usage: lightllm bench static --model M [flags]   (one process: prefill then decode, no HTTP)\n\n" + Main.MODEL_FLAGS + """
                  --batch-size B[,B2,...]  requests per run (default 1)
                  --input-len I            prompt tokens (default 128)
                  --output-len O           generated tokens (default 128)
                  --table-len N            token table rows of N tokens, as a server's (its context; default input + output)
                  --warmup-steps N         warm up over at least N decode steps, repeating the run (default 0: the run once)
                  --json                   one JSON line per run
                  --profile                device time of each kernel in the prefill and over the decode steps (CUDA: without graph replay)
                  --temperature T          sample every token on the device at T (default 0: greedy, the argmax)
                  --top-k K, --top-p P     with --temperature: top-k (default 0: none) and top-p (default 1: none)
                  --variants 'K=N,..;K=N'  the runs again under each tuning (keys of tornado.properties with their backend, as
                                           cuda.matmul.gemv_fold=1; an empty variant is the defaults) on the one loaded model
                """;
        String kernelsHelp = """
                usage: lightllm bench kernels [flags]   (each kernel timed alone at a model's shapes)

                  --device D               (default: -Dtornado.device=B:D or -Dlightllm.device=D, else jvm)
                  --threads N              kernel threads of the jvm device (default: the cores the JVM may use)
                  --size llm|1b|small      Llama-8B shapes, the 1B checkpoint's (bench/configs/llama-1b-32k.json) or small ones (default llm)
                  --only elementwise,matmul,gemv,folded,attention   which groups (default elementwise, matmul, attention; gemv: decode matmuls at the model's matrices, m each of --batches, in bf16, int8, int4; folded: the batch-1 int8 and int4 GEMVs a decode step runs with its norms and residual adds folded in, where the device folds them)
                  --products qkv,o,gateup,down,head   the folded group's products (default all)
                  --tokens N               rows of the elementwise kernels (default 16)
                  --batches 1,16           decode batches of matmul and attention
                  --contexts 1024          decode attention context lengths
                  --prefill 256            prefill attention cases: T one prompt of T tokens, RxT R prompts of T in one launch (0: none)
                  --square N               also an N x N x N matmul (default 0: none)
                  --seconds S              time per kernel (default 0.3)
                  --graphs                 time as CUDA graph replays
                  --kv-slots shuffled      decode attention's pool slots: shuffled (every key row a random read) or ordered
                                           (a request's tokens side by side, as a fresh server allocates them)
                """;
        String serveHelp = """
                usage: lightllm bench serve --url URL [flags]   (a load generator against a running server)

                  --url URL                the server (required)
                  --endpoint openai|lightllm    which API (default openai)
                  --api-key K
                  --dataset fixed|sharegpt-like|shared-prefix|sharegpt   fixed lengths, ShareGPT-like length distributions
                                           around them, system prompts shared by the requests, or conversations
                                           from a ShareGPT JSON file (default fixed)
                  --dataset-path FILE      sharegpt: the file (ShareGPT_V3_unfiltered_cleaned_split.json's format)
                  --prefix-len N / --num-prefixes N   shared-prefix: tokens of each system prompt (default 2000), how many (default 1)
                  --num-prompts N          (default 100)
                  --input-len I / --output-len O   (default 200 / 180)
                  --context-len N          the server's context, to cap lengths
                  --request-rate R|inf     Poisson arrivals per second (default inf: all at once)
                  --max-concurrency N      requests in flight at most
                  --sweep R1,R2,...        one run per rate
                  --warmup N               first N requests of the same shapes with prompts of their own, not measured
                  --request-timeout S      (default 600)
                  --seed S                 (default 0)
                  --out FILE / --plot FILE / --replot FILE   JSON results, a latency plot, or a plot of saved results
                """;
        String checkpointHelp = """
                usage: lightllm bench checkpoint --model PRESET|config.json --out DIR [flags]
                       (random weights of a preset's shapes, as --load-format dummy makes them, written as a Hugging Face
                       checkpoint: for benchmarks that read files, such as serve or another engine on the same files)

                  --model PRESET|FILE      llama-1b, llama-8b, mixtral-8x7b, llava-1.5-7b, qwen-vl-chat, or a config.json (required)
                  --out DIR                where config.json and model.safetensors go (required)
                  --dtype bf16|f16|f32     (default bf16)
                  --tokenizer DIR          copies tokenizer.json, tokenizer.model, tokenizer_config.json and
                                           special_tokens_map.json from DIR (those present)
                """;
        String visionHelp = "usage: lightllm bench vision --model M [flags]   (a vision model's image encoder alone: tower and projector)\n\n"
                + Main.MODEL_FLAGS + """
                  --batch-size B[,B2,...]  images encoded together (default 1,16); the language model then prefills as
                                           many prompts of one image's tokens, for comparison
                  --seconds S              time per batch size, after one warm-up batch (default 3)
                  --json                   one JSON line per batch size
                """;
        return subcommand == null ? "usage: lightllm bench static|kernels|serve|checkpoint|vision [flags]\n\n" + staticHelp + "\n" + kernelsHelp + "\n"
                + serveHelp + "\n" + checkpointHelp + "\n" + visionHelp
                : switch (subcommand) {
                    case "static" -> staticHelp;
                    case "kernels" -> kernelsHelp;
                    case "serve" -> serveHelp;
                    case "checkpoint" -> checkpointHelp;
                    case "vision" -> visionHelp;
                    default -> "unknown benchmark '" + subcommand + "' (static, kernels, serve, checkpoint, vision)";
                };
    }

    @Override
    public String summary() {
        return "benchmarks: 'bench static --model M --batch-size B --input-len I --output-len O [--tp N] [--json]', 'bench kernels --device D', "
                + "'bench serve --url URL --num-prompts N (--request-rate R | --max-concurrency C | --sweep R1,R2) --input-len I --output-len O'";
    }

    @Override
    public int run(Flags f) throws Exception {
        String what = f.positional("benchmark name (static, kernels, serve, checkpoint, vision)");
        return switch (what) {
            case "static" -> runStatic(f);
            case "kernels" -> runKernels(f);
            case "serve" -> ServeBenchFlags.run(f);
            case "checkpoint" -> writeCheckpoint(f);
            case "vision" -> runVision(f);
            default -> throw new IllegalArgumentException("unknown benchmark '" + what + "' (static, kernels, serve, checkpoint, vision)");
        };
    }

    private static int writeCheckpoint(Flags f) throws java.io.IOException {
        String model = f.required("model");
        java.nio.file.Path out = java.nio.file.Path.of(f.required("out"));
        DType dtype = DType.fromName(f.string("dtype", "bf16"));
        java.nio.file.Path tokenizer = f.has("tokenizer") ? java.nio.file.Path.of(f.required("tokenizer")) : null;
        f.checkAllRead();
        if (tokenizer != null && !java.nio.file.Files.isDirectory(tokenizer)) {
            throw new IllegalArgumentException("--tokenizer " + tokenizer + ": no such directory");
        }
        long bytes = io.lightllm.models.Models.writeDummyCheckpoint(model, dtype, out);
        if (tokenizer != null) {
            for (String name : new String[] {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"}) {
                if (java.nio.file.Files.isRegularFile(tokenizer.resolve(name))) {
                    java.nio.file.Files.copy(tokenizer.resolve(name), out.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        System.out.printf("wrote %s: config.json, model.safetensors (%.2f GiB of %s weights)%s%n", out, bytes / (double) (1L << 30), dtype,
                tokenizer == null ? "" : ", the tokenizer of " + tokenizer);
        return 0;
    }

    private static int runKernels(Flags f) {
        var device = io.lightllm.tornado.runtime.Devices.get(ModelOptions.deviceId(f));
        KernelBench.Shape shape = switch (f.string("size", "llm")) {
            case "small" -> KernelBench.Shape.SMALL;
            case "1b" -> KernelBench.Shape.LLAMA_1B;
            case "llm" -> KernelBench.Shape.LLAMA_8B;
            default -> throw new IllegalArgumentException("--size must be llm, 1b or small");
        };
        int tokens = f.integer("tokens", 16, 1, 1 << 16);
        double seconds = f.number("seconds", 0.3, 0.01, 60);
        int[] batches = ints(f.string("batches", "1,16"));
        int[] contexts = ints(f.string("contexts", "1024"));
        int square = f.integer("square", 0, 0, 16384);
        List<KernelBench.Prefill> prefill = KernelBench.Prefill.parse(f.string("prefill", "256"));
        java.util.Set<String> only = java.util.Set.of(f.string("only", "elementwise,matmul,attention").split(","));
        java.util.Set<String> products = java.util.Set.of(f.string("products", String.join(",", KernelBench.FOLDED_PRODUCTS)).split(","));
        boolean graphs = f.bool("graphs");
        String kvSlots = f.string("kv-slots", "shuffled");
        if (!kvSlots.equals("shuffled") && !kvSlots.equals("ordered")) {
            throw new IllegalArgumentException("--kv-slots must be shuffled or ordered, not " + kvSlots);
        }
        f.checkAllRead();
        KernelBench bench = new KernelBench(device, seconds, graphs).orderedSlots(kvSlots.equals("ordered"));
        io.lightllm.kernels.KernelLibrary.installOverrides(device);
        System.out.println("device " + device + ", shape " + shape + ", tokens " + tokens + (graphs ? ", timed as graph replays" : ""));
        System.out.println(KernelBench.HEADER);
        if (only.contains("elementwise")) {
            bench.run(shape, tokens);
        }
        if (only.contains("matmul")) {
            bench.runMatmul(shape, batches, square);
        }
        if (only.contains("gemv")) {
            bench.runDecodeMatmuls(shape, batches);
        }
        if (only.contains("folded")) {
            bench.runFoldedGemvs(shape, products);
        }
        if (only.contains("attention")) {
            bench.runAttention(shape, batches, contexts, prefill);
        }
        System.out.println("JSON " + bench.results().stream().map(KernelBench.Result::json).toList());
        return 0;
    }

    /** Random images through the encoder, each batch size repeated for the time given: images/s and image tokens/s. */
    private static int runVision(Flags f) {
        ModelOptions m = ModelOptions.read(f);
        int[] batches = ints(f.string("batch-size", "1,16"));
        double seconds = f.number("seconds", 3, 0.01, 600);
        boolean json = f.bool("json");
        f.checkAllRead();
        try (ModelFiles files = m.files(json); CausalLM model = m.load(files, json)) {
            if (!(model.unwrap() instanceof io.lightllm.models.vision.VisionLanguageModel llava)) {
                throw new IllegalArgumentException("bench vision needs a vision model (llava-1.5-7b, qwen-vl-chat, a Llava or Qwen-VL checkpoint)");
            }
            java.util.Random random = new java.util.Random(42);
            int side = llava.imageSize();
            for (int batch : batches) {
                if (batch < 1 || batch > 1024) {
                    throw new IllegalArgumentException("--batch-size must be between 1 and 1024, got " + batch);
                }
                java.util.List<float[]> images = new java.util.ArrayList<>();
                for (int i = 0; i < batch; i++) {
                    float[] px = new float[3 * side * side];
                    for (int j = 0; j < px.length; j++) {
                        px[j] = (float) random.nextGaussian();
                    }
                    images.add(px);
                }
                llava.encode(images); // compiles the kernels
                long start = System.nanoTime();
                int runs = 0;
                do {
                    llava.encode(images);
                    runs++;
                } while (System.nanoTime() - start < seconds * 1e9);
                double s = (System.nanoTime() - start) / 1e9, perSecond = runs * batch / s;
                // the language model's prefill of as many prompts of one image's length, for comparison
                StaticBenchmark.Result lm = StaticBenchmark.run(model, batch, llava.tokensPerImage(), 1, model.kvDtype(null), 42);
                if (json) {
                    System.out.printf(java.util.Locale.ROOT, "{\"device\":\"%s\",\"batch\":%d,\"images_per_s\":%.2f,\"image_tokens_per_s\":%.1f,"
                            + "\"ms_per_batch\":%.2f,\"lm_prefill_tokens_per_s\":%.1f}%n", m.device().id(), batch, perSecond,
                            perSecond * llava.tokensPerImage(), 1000 * s / runs, lm.prefillTokensPerS());
                } else {
                    System.out.printf("device %s, batch %d: %.2f images/s (%.1f image tokens/s, %.1f ms a batch); the language model prefills "
                            + "%d x %d tokens at %.1f tokens/s%n", m.device(), batch, perSecond, perSecond * llava.tokensPerImage(), 1000 * s / runs,
                            batch, llava.tokensPerImage(), lm.prefillTokensPerS());
                }
            }
        }
        return 0;
    }

    private static int[] ints(String csv) {
        try {
            return java.util.Arrays.stream(csv.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("expected comma-separated integers, got '" + csv + "'");
        }
    }

    /** {@code --batch-size} may list several sizes (1,64,256): the model is loaded once and each size runs in turn. */
    private static int runStatic(Flags f) {
        ModelOptions m = ModelOptions.read(f);
        int[] batches = ints(f.string("batch-size", "1"));
        for (int b : batches) {
            if (b < 1 || b > 4096) {
                throw new IllegalArgumentException("--batch-size must be between 1 and 4096, got " + b);
            }
        }
        int input = f.integer("input-len", 128, 1, 1 << 20);
        int output = f.integer("output-len", 128, 1, 1 << 20);
        int tableLen = f.integer("table-len", input + output, input + output, 1 << 24);
        int warmupSteps = f.integer("warmup-steps", 0, 0, 1 << 24);
        DType kvOption = ModelOptions.kvDtype(f);
        boolean json = f.bool("json");
        boolean profile = f.bool("profile");
        StaticBenchmark.Decoding decoding = new StaticBenchmark.Decoding((float) f.number("temperature", 0, 0, 100),
                f.integer("top-k", 0, 0, Integer.MAX_VALUE), (float) f.number("top-p", 1, 1e-6, 1));
        if (decoding.temperature() == 0f && !decoding.equals(StaticBenchmark.Decoding.GREEDY)) {
            throw new IllegalArgumentException("--top-k and --top-p sample: give --temperature above 0 with them");
        }
        List<TuningVariant> variants = TuningVariant.parseAll(f.string("variants", ""));
        f.checkAllRead();
        if (variants.size() > 1 && m.devices().size() > 1) {
            throw new IllegalArgumentException("--variants compares tunings on one device; it does not run with --tp");
        }
        try (ModelFiles files = m.files(json); CausalLM model = m.load(files, json)) {
            DType kv = model.kvDtype(kvOption);
            for (TuningVariant variant : variants) {
                variant.apply();
                if (variants.size() > 1) {
                    model.tuningChanged();
                }
                try {
                    for (int batch : batches) {
                        StaticBenchmark.Result r = StaticBenchmark.run(model, batch, input, output, kv, 42, profile, decoding,
                                new StaticBenchmark.Setup(tableLen, warmupSteps));
                        if (json) {
                            // the devices and ranks first, so that a saved line says what it measured
                            String devices = m.devices().stream().map(io.lightllm.tornado.runtime.Device::id)
                                    .collect(java.util.stream.Collectors.joining(","));
                            System.out.println("{\"devices\":\"" + devices + "\",\"tp\":" + m.devices().size() + ",\"kv\":\"" + kv + "\","
                                    + (variant.isEmpty() ? "" : "\"variant\":\"" + variant + "\",")
                                    + (tableLen == input + output ? "" : "\"table_len\":" + tableLen + ",")
                                    + (warmupSteps == 0 ? "" : "\"warmup_steps\":" + warmupSteps + ",")
                                    + (decoding.equals(StaticBenchmark.Decoding.GREEDY) ? "" : "\"decoding\":\"" + decoding.label() + "\",")
                                    + r.json().substring(1));
                        } else {
                            System.out.printf("device %s, batch %d, input %d, output %d, KV %s, %s%s%s%s%n",
                                    m.devices().size() == 1 ? m.device() : m.devices(), batch, input, output, kv, decoding.label(),
                                    tableLen == input + output ? "" : ", table rows of " + tableLen,
                                    warmupSteps == 0 ? "" : ", warmed up over " + warmupSteps + " decode steps",
                                    variant.isEmpty() ? "" : ", tuning " + variant);
                            System.out.printf("prefill: %.1f tokens/s (%.3f s)%ndecode:  %.1f tokens/s (%.2f ms per step)%npeak KV tokens: %d%n",
                                    r.prefillTokensPerS(), r.prefillSeconds(), r.decodeTokensPerS(), r.decodeStepMs(), r.peakKvTokens());
                        }
                        if (profile) {
                            System.out.print(KernelProfile.table(r.prefillProfile(), 1, "prefill"));
                            System.out.print(KernelProfile.table(r.decodeProfile(), output - 1, "decode steps"));
                        }
                    }
                } finally {
                    variant.clear();
                }
            }
        }
        return 0;
    }

    /**
     * One tuning of {@code bench static --variants}: properties {@code lightllm.tuning.<key>} (keys as
     * {@code cuda.matmul.gemv_fold}) set for its runs and cleared after, on the one loaded model.
     */
    record TuningVariant(java.util.Map<String, String> values) {
        /** "k=v,k=v;k=v" (variants separated by ';', a variant's settings by ','; an empty variant is the defaults). */
        static List<TuningVariant> parseAll(String spec) {
            List<TuningVariant> out = new java.util.ArrayList<>();
            for (String v : spec.split(";", -1)) {
                java.util.Map<String, String> values = new java.util.LinkedHashMap<>();
                for (String setting : v.split(",")) {
                    if (setting.isBlank()) {
                        continue;
                    }
                    String[] kv = setting.split("=", 2);
                    if (kv.length != 2 || !kv[0].trim().matches("(jvm|opencl|cuda)\\.[a-z0-9_.]+") || !kv[1].trim().matches("-?[0-9]+")) {
                        throw new IllegalArgumentException("--variants: '" + setting.trim() + "' is not backend.key=N (e.g. cuda.matmul.gemv_fold=1)");
                    }
                    values.put(kv[0].trim(), kv[1].trim());
                }
                out.add(new TuningVariant(values));
            }
            return out;
        }

        boolean isEmpty() {
            return values.isEmpty();
        }

        void apply() {
            values.forEach((k, v) -> System.setProperty("lightllm.tuning." + k, v));
        }

        void clear() {
            values.keySet().forEach(k -> System.clearProperty("lightllm.tuning." + k));
        }

        @Override
        public String toString() {
            return values.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(java.util.stream.Collectors.joining(","));
        }
    }
}
