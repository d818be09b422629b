package io.lightllm.engine.bench;

import io.lightllm.tornado.runtime.KernelTiming;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Kernel timings summed by kernel name: where a step's time goes. */
public final class KernelProfile {
    private KernelProfile() {
    }

    /** One kernel's launches over the profiled steps. */
    public record Row(String kernel, int launches, long nanos) {
    }

    /** The kernels by total time, longest first. */
    public static List<Row> rows(List<KernelTiming> timings) {
        Map<String, long[]> byName = new LinkedHashMap<>();
        for (KernelTiming t : timings) {
            long[] acc = byName.computeIfAbsent(t.name(), k -> new long[2]);
            acc[0]++;
            acc[1] += t.nanos();
        }
        List<Row> rows = new ArrayList<>();
        byName.forEach((name, acc) -> rows.add(new Row(name, (int) acc[0], acc[1])));
        rows.sort((a, b) -> Long.compare(b.nanos, a.nanos));
        return rows;
    }

    /** A Markdown table: launches and milliseconds per step, share of the kernels' total ({@code what}: "decode steps", "prefill"). */
    public static String table(List<KernelTiming> timings, int steps, String what) {
        List<Row> rows = rows(timings);
        long total = rows.stream().mapToLong(Row::nanos).sum();
        int per = Math.max(1, steps);
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                "kernels over %d %s: %.3f ms per step%n| kernel | launches per step | ms per step | share |%n| --- | ---: | ---: | ---: |%n",
                steps, what, total / 1e6 / per));
        for (Row r : rows) {
            out.append(String.format(Locale.ROOT, "| %s | %.1f | %.3f | %.1f %% |%n", r.kernel, r.launches / (double) per,
                    r.nanos / 1e6 / per, total == 0 ? 0 : 100.0 * r.nanos / total));
        }
        return out.toString();
    }
}
