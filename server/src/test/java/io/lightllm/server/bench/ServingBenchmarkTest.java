package io.lightllm.server.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.server.JsonBody;
import io.lightllm.server.ModelServer;
import io.lightllm.server.ServerConfig;
import io.lightllm.server.StoriesServer;
import java.awt.image.BufferedImage;
import java.io.PrintStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The serving benchmark against the real server on stories260K (in-process, loopback): every
 * request is accounted for, token counts agree with the model's own tokenizer and with ignore_eos,
 * the latencies are consistent with each other, and the JSON and PNG files are readable.
 */
class ServingBenchmarkTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
    private static ModelServer server;

    @BeforeAll
    static void start() {
        server = StoriesServer.start(ServerConfig.local(0));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static ServingBenchConfig config(ServingBenchConfig.Endpoint endpoint, int prompts, int concurrency, int in, int out,
                                             ServingBenchConfig.Dataset dataset) {
        return new ServingBenchConfig(URI.create(server.url()), endpoint, null, prompts, concurrency, in, out, dataset, 0, 7,
                Duration.ofSeconds(60));
    }

    @Test
    void openAiPoissonRunCountsEveryRequestAndToken(@TempDir Path dir) throws Exception {
        ServingBenchmark.Report report = ServingBenchmark.run(
                config(ServingBenchConfig.Endpoint.OPENAI, 20, 0, 24, 16, ServingBenchConfig.Dataset.FIXED), new double[] {50}, QUIET);
        assertEquals(StoriesServer.NAME, report.model());
        assertEquals(512, report.contextLength());
        ServingBenchmark.Run run = report.runs().getFirst();
        checkRun(report, run, 20);
        // the server's own account of the run: it prefilled and decoded, and its busy time fits in the run's wall time
        java.util.Map<String, Double> steps = run.serverSeconds();
        assertTrue(steps.get("prefill") > 0 && steps.get("decode") > 0 && steps.get("scheduling") >= 0, "server step seconds " + steps);
        assertTrue(steps.values().stream().mapToDouble(Double::doubleValue).sum() <= run.summary().durationS() + 0.5,
                "server step seconds " + steps + " within the run's " + run.summary().durationS() + " s");
        // and its steps: each request's 16 tokens are its prefill's and 15 decode steps', which requests may share
        java.util.Map<String, Double> counts = run.serverSteps();
        assertTrue(counts.get("prefill") >= 1 && counts.get("prefill") <= 20, "prefill steps " + counts);
        assertTrue(counts.get("decode") >= 15 && counts.get("decode") <= 20 * 15, "decode steps " + counts);
        for (RequestResult r : run.requests()) {
            assertEquals(16, r.outputTokens(), "ignore_eos + max_tokens fixes the output length");
            assertTrue(r.promptTokens() <= 24 && r.promptTokens() >= 20, "the word search lands within a word of 24: " + r.promptTokens());
        }

        Path json = dir.resolve("results.json");
        Path png = dir.resolve("results.png");
        report.writeJson(json);
        SweepPlot.write(report.summaries(), "test", png);
        JsonNode written = JsonBody.MAPPER.readTree(json.toFile());
        JsonNode summary = written.get("runs").get(0);
        assertEquals(20, summary.get("completed").asInt());
        assertEquals(0, summary.get("failed").asInt());
        assertEquals(20, summary.get("requests").size());
        assertEquals(counts.get("decode").longValue(), summary.get("server_steps").get("decode").asLong(), "server_steps in the JSON");
        assertEquals(run.summary().totalOutput(), summary.get("total_output_tokens").asLong());
        assertEquals(16 - 1, summary.get("requests").get(0).get("itl_ms").size() + emptyTextTokens(run.requests().getFirst()));
        assertEquals(report.dataset().getFirst().prompt().text(), summary.get("requests").get(0).get("prompt").asText());
        // the output is recorded (runs with the prefix cache on and off are compared by it): the engine's greedy text
        String expected = server.engine().generate(report.dataset().getFirst().prompt().text(),
                io.lightllm.engine.SamplingParams.builder().maxNewTokens(16).ignoreEos(true).build()).getFirst().text();
        assertEquals(expected, summary.get("requests").get(0).get("output").asText());
        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image, "the plot decodes as an image");
        assertEquals(1000, image.getWidth());
    }

    @Test
    void lightLlmSweepWithLengthDistributionRespectsConcurrency() throws Exception {
        ServingBenchmark.Report report = ServingBenchmark.run(
                config(ServingBenchConfig.Endpoint.LIGHTLLM, 12, 3, 60, 40, ServingBenchConfig.Dataset.SHAREGPT_LIKE),
                new double[] {Double.POSITIVE_INFINITY, 20}, QUIET);
        assertEquals(2, report.runs().size());
        for (ServingBenchmark.Run run : report.runs()) {
            checkRun(report, run, 12);
            for (RequestResult r : run.requests()) {
                assertEquals(r.requestedOutput(), r.outputTokens(), "ignore_eos + max_new_tokens fixes the output length");
            }
            assertTrue(maxInFlight(run.requests()) <= 3, "at most --max-concurrency requests in flight");
        }
        long distinctLengths = report.dataset().stream().mapToInt(LoadGenerator.Work::outputTokens).distinct().count();
        assertTrue(distinctLengths > 3, "sharegpt-like lengths vary");
    }

    /**
     * --warmup: its requests reach the server (the engine prefills them) but not the report, and their prompts are
     * their own (another seed), so the measured prompts still meet a cold prefix cache.
     */
    @Test
    void warmupRequestsRunFirstAndAreNotMeasured() throws Exception {
        double before = promptTokensSubmitted();
        ServingBenchmark.Report report = ServingBenchmark.run(config(ServingBenchConfig.Endpoint.OPENAI, 4, 0, 20, 4,
                ServingBenchConfig.Dataset.FIXED), new double[] {Double.POSITIVE_INFINITY}, 3, QUIET);
        ServingBenchmark.Run run = report.runs().getFirst();
        checkRun(report, run, 4);
        long measured = run.requests().stream().mapToLong(q -> q.promptTokens()).sum();
        double all = promptTokensSubmitted() - before;
        assertTrue(all > measured, "the warm-up's prompts reached the server too: " + all + " tokens against the measured " + measured);
        // the warm-up's prompts are seed 8's (the run's 7 + 1): none of them is a measured one
        ServingBenchConfig seed8 = new ServingBenchConfig(URI.create(server.url()), ServingBenchConfig.Endpoint.OPENAI, null, 3, 0, 20, 4,
                ServingBenchConfig.Dataset.FIXED, 0, 8, Duration.ofSeconds(60));
        java.util.Set<String> prompts = new java.util.HashSet<>();
        report.dataset().forEach(w -> prompts.add(w.prompt().text()));
        ServingBenchmark.run(seed8, new double[] {Double.POSITIVE_INFINITY}, QUIET).dataset()
                .forEach(w -> assertTrue(!prompts.contains(w.prompt().text()), "a warm-up prompt was measured: " + w.prompt().text()));
    }

    /** lightllm_prompt_tokens_total from the server's /metrics. */
    private static double promptTokensSubmitted() {
        String metrics;
        try {
            metrics = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(URI.create(server.url() + "/metrics")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString()).body();
        } catch (java.io.IOException | InterruptedException e) {
            throw new AssertionError("GET /metrics: " + e, e);
        }
        return metrics.lines().filter(l -> l.startsWith("lightllm_prompt_tokens_total ")).mapToDouble(l -> Double.parseDouble(l.split(" ")[1]))
                .findFirst().orElseThrow(() -> new AssertionError("no lightllm_prompt_tokens_total in /metrics"));
    }

    /** Prompts are measured with /tokenize: preparing them computes nothing, so the run meets a cold prefix cache. */
    @Test
    void measuringPromptsComputesNothingOnTheServer() {
        BenchClient client = new BenchClient(config(ServingBenchConfig.Endpoint.OPENAI, 1, 0, 40, 8, ServingBenchConfig.Dataset.FIXED));
        long prefillsBefore = server.engine().stats().prefillSteps();
        PromptBuilder.Prompt prompt = new PromptBuilder(client::countPromptTokens).build(40, new java.util.Random(3));
        assertTrue(prompt.tokens() <= 40 && prompt.tokens() >= 36, "within a word of 40: " + prompt.tokens());
        assertEquals(prefillsBefore, server.engine().stats().prefillSteps(), "no prompt was prefilled to measure it");
        assertEquals(PromptBuilder.TOO_LONG, client.countPromptTokens("once ".repeat(600)), "past the 512-token context");
    }

    /** The prefix cache's workload: every prompt starts with one of the shared system prompts, which the server then finds cached. */
    @Test
    void sharedPrefixWorkloadStartsEveryPromptWithASystemPrompt() throws Exception {
        ServingBenchConfig c = new ServingBenchConfig(URI.create(server.url()), ServingBenchConfig.Endpoint.OPENAI, null, 8, 2, 10, 8,
                ServingBenchConfig.Dataset.SHARED_PREFIX, 0, 7, Duration.ofSeconds(60), 60, 2, null);
        long hitsBefore = server.engine().stats().prefixHitTokens();
        ServingBenchmark.Report report = ServingBenchmark.run(c, new double[] {Double.POSITIVE_INFINITY}, QUIET);
        checkRun(report, report.runs().getFirst(), 8);
        List<String> texts = report.dataset().stream().map(w -> w.prompt().text()).toList();
        for (int i = 2; i < texts.size(); i++) {
            String system = texts.get(i % 2).substring(0, texts.get(i % 2).indexOf(". "));
            assertTrue(texts.get(i).startsWith(system + ". "), "prompt " + i + " starts with system prompt " + (i % 2));
        }
        assertTrue(!texts.get(0).substring(0, 20).equals(texts.get(1).substring(0, 20)), "two different system prompts");
        assertTrue(server.engine().stats().prefixHitTokens() - hitsBefore >= 6L * 50, "the shared system prompts were read from the cache");
    }

    /**
     * ShareGPT's file format: each request is a conversation's first turn with its reply's length; conversations
     * with one turn, a reply under 4 tokens or a prompt beyond the context are skipped; too few usable is an error.
     */
    @Test
    void shareGptFileGivesFirstTurnsAndReplyLengths(@TempDir Path dir) throws Exception {
        StringBuilder json = new StringBuilder("[");
        String[] firsts = {"Once upon a time there was a little girl", "The dog ran to the park", "Lily saw a big red ball",
                "Tom wanted to play with his friend", "The sun was hot and the sky was blue", "A bird sang in the tree"};
        for (int i = 0; i < firsts.length; i++) {
            json.append(i == 0 ? "" : ",").append("{\"id\": \"c").append(i).append("\", \"conversations\": [")
                    .append("{\"from\": \"human\", \"value\": \"").append(firsts[i]).append("\"}, ")
                    .append("{\"from\": \"gpt\", \"value\": \"She was very happy and she played all day long\"}]}");
        }
        json.append(", {\"conversations\": [{\"from\": \"human\", \"value\": \"only one turn here\"}]}")
                .append(", {\"conversations\": [{\"from\": \"human\", \"value\": \"a reply too short follows\"}, {\"from\": \"gpt\", \"value\": \"ok\"}]}")
                .append(", {\"conversations\": [{\"from\": \"human\", \"value\": \"").append("and the ".repeat(400))
                .append("\"}, {\"from\": \"gpt\", \"value\": \"a long reply to a long prompt\"}]}]");
        Path file = Files.writeString(dir.resolve("sharegpt.json"), json);
        ServingBenchConfig c = new ServingBenchConfig(URI.create(server.url()), ServingBenchConfig.Endpoint.OPENAI, null, 5, 0, 1, 1,
                ServingBenchConfig.Dataset.SHAREGPT, 0, 7, Duration.ofSeconds(60), 0, 1, file);
        ServingBenchmark.Report report = ServingBenchmark.run(c, new double[] {Double.POSITIVE_INFINITY}, QUIET);
        checkRun(report, report.runs().getFirst(), 5);
        int reply = server.files().tokenizer().encode("She was very happy and she played all day long", true).length;
        for (LoadGenerator.Work w : report.dataset()) {
            assertTrue(Arrays.asList(firsts).contains(w.prompt().text()), w.prompt().text());
            assertEquals(server.files().tokenizer().encode(w.prompt().text(), true).length, w.prompt().tokens());
            assertEquals(reply, w.outputTokens());
        }
        ServingBenchConfig seven = new ServingBenchConfig(URI.create(server.url()), ServingBenchConfig.Endpoint.OPENAI, null, 7, 0, 1, 1,
                ServingBenchConfig.Dataset.SHAREGPT, 0, 7, Duration.ofSeconds(60), 0, 1, file);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ServingBenchmark.run(seven, new double[] {Double.POSITIVE_INFINITY}, QUIET));
        assertTrue(e.getMessage().startsWith("the dataset has 6 usable conversations"), e.getMessage());
    }

    /** The checks every run must pass, independent of endpoint and load. */
    private static void checkRun(ServingBenchmark.Report report, ServingBenchmark.Run run, int prompts) {
        Summary s = run.summary();
        assertEquals(prompts, s.completed(), () -> run.requests().stream().filter(r -> !r.success()).map(RequestResult::error).toList().toString());
        assertEquals(0, s.failed());
        assertEquals(prompts, run.requests().size());
        long in = 0;
        long out = 0;
        for (int i = 0; i < prompts; i++) {
            RequestResult r = run.requests().get(i);
            assertEquals(i, r.index());
            String text = report.dataset().get(i).prompt().text();
            // the model's tokenizer, with the bos the server adds, is the independent count of what the server reported
            assertEquals(server.files().tokenizer().encode(text, true).length, r.promptTokens(), text);
            assertTrue(r.ttftS() > 0 && r.ttftS() <= r.latencyS(), "TTFT within the request's latency");
            double gaps = Arrays.stream(r.itlS()).sum();
            assertTrue(r.ttftS() + gaps <= r.latencyS() + 1e-9, "first token plus the gaps end no later than the stream");
            assertTrue(r.itlS().length <= r.outputTokens() - 1);
            in += r.promptTokens();
            out += r.outputTokens();
        }
        assertEquals(in, s.totalInput());
        assertEquals(out, s.totalOutput());
        assertEquals(prompts / s.durationS(), s.requestThroughput(), 1e-9);
        assertEquals(out / s.durationS(), s.outputThroughput(), 1e-9);
        assertEquals((in + out) / s.durationS(), s.totalTokenThroughput(), 1e-9);
        for (Stat stat : List.of(s.ttft(), s.tpot(), s.itl(), s.e2el())) {
            assertTrue(stat.count() > 0);
            assertTrue(stat.median() <= stat.p99(), stat.toString());
            assertTrue(stat.mean() > 0 && stat.p99() > 0, stat.toString());
        }
        assertTrue(s.ttft().p99() <= s.e2el().p99() + 1e-9);
    }

    /** Tokens whose text the server held back (part of a character) have no chunk of their own. */
    private static int emptyTextTokens(RequestResult r) {
        return r.outputTokens() - 1 - r.itlS().length;
    }

    /** The most requests whose [start, start + latency] intervals overlap at one time. */
    private static int maxInFlight(List<RequestResult> results) {
        List<double[]> events = new ArrayList<>();
        for (RequestResult r : results) {
            events.add(new double[] {r.startS(), 1});
            events.add(new double[] {r.startS() + r.latencyS(), -1});
        }
        events.sort((a, b) -> a[0] != b[0] ? Double.compare(a[0], b[0]) : Double.compare(a[1], b[1])); // ends before starts at a tie
        int now = 0;
        int max = 0;
        for (double[] e : events) {
            now += (int) e[1];
            max = Math.max(max, now);
        }
        return max;
    }
}
