package io.lightllm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.SharedData;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.runtime.Devices;
import java.io.ByteArrayOutputStream;
import java.util.List;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI's contract with a user: a clear message and exit code 2 for bad input, the right output otherwise. */
class MainTest {
    private record Result(int code, String out, String err) {
    }

    private static synchronized Result run(String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        try {
            int code = Main.run(args);
            return new Result(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    @Test
    void badInputGetsAMessageAndExitCode2(@TempDir Path tmp) throws java.io.IOException {
        assertEquals(2, run("frobnicate").code());
        Result unknownFlag = run("devices", "--colour");
        assertEquals(2, unknownFlag.code());
        assertTrue(unknownFlag.err().contains("unknown flag --colour"), unknownFlag.err());
        Result missing = run("generate", "--model", "/nonexistent/model", "--prompt", "hi");
        assertEquals(2, missing.code());
        assertTrue(missing.err().contains("--model /nonexistent/model: no such file or directory"), missing.err());
        Result both = run("generate", "--model", SharedData.model("stories260K").toString());
        assertEquals(2, both.code());
        assertTrue(both.err().contains("give exactly one of --prompt and --prompt-ids"), both.err());
        Path neox = Files.createDirectories(tmp.resolve("neox"));
        Files.writeString(neox.resolve("config.json"), """
                {"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                 "vocab_size": 10, "layer_norm_eps": 1e-5}""");
        Result arch = run("generate", "--model", neox.toString(), "--prompt", "hi", "--json");
        assertEquals(2, arch.code());
        assertTrue(arch.err().contains("architecture 'gpt_neox'") && !arch.err().contains("Exception"), arch.err());
        // an architecture beyond the Llama family generates
        Result bloom = run("generate", "--model", SharedData.tinyFixture("bloom").toString(), "--prompt", "hi", "--max-new-tokens", "4", "--json");
        assertEquals(0, bloom.code(), bloom.err());
    }

    /** Every command answers --help (after the command, or a benchmark's name) with its flags, exit 0. */
    @Test
    void everyCommandListsItsFlagsOnHelp() {
        for (String[] args : new String[][] {{"generate", "--help"}, {"serve", "--help"}, {"devices", "--help"}, {"bench", "--help"},
                {"bench", "serve", "--help"}, {"bench", "static", "-h"}, {"bench", "kernels", "--help"},
                {"bench", "checkpoint", "--help"}, {"bench", "vision", "--help"}}) {
            Result r = run(args);
            assertEquals(0, r.code(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.out().startsWith("usage: lightllm " + args[0]), r.out());
        }
        assertTrue(run("generate", "--help").out().contains("--max-new-tokens"));
        assertTrue(run("serve", "--help").out().contains("--chunked-prefill-size"));
        assertTrue(run("bench", "serve", "--help").out().contains("--request-rate"));
    }

    /** The shared-prefix workload's flags are read (they were read after the check for unknown flags, which refused them). */
    /** bench kernels times decode attention over ordered or shuffled pool slots, and refuses another layout by name. */
    @Test
    void benchKernelsTakesTheKvSlotLayout() {
        Result ordered = run("bench", "kernels", "--device", "jvm", "--size", "small", "--only", "attention", "--batches", "1", "--contexts",
                "48", "--prefill", "0", "--seconds", "0.01", "--kv-slots", "ordered");
        assertEquals(0, ordered.code(), ordered.err());
        assertTrue(ordered.out().contains("ctx48") && ordered.out().contains("ordered slots"), ordered.out());
        Result shuffled = run("bench", "kernels", "--device", "jvm", "--size", "small", "--only", "attention", "--batches", "1", "--contexts",
                "48", "--prefill", "0", "--seconds", "0.01");
        assertTrue(shuffled.out().contains("ctx48") && !shuffled.out().contains("ordered slots"), shuffled.out());
        Result bad = run("bench", "kernels", "--device", "jvm", "--kv-slots", "sorted");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--kv-slots must be shuffled or ordered"), bad.err());
    }

    /** bench kernels times prefill attention of several prompts in one launch (RxT) beside single ones, and refuses a malformed case. */
    @Test
    void benchKernelsTimesBatchedPrefills() {
        Result r = run("bench", "kernels", "--device", "jvm", "--size", "small", "--only", "attention", "--batches", "1", "--contexts",
                "16", "--prefill", "24,3x16", "--seconds", "0.01");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("| 24 tok causal") && r.out().contains("| 3 x 16 tok causal"), r.out());
        Result bad = run("bench", "kernels", "--device", "jvm", "--prefill", "3x");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("a prefill case is T or RxT"), bad.err());
    }

    @Test
    void benchServeTakesTheSharedPrefixFlags() throws java.io.IOException {
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            closed = s.getLocalPort();
        }
        Result r = run("bench", "serve", "--url", "http://127.0.0.1:" + closed, "--dataset", "shared-prefix", "--prefix-len", "20",
                "--num-prefixes", "2", "--num-prompts", "2", "--input-len", "4", "--output-len", "2", "--request-rate", "inf");
        assertTrue(!r.err().contains("unknown flag"), r.err());
        assertTrue(r.err().contains("/v1/models"), "it went on to ask the server for its model: " + r.err());
    }

    @Test
    void aBusyPortIsReportedBeforeTheModelLoads() throws java.io.IOException {
        try (java.net.ServerSocket busy = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            Result r = run("serve", "--model", SharedData.model("stories260K").toString(), "--port", String.valueOf(busy.getLocalPort()));
            assertEquals(2, r.code());
            assertTrue(r.err().contains("port is in use"), r.err());
        }
    }

    @Test
    void generateTakesA64BitSeed() {
        Result r = run("generate", "--model", SharedData.model("stories260K").toString(), "--prompt", "Once", "--max-new-tokens", "4",
                "--temperature", "1", "--seed", "9007199254740993", "--json");
        assertEquals(0, r.code(), r.err());
    }

    @Test
    void generatePrintsTheGreedyStoryAsJson() {
        Result r = run("generate", "--model", SharedData.model("stories260K").toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "12", "--temperature", "0", "--json");
        assertEquals(0, r.code(), r.err());
        // the text that the model's author documents for this prompt (shared/README.md)
        assertTrue(r.out().contains("\"text\":\", there was a little girl named Lily."), r.out());
        assertTrue(r.out().contains("\"prompt_ids\":[1,"), r.out());
    }

    /** bench checkpoint writes a loadable Hugging Face directory, the tokenizer copied beside it (Models' test checks the weights). */
    @Test
    void benchCheckpointWritesALoadableDirectory(@TempDir Path tmp) {
        Path out = tmp.resolve("ckpt");
        Result written = run("bench", "checkpoint", "--model", SharedData.tinyFixture("llama").resolve("config.json").toString(),
                "--out", out.toString(), "--tokenizer", SharedData.tinyFixture("llama").toString());
        assertEquals(0, written.code(), written.err());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")) && Files.isRegularFile(out.resolve("tokenizer.json")), written.out());
        Result generated = run("generate", "--model", out.toString(), "--prompt", "Once upon a time", "--max-new-tokens", "4", "--json");
        assertEquals(0, generated.code(), generated.err());
        assertTrue(generated.out().contains("\"output_ids\":["), generated.out());
        assertEquals(2, run("bench", "checkpoint", "--model", "llama-1b").code(), "--out is required");
    }

    @Test
    void theServerAnswersWithTheTextGenerateGives() throws Exception {
        Result cli = run("generate", "--model", SharedData.model("stories260K").toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "24", "--temperature", "0", "--ignore-eos", "--json");
        assertEquals(0, cli.code(), cli.err());
        String expected = new com.fasterxml.jackson.databind.ObjectMapper().readTree(cli.out()).path("text").asText();
        try (io.lightllm.server.ModelServer server = io.lightllm.server.StoriesServer.start(io.lightllm.server.ServerConfig.local(0))) {
            java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                            java.net.URI.create(server.url() + "/v1/completions"))
                    .header("Content-Type", "application/json")
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"model\": \"stories260K\", \"prompt\": \"Once upon a time\","
                            + " \"max_tokens\": 24, \"temperature\": 0, \"ignore_eos\": true}")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            String served = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.body()).path("choices").get(0).path("text").asText();
            assertEquals(expected, served);
        }
    }

    /**
     * --variants: the runs again under each tuning on the one loaded model (the defaults, then the batch-1 GEMVs with
     * the norms folded in), each JSON line naming its variant; a malformed one and --tp are refused before loading.
     */
    @Test
    void benchStaticRunsEachTuningVariantOnOneLoad() {
        String stories = SharedData.model("stories260K").toString();
        Result r = run("bench", "static", "--model", stories, "--batch-size", "1", "--input-len", "4", "--output-len", "3", "--json",
                "--variants", ";jvm.matmul.gemv_fold=1,jvm.matmul.gemv_gated=1");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().filter(l -> l.startsWith("{")).toList();
        assertEquals(2, lines.size(), r.out());
        assertTrue(!lines.get(0).contains("\"variant\"") && lines.get(1).contains("\"variant\":\"jvm.matmul.gemv_fold=1,jvm.matmul.gemv_gated=1\","),
                r.out());
        assertEquals(null, System.getProperty("lightllm.tuning.jvm.matmul.gemv_fold"), "a variant's tuning is cleared after its runs");
        Result bad = run("bench", "static", "--model", stories, "--variants", "matmul.gemv_fold=1");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("is not backend.key=N"), bad.err());
        Result tp = run("bench", "static", "--model", stories, "--tp", "2", "--variants", ";jvm.matmul.gemv_fold=1");
        assertEquals(2, tp.code());
        assertTrue(tp.err().contains("does not run with --tp"), tp.err());
    }

    /**
     * A variant that changes how decode attention splits its requests: the split scratch, sized for the tuning when the
     * model first decoded, is sized again (it held 16 entries where the shorter splits need 112, and the run failed).
     */
    @Test
    void benchStaticVariantsResizeTheDecodeSplitScratch() {
        String stories = SharedData.model("stories260K").toString();
        Result r = run("bench", "static", "--model", stories, "--batch-size", "4", "--input-len", "100", "--output-len", "4", "--json",
                "--variants", ";jvm.attention.split_len=16;");
        assertEquals(0, r.code(), r.err());
        assertEquals(3, r.out().lines().filter(l -> l.startsWith("{")).count(), r.out());
    }

    /**
     * --table-len runs in a token table of longer rows, as a server's, and --warmup-steps warms up longer; the JSON line says
     * so (the defaults do not); a table too short for the run or longer than the model's context is refused with a message.
     */
    @Test
    void benchStaticRunsInATableOfTheRowsGiven() {
        String stories = SharedData.model("stories260K").toString();
        Result r = run("bench", "static", "--model", stories, "--batch-size", "2", "--input-len", "4", "--output-len", "3", "--table-len", "256",
                "--warmup-steps", "10", "--json");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("{") && l.contains("\"table_len\":256,") && l.contains("\"warmup_steps\":10,")),
                r.out());
        Result own = run("bench", "static", "--model", stories, "--batch-size", "2", "--input-len", "4", "--output-len", "3", "--json");
        assertTrue(own.out().lines().anyMatch(l -> l.startsWith("{") && !l.contains("table_len")), own.out());
        Result shorter = run("bench", "static", "--model", stories, "--input-len", "4", "--output-len", "3", "--table-len", "6");
        assertEquals(2, shorter.code());
        assertTrue(shorter.err().contains("--table-len must be between 7 and"), shorter.err());
        Result longer = run("bench", "static", "--model", stories, "--input-len", "4", "--output-len", "3", "--table-len", "100000");
        assertEquals(2, longer.code());
        assertTrue(longer.err().contains("exceeds the model's"), longer.err());
    }

    /** One load, one JSON line per listed batch size, at tp 2; a bad size and a bad --tp are refused before loading. */
    @Test
    void benchStaticRunsEachListedBatchSize() {
        Result r = run("bench", "static", "--model", SharedData.model("stories260K").toString(), "--tp", "2", "--batch-size", "1,3",
                "--input-len", "4", "--output-len", "3", "--json");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().filter(l -> l.startsWith("{")).toList();
        assertEquals(2, lines.size(), r.out());
        assertTrue(lines.get(0).contains("\"batch_size\":1,") && lines.get(1).contains("\"batch_size\":3,"), r.out());
        assertTrue(lines.get(0).startsWith("{\"devices\":\"jvm,jvm\",\"tp\":2,"), r.out());
        Result zero = run("bench", "static", "--model", SharedData.model("stories260K").toString(), "--batch-size", "1,0");
        assertEquals(2, zero.code());
        assertTrue(zero.err().contains("--batch-size must be between 1 and 4096, got 0"), zero.err());
        Result tp = run("serve", "--model", SharedData.model("stories260K").toString(), "--tp", "0");
        assertEquals(2, tp.code());
        assertTrue(tp.err().contains("--tp"), tp.err());
    }

    /**
     * {@code --kv-dtype fp8} (also f8, fp8_e4m3) is taken by generate, serve and bench static; a bad value is
     * refused with the accepted ones. Generate over fp8 KV gives f32 KV's 16 greedy tokens for this prompt.
     */
    @Test
    void kvDtypeTakesFp8AndListsTheChoicesOtherwise() {
        String stories = SharedData.model("stories260K").toString();
        Result fp8 = run("generate", "--model", stories, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--kv-dtype", "fp8", "--json");
        assertEquals(0, fp8.code(), fp8.err());
        Result f32 = run("generate", "--model", stories, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--kv-dtype", "f32", "--json");
        assertEquals(0, f32.code(), f32.err());
        assertEquals(f32.out(), fp8.out());
        Result bench = run("bench", "static", "--model", stories, "--batch-size", "2", "--input-len", "4", "--output-len", "3", "--kv-dtype", "fp8",
                "--json");
        assertEquals(0, bench.code(), bench.err());
        assertTrue(bench.out().contains("\"kv\":\"F8_E4M3\""), bench.out());
        for (String alias : new String[] {"f8", "FP8_E4M3", "fp8"}) {
            assertEquals(io.lightllm.tornado.api.DType.F8_E4M3, ModelOptions.kvDtype(Flags.parse(new String[] {"--kv-dtype", alias})), alias);
        }
        Result bad = run("serve", "--model", stories, "--kv-dtype", "fp4");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--kv-dtype must be auto, f32, f16, i8 or fp8 (got 'fp4')"), bad.err());
        assertTrue(run("serve", "--help").out().contains("--kv-dtype auto|f32|f16|i8|fp8"));
    }

    /** bench vision times the tiny Llava's encoder at each batch size beside its language model's prefill; a text model is refused. */
    @Test
    void benchVisionTimesTheImageEncoder() {
        Result r = run("bench", "vision", "--model", SharedData.madeFixture("llava").toString(), "--batch-size", "1,2", "--seconds", "0.05", "--json");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().filter(l -> l.startsWith("{")).toList();
        assertEquals(2, lines.size(), r.out());
        assertTrue(lines.get(1).contains("\"batch\":2,") && lines.get(1).contains("\"images_per_s\":") && lines.get(1).contains("lm_prefill_tokens_per_s"),
                r.out());
        Result text = run("bench", "vision", "--model", SharedData.model("stories260K").toString());
        assertEquals(2, text.code());
        assertTrue(text.err().contains("needs a vision model"), text.err());
    }

    /**
     * {@code --profile} lists the prefill's and the decode steps' kernels (the matmuls among them, timed although the JVM
     * runs them as Vector API overrides); {@code --threads} sizes the JVM devices (here two ranks, which
     * do not touch the shared default device other tests use) and refuses zero.
     */
    @Test
    void benchStaticProfilesThePrefillAndDecodeKernels() {
        try {
            Result r = run("bench", "static", "--model", SharedData.model("stories260K").toString(), "--threads", "2", "--tp", "2",
                    "--batch-size", "2", "--input-len", "4", "--output-len", "4", "--profile");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("kernels over 3 decode steps"), r.out());
            // and the prefill's, before them, its attention among them
            assertTrue(r.out().contains("kernels over 1 prefill"), r.out());
            String prefill = r.out().substring(r.out().indexOf("kernels over 1 prefill"), r.out().indexOf("kernels over 3 decode steps"));
            assertTrue(prefill.lines().anyMatch(l -> l.startsWith("| Attention.prefill")), prefill);
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith("| Matmul.matmulGemv | ")), r.out());
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith("| Attention.")), r.out());
        } finally {
            System.clearProperty(io.lightllm.tornado.jvm.JvmDevice.THREADS_PROPERTY);
        }
        Result zero = run("bench", "static", "--model", SharedData.model("stories260K").toString(), "--threads", "0");
        assertEquals(2, zero.code());
        assertTrue(zero.err().contains("--threads must be between 1 and 4096"), zero.err());
    }

    /** Like {@code tornado --devices}: backends by number, each device as B:D then its --device id, the default marked. */
    @Test
    void devicesListsTornadoIdsDeviceIdsAndTheDefault() {
        Result r = run("devices");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(List.of("backend 0: opencl", "backend 1: cuda", "backend 2: jvm"),
                lines.stream().filter(l -> l.startsWith("backend ")).map(l -> l.replaceFirst(": unavailable: .*", "")).toList(), r.out());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("  2:0   jvm ") && l.endsWith("  (default)")), r.out());
        assertTrue(lines.getFirst().matches("  B:D +--device +name.*"), r.out());
        List<String> deviceLines = lines.stream().filter(l -> l.matches("  \\d+:\\d+ .*")).toList();
        for (String line : deviceLines) {
            String[] words = line.trim().split("\\s+");
            assertEquals(words[1], Devices.numbering().deviceId(words[0]), line);
        }
        assertEquals(1, deviceLines.stream().filter(l -> l.endsWith("(default)")).count(), r.out());
    }

    /** -Dtornado.device=B:D picks the default device of every command; an explicit --device wins. */
    @Test
    void tornadoDeviceSelectsTheDefaultDevice() {
        List<String> accelerators = TestDevices.accelerators();
        Assumptions.assumeFalse(accelerators.isEmpty(), "no second device to select");
        String id = accelerators.getFirst();
        String tornadoId = Devices.numbering().tornadoId(id).orElseThrow().toString();
        System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, tornadoId);
        try {
            Result devices = run("devices");
            assertTrue(devices.out().lines().anyMatch(l -> l.startsWith("  " + tornadoId + " ") && l.endsWith("(default)")), devices.out());
            String[] bench = {"bench", "static", "--model", SharedData.model("stories260K").toString(), "--batch-size", "1", "--input-len", "4",
                    "--output-len", "2", "--json"};
            Result selected = run(bench);
            assertEquals(0, selected.code(), selected.err());
            assertTrue(selected.out().contains("{\"devices\":\"" + id + "\","), selected.out());
            String[] onJvm = java.util.stream.Stream.concat(java.util.Arrays.stream(bench), java.util.stream.Stream.of("--device", "jvm"))
                    .toArray(String[]::new);
            Result explicit = run(onJvm);
            assertEquals(0, explicit.code(), explicit.err());
            assertTrue(explicit.out().contains("{\"devices\":\"jvm\","), explicit.out());
        } finally {
            System.clearProperty(Devices.TORNADO_DEVICE_PROPERTY);
        }
    }

    /** A wrong id, TornadoVM's or ours, is a message listing the valid ids and exit code 2, never a stack trace. */
    @Test
    void aWrongDeviceIdListsTheValidOnes() {
        String model = SharedData.model("stories260K").toString();
        System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, "9:9");
        try {
            Result generate = run("generate", "--model", model, "--prompt", "hi");
            assertEquals(2, generate.code());
            assertTrue(generate.err().startsWith("lightllm generate: -Dtornado.device=9:9: no device 9:9: there is no backend 9"), generate.err());
            assertTrue(generate.err().contains("valid ids: ") && generate.err().contains("2:0 = jvm") && !generate.err().contains("Exception"),
                    generate.err());
            Result devices = run("devices");
            assertEquals(2, devices.code());
            assertTrue(devices.out().contains("backend 2: jvm"), "still lists the devices: " + devices.out());
            assertTrue(devices.err().startsWith("lightllm devices: -Dtornado.device=9:9: no device 9:9"), devices.err());
            Result explicit = run("generate", "--model", model, "--prompt", "hi", "--max-new-tokens", "2", "--device", "jvm");
            assertEquals(0, explicit.code(), "--device wins over the property: " + explicit.err());
        } finally {
            System.clearProperty(Devices.TORNADO_DEVICE_PROPERTY);
        }
        Result bad = run("generate", "--model", model, "--prompt", "hi", "--device", "opencl:9:9");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("opencl:9:9") && bad.err().contains("valid ids: ") && bad.err().contains("2:0 = jvm"), bad.err());
        Result misplaced = run("generate", "-Dtornado.device=2:0", "--model", model, "--prompt", "hi");
        assertEquals(2, misplaced.code());
        assertTrue(misplaced.err().contains("'-Dtornado.device=2:0' is a JVM system property: put it before the command"), misplaced.err());
    }
}
