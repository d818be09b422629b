package io.lightllm.server.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.ConsoleProgress;
import io.lightllm.server.JsonBody;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The serving benchmark: prepares a seeded data set of prompts measured in the server's tokens,
 * then sends it once per request rate (one rate, or a sweep) and summarises each run. What
 * {@code lightllm bench serve} runs.
 */
public final class ServingBenchmark {
    /**
     * One measured run; {@code serverSeconds}: what the server's inference thread spent on prefill, decode and scheduling
     * during it (its {@code lightllm_step_seconds}), {@code serverSteps}: the prefill and decode steps it ran (with chunked
     * prefill a step of prompt chunks and decodes counts as both); empty for a server without them.
     */
    public record Run(Summary summary, List<RequestResult> requests, java.util.Map<String, Double> serverSeconds,
            java.util.Map<String, Double> serverSteps) { }

    /** Every run of a benchmark, with what it was run against and the requests it sent (the same in every run). */
    public record Report(ServingBenchConfig config, String model, int contextLength, List<LoadGenerator.Work> dataset, List<Run> runs) {
        public ObjectNode json() {
            ObjectNode o = JsonBody.MAPPER.createObjectNode();
            o.put("date", OffsetDateTime.now().toString());
            ObjectNode c = o.putObject("config");
            c.put("url", config.url().toString());
            c.put("endpoint", config.endpoint().name().toLowerCase(java.util.Locale.ROOT));
            c.put("model", model);
            c.put("context_len", contextLength);
            c.put("num_prompts", config.numPrompts());
            c.put("max_concurrency", config.maxConcurrency());
            c.put("input_len", config.inputLen());
            c.put("output_len", config.outputLen());
            c.put("dataset", config.dataset().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'));
            if (config.datasetPath() != null) {
                c.put("dataset_path", config.datasetPath().toString());
            }
            if (config.dataset() == ServingBenchConfig.Dataset.SHARED_PREFIX) {
                c.put("prefix_len", config.prefixLen());
                c.put("num_prefixes", config.numPrefixes());
            }
            c.put("seed", config.seed());
            ArrayNode runsJson = o.putArray("runs");
            for (Run run : runs) {
                ObjectNode r = run.summary().json();
                if (!run.serverSeconds().isEmpty()) {
                    ObjectNode t = r.putObject("server_step_seconds");
                    run.serverSeconds().forEach(t::put);
                }
                if (!run.serverSteps().isEmpty()) {
                    ObjectNode t = r.putObject("server_steps");
                    run.serverSteps().forEach((phase, n) -> t.put(phase, n.longValue()));
                }
                ArrayNode requests = r.putArray("requests");
                run.requests().forEach(q -> requests.add(requestJson(q, dataset.get(q.index()))));
                runsJson.add(r);
            }
            return o;
        }

        public void writeJson(Path file) throws IOException {
            JsonBody.MAPPER.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), json());
        }

        public List<Summary> summaries() {
            return runs.stream().map(Run::summary).toList();
        }
    }

    private ServingBenchmark() {
    }

    /** Runs the benchmark once at each of {@code rates} (requests/s, Poisson arrivals; infinity sends all at once), logging to {@code log}. */
    public static Report run(ServingBenchConfig config, double[] rates, PrintStream log) throws InterruptedException {
        return run(config, rates, 0, log);
    }

    /**
     * {@link #run} after {@code warmup} requests of the same shapes, all at once and not measured, with prompts of their
     * own (another seed: the measured prompts still meet a cold prefix cache). A server's first run pays for what it
     * has not done yet, such as recording decode steps of new batch sizes: 4,623 against 5,218 tok/s right after start
     * on an H200 (docs/benchmarks.md, session 14).
     */
    public static Report run(ServingBenchConfig config, double[] rates, int warmup, PrintStream log) throws InterruptedException {
        BenchClient client = new BenchClient(config);
        String model = null;
        int context = config.contextLen();
        if (config.endpoint() == ServingBenchConfig.Endpoint.OPENAI || context == 0) {
            BenchClient.ModelInfo info = client.modelInfo();
            model = info.name();
            context = context > 0 ? context : info.contextLength();
        }
        if (context <= 0) {
            throw new IllegalArgumentException("the server does not report max_model_len; give the model's context with --context-len");
        }
        log.printf("model %s, context %d tokens; measuring %d prompts in the server's tokens...%n", model, context, config.numPrompts());
        List<LoadGenerator.Work> work;
        try (ConsoleProgress progress = ConsoleProgress.counting("preparing prompts", config.numPrompts(), log)) {
            work = dataset(config, context, client, progress);
        }
        if (warmup > 0) {
            ServingBenchConfig w = new ServingBenchConfig(config.url(), config.endpoint(), config.apiKey(), warmup, config.maxConcurrency(),
                    config.inputLen(), config.outputLen(), config.dataset(), config.contextLen(), config.seed() + 1, config.requestTimeout(),
                    config.prefixLen(), config.numPrefixes(), config.datasetPath());
            List<LoadGenerator.Work> warmWork;
            try (ConsoleProgress progress = ConsoleProgress.counting("preparing warm-up prompts", warmup, log)) {
                warmWork = dataset(w, context, client, progress);
            }
            LoadGenerator.Run r = LoadGenerator.run(client, warmWork, Double.POSITIVE_INFINITY, config.maxConcurrency(), w.seed(),
                    config.requestTimeout());
            log.printf("warmed up with %d requests in %.2f s (not measured)%n", warmup, r.durationS());
        }
        List<Run> runs = new ArrayList<>();
        for (double rate : rates) {
            BenchClient.ServerCounters before = client.serverCounters();
            LoadGenerator.Run r = LoadGenerator.run(client, work, rate, config.maxConcurrency(), config.seed(), config.requestTimeout());
            BenchClient.ServerCounters server = client.serverCounters().since(before);
            Summary s = Summary.of(rate, config.maxConcurrency(), r.results(), r.durationS());
            log.print(s.text());
            if (!server.stepSeconds().isEmpty()) {
                // with chunked prefill a step of prompt chunks and decodes counts among both steps, its time as prefill
                java.util.Map<String, Double> t = server.stepSeconds(), n = server.steps();
                log.printf(java.util.Locale.ROOT, "server's inference thread over the run: prefill %.2f s (%d steps), decode %.2f s (%d steps), "
                                + "scheduling %.2f s, idle %.2f s%n",
                        t.getOrDefault("prefill", 0.0), n.getOrDefault("prefill", 0.0).longValue(), t.getOrDefault("decode", 0.0),
                        n.getOrDefault("decode", 0.0).longValue(), t.getOrDefault("scheduling", 0.0),
                        r.durationS() - t.values().stream().mapToDouble(Double::doubleValue).sum());
            }
            r.results().stream().filter(q -> !q.success()).limit(3).forEach(q -> log.println("failed request " + q.index() + ": " + q.error()));
            runs.add(new Run(s, r.results(), server.stepSeconds(), server.steps()));
        }
        return new Report(config, model, context, work, runs);
    }

    private static List<LoadGenerator.Work> dataset(ServingBenchConfig config, int context, BenchClient client, ConsoleProgress progress) {
        Random rng = new Random(config.seed());
        PromptBuilder prompts = new PromptBuilder(client::countPromptTokens);
        List<LoadGenerator.Work> work = new ArrayList<>();
        if (config.dataset() == ServingBenchConfig.Dataset.SHAREGPT) {
            return ShareGptDataset.sample(ShareGptDataset.read(config.datasetPath()), config.numPrompts(), context, client::countPromptTokens, rng,
                    progress::advance);
        }
        if (config.dataset() == ServingBenchConfig.Dataset.SHARED_PREFIX) {
            List<PromptBuilder.Prompt> prefixes = new ArrayList<>();
            for (int i = 0; i < config.numPrefixes(); i++) {
                prefixes.add(prompts.build(config.prefixLen(), rng));
            }
            for (int i = 0; i < config.numPrompts(); i++) {
                PromptBuilder.Prompt question = prompts.build(config.inputLen(), rng);
                String text = prefixes.get(i % prefixes.size()).text() + ". " + question.text();
                work.add(new LoadGenerator.Work(new PromptBuilder.Prompt(text, client.countPromptTokens(text)), config.outputLen()));
                progress.advance();
            }
            return work;
        }
        for (LengthSampler.Lengths l : LengthSampler.sample(config.dataset(), config.numPrompts(), config.inputLen(), config.outputLen(), context,
                rng)) {
            work.add(new LoadGenerator.Work(prompts.build(l.input(), rng), l.output()));
            progress.advance();
        }
        return work;
    }

    private static ObjectNode requestJson(RequestResult q, LoadGenerator.Work w) {
        ObjectNode o = JsonBody.MAPPER.createObjectNode();
        o.put("index", q.index());
        o.put("prompt", w.prompt().text());
        o.put("success", q.success());
        if (q.error() != null) {
            o.put("error", q.error());
        }
        o.put("prompt_tokens", q.promptTokens());
        o.put("requested_output_tokens", q.requestedOutput());
        o.put("output_tokens", q.outputTokens());
        Json.put(o, "start_s", q.startS());
        Json.put(o, "ttft_ms", q.ttftS() * 1e3);
        Json.put(o, "tpot_ms", q.tpotS() * 1e3);
        Json.put(o, "e2el_ms", q.latencyS() * 1e3);
        ArrayNode itl = o.putArray("itl_ms");
        for (double gap : q.itlS()) {
            itl.add(gap * 1e3);
        }
        o.put("output", q.output());
        return o;
    }
}
