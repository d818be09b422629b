package io.lightllm.server.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.server.JsonBody;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The metrics of one run, computed as vLLM's benchmark_serving computes them: token counts and
 * latencies over the successful requests, TPOT per request as (latency - TTFT) / (output tokens - 1),
 * ITL pooled over every gap of every request, throughputs over the run's wall time.
 */
public record Summary(double requestRate, int maxConcurrency, int completed, int failed, double durationS, long totalInput, long totalOutput,
                      double requestThroughput, double outputThroughput, double totalTokenThroughput, Stat ttft, Stat tpot, Stat itl,
                      Stat e2el) {
    static Summary of(double requestRate, int maxConcurrency, List<RequestResult> results, double durationS) {
        List<RequestResult> ok = results.stream().filter(RequestResult::success).toList();
        long in = ok.stream().mapToLong(RequestResult::promptTokens).sum();
        long out = ok.stream().mapToLong(RequestResult::outputTokens).sum();
        return new Summary(requestRate, maxConcurrency, ok.size(), results.size() - ok.size(), durationS, in, out,
                ok.size() / durationS, out / durationS, (in + out) / durationS,
                Stat.ofSeconds(ok.stream().mapToDouble(RequestResult::ttftS).toArray()),
                Stat.ofSeconds(ok.stream().mapToDouble(RequestResult::tpotS).toArray()),
                Stat.ofSeconds(ok.stream().flatMapToDouble(r -> Arrays.stream(r.itlS())).toArray()),
                Stat.ofSeconds(ok.stream().mapToDouble(RequestResult::latencyS).toArray()));
    }

    ObjectNode json() {
        ObjectNode o = JsonBody.MAPPER.createObjectNode();
        Json.putRate(o, "request_rate", requestRate);
        o.put("max_concurrency", maxConcurrency);
        o.put("completed", completed);
        o.put("failed", failed);
        o.put("duration_s", durationS);
        o.put("total_input_tokens", totalInput);
        o.put("total_output_tokens", totalOutput);
        o.put("request_throughput", requestThroughput);
        o.put("output_throughput", outputThroughput);
        o.put("total_token_throughput", totalTokenThroughput);
        ttft.writeTo(o, "ttft");
        tpot.writeTo(o, "tpot");
        itl.writeTo(o, "itl");
        e2el.writeTo(o, "e2el");
        return o;
    }

    /** The report in vLLM's layout. */
    String text() {
        StringBuilder b = new StringBuilder();
        b.append("============ Serving Benchmark Result ============\n");
        line(b, "Request rate (req/s)", Double.isInfinite(requestRate) ? "inf" : fmt(requestRate));
        line(b, "Max concurrency", maxConcurrency == 0 ? "none" : Integer.toString(maxConcurrency));
        line(b, "Successful requests", Integer.toString(completed));
        line(b, "Failed requests", Integer.toString(failed));
        line(b, "Benchmark duration (s)", fmt(durationS));
        line(b, "Total input tokens", Long.toString(totalInput));
        line(b, "Total generated tokens", Long.toString(totalOutput));
        line(b, "Request throughput (req/s)", fmt(requestThroughput));
        line(b, "Output token throughput (tok/s)", fmt(outputThroughput));
        line(b, "Total token throughput (tok/s)", fmt(totalTokenThroughput));
        section(b, "Time to First Token", "TTFT", ttft);
        section(b, "Time per Output Token (excl. 1st token)", "TPOT", tpot);
        section(b, "Inter-token Latency", "ITL", itl);
        section(b, "End-to-end Latency", "E2EL", e2el);
        b.append("==================================================\n");
        return b.toString();
    }

    /** A summary read back from the JSON that {@code --out} writes (latencies in ms). */
    public static Summary fromJson(com.fasterxml.jackson.databind.JsonNode r) {
        return new Summary(r.path("request_rate").asDouble(Double.POSITIVE_INFINITY), r.path("max_concurrency").asInt(0),
                r.path("completed").asInt(), r.path("failed").asInt(), r.path("duration_s").asDouble(), r.path("total_input_tokens").asLong(),
                r.path("total_output_tokens").asLong(), r.path("request_throughput").asDouble(), r.path("output_throughput").asDouble(),
                r.path("total_token_throughput").asDouble(), stat(r, "ttft"), stat(r, "tpot"), stat(r, "itl"), stat(r, "e2el"));
    }

    private static Stat stat(com.fasterxml.jackson.databind.JsonNode r, String name) {
        return new Stat(r.path("completed").asInt(), r.path("mean_" + name + "_ms").asDouble(), r.path("median_" + name + "_ms").asDouble(),
                r.path("std_" + name + "_ms").asDouble(), r.path("p99_" + name + "_ms").asDouble());
    }

    private static void section(StringBuilder b, String title, String name, Stat s) {
        int pad = Math.max(0, 50 - title.length());
        b.append("-".repeat(pad / 2)).append(title).append("-".repeat(pad - pad / 2)).append('\n');
        line(b, "Mean " + name + " (ms)", fmt(s.mean()));
        line(b, "Median " + name + " (ms)", fmt(s.median()));
        line(b, "P99 " + name + " (ms)", fmt(s.p99()));
    }

    private static void line(StringBuilder b, String label, String value) {
        b.append(String.format(Locale.ROOT, "%-40s%10s%n", label + ":", value));
    }

    static String fmt(double x) {
        return String.format(Locale.ROOT, "%.2f", x);
    }
}
