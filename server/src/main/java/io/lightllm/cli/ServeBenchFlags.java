package io.lightllm.cli;

import io.lightllm.server.bench.ServingBenchConfig;
import io.lightllm.server.bench.ServingBenchmark;
import io.lightllm.server.bench.SweepPlot;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;

/**
 * {@code lightllm bench serve}: the flags of the serving benchmark, read into a
 * {@link ServingBenchConfig}, then the run, its JSON and its plot.
 */
final class ServeBenchFlags {
    private ServeBenchFlags() {
    }

    static int run(Flags f) throws Exception {
        if (f.has("replot")) {
            return replot(f);
        }
        URI url = URI.create(f.required("url"));
        ServingBenchConfig.Endpoint endpoint = ServingBenchConfig.Endpoint.parse(f.string("endpoint", "openai"));
        String apiKey = f.string("api-key", null);
        int prompts = f.integer("num-prompts", 100, 1, 1 << 20);
        String rate = f.string("request-rate", null);
        String sweep = f.string("sweep", null);
        int concurrency = f.integer("max-concurrency", 0, 1, 1 << 16);
        int input = f.integer("input-len", 200, 1, 1 << 20);
        int output = f.integer("output-len", 180, 1, 1 << 20);
        ServingBenchConfig.Dataset dataset = ServingBenchConfig.Dataset.parse(f.string("dataset", "fixed"));
        Path datasetPath = f.has("dataset-path") ? Path.of(f.required("dataset-path")) : null;
        int context = f.integer("context-len", 0, 1, 1 << 24);
        long seed = f.integer("seed", 0, 0, Integer.MAX_VALUE);
        double timeout = f.number("request-timeout", 600, 1, 86400);
        Path out = f.has("out") ? Path.of(f.required("out")) : null;
        Path plot = f.has("plot") ? Path.of(f.required("plot")) : null;
        int prefixLen = f.integer("prefix-len", 2000, 1, 1 << 20);
        int prefixes = f.integer("num-prefixes", 1, 1, 1 << 16);
        int warmup = f.integer("warmup", 0, 0, 1 << 20);
        f.checkAllRead();
        if (plot != null && !plot.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".png")) {
            throw new IllegalArgumentException("--plot names a PNG file (got '" + plot + "')");
        }
        double[] rates = rates(rate, sweep, concurrency);
        ServingBenchConfig config = new ServingBenchConfig(url, endpoint, apiKey, prompts, concurrency, input, output, dataset,
                context, seed, Duration.ofMillis((long) (timeout * 1000)), prefixLen, prefixes, datasetPath);
        ServingBenchmark.Report report = ServingBenchmark.run(config, rates, warmup, System.out);
        if (out != null) {
            report.writeJson(out);
            System.out.println("wrote " + out);
        }
        if (plot != null) {
            SweepPlot.write(report.summaries(), "serving " + report.model() + ": " + prompts + " prompts, " + f.string("dataset", "fixed")
                    + " " + input + " in / " + output + " out", plot);
            System.out.println("wrote " + plot);
        }
        return report.runs().stream().allMatch(r -> r.summary().failed() == 0) ? 0 : 1;
    }

    /**
     * {@code --replot results.json --plot out.png}: draws the plot of a saved run again (on a
     * machine whose Java has fonts, when the measuring one had none).
     */
    private static int replot(Flags f) throws java.io.IOException {
        Path json = Path.of(f.required("replot"));
        Path plot = Path.of(f.required("plot"));
        f.checkAllRead();
        com.fasterxml.jackson.databind.JsonNode root = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile());
        java.util.List<io.lightllm.server.bench.Summary> runs = new java.util.ArrayList<>();
        for (com.fasterxml.jackson.databind.JsonNode r : root.path("runs")) {
            runs.add(io.lightllm.server.bench.Summary.fromJson(r));
        }
        if (runs.isEmpty()) {
            throw new IllegalArgumentException(json + " holds no runs");
        }
        com.fasterxml.jackson.databind.JsonNode c = root.path("config");
        SweepPlot.write(runs, "serving " + c.path("model").asText("model") + ": " + c.path("num_prompts").asText("?") + " prompts, "
                + c.path("dataset").asText("fixed") + " " + c.path("input_len").asText("?") + " in / " + c.path("output_len").asText("?")
                + " out", plot);
        System.out.println("wrote " + plot);
        return 0;
    }

    /** The request rates to run: --sweep's list, or --request-rate, or infinity when only --max-concurrency paces the load. */
    private static double[] rates(String rate, String sweep, int concurrency) {
        if (sweep != null && rate != null) {
            throw new IllegalArgumentException("--sweep gives the request rates; drop --request-rate");
        }
        if (sweep != null) {
            return Arrays.stream(sweep.split(",")).mapToDouble(s -> rate(s.trim(), "--sweep")).toArray();
        }
        if (rate != null) {
            return new double[] {rate(rate, "--request-rate")};
        }
        if (concurrency > 0) {
            return new double[] {Double.POSITIVE_INFINITY};
        }
        throw new IllegalArgumentException("give --request-rate R (requests/s or inf), --max-concurrency C, or --sweep R1,R2,...");
    }

    private static double rate(String s, String flag) {
        if (s.equals("inf")) {
            return Double.POSITIVE_INFINITY;
        }
        try {
            double r = Double.parseDouble(s);
            if (!(r > 0) || Double.isInfinite(r)) {
                throw new IllegalArgumentException(flag + " takes request rates > 0 or inf (got '" + s + "')");
            }
            return r;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + " takes request rates > 0 or inf (got '" + s + "')");
        }
    }
}
