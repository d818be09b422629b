package io.lightllm.server.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;

/**
 * Mean, median, standard deviation and 99th percentile of one latency, in milliseconds, as vLLM's
 * benchmark_serving reports them (percentiles interpolate linearly between ranks, like numpy's
 * default; the standard deviation is the population one, numpy's default too). NaN when there are no values.
 */
public record Stat(int count, double mean, double median, double std, double p99) {
    static Stat ofSeconds(double[] seconds) {
        double[] ms = Arrays.stream(seconds).filter(Double::isFinite).map(s -> s * 1e3).sorted().toArray();
        if (ms.length == 0) {
            return new Stat(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        }
        double mean = Arrays.stream(ms).average().orElseThrow();
        double var = Arrays.stream(ms).map(x -> (x - mean) * (x - mean)).sum() / ms.length;
        return new Stat(ms.length, mean, percentile(ms, 50), Math.sqrt(var), percentile(ms, 99));
    }

    /** The p-th percentile of sorted values, interpolating linearly between the two nearest ranks. */
    static double percentile(double[] sorted, double p) {
        double rank = p / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(rank);
        int hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (rank - lo) * (sorted[hi] - sorted[lo]);
    }

    void writeTo(ObjectNode out, String name) {
        Json.put(out, "mean_" + name + "_ms", mean);
        Json.put(out, "median_" + name + "_ms", median);
        Json.put(out, "std_" + name + "_ms", std);
        Json.put(out, "p99_" + name + "_ms", p99);
    }
}
