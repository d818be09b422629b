package io.lightllm.kernels.jvm;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.util.function.IntConsumer;

/**
 * Runs a GEMV's weight rows on the JVM device's threads a run of rows per task (~256 KB of weights, at least four
 * tasks a thread): one long contiguous stream per task for the prefetchers, and the thread team's two shared
 * counters touched once per run. A task per short row (an int4 row of 2,048 inputs is 1 KB) spent ~100 ns of each
 * row on those counters, as much as reading the row; runs of 16 KB fixed that, and runs of 256 KB read faster still
 * with two threads (the int4 GEMV 10.2 -> 12.1-12.6 GB/s from memory; a 1B model's decode +7-10 % in bf16 and int4):
 * two threads alternating short runs of neighbouring memory stream worse than two long runs. The bf16, f16, int8 and
 * int4 GEMVs walk a run in four quarters side by side ({@link #forEachQuad}): four sequential streams a thread, which
 * the prefetchers follow, where one stream left DRAM's latency exposed and four neighbouring rows (1-2 KB apart) were
 * not seen as streams at all (int8 decode +30 %, int4 +16 %, bf16 +5 % on a 1B model).
 */
final class RowRuns {
    /** Weight bytes one task streams. */
    static final long TASK_BYTES = 256 << 10;

    private RowRuns() {
    }

    /** {@code row.accept(j)} for every j in [0, n), rows of {@code rowBytes}, in runs. */
    static void forEach(JvmDevice device, int n, long rowBytes, IntConsumer row) {
        forEachRun(device, n, rowBytes, (start, end) -> {
            for (int j = start; j < end; j++) {
                row.accept(j);
            }
        });
    }

    /** What a task does with rows first, first + step, .. ({@code count} of them: four, fewer at a run's end). */
    @FunctionalInterface
    interface Quad {
        void rows(int first, int count, int step);
    }

    /**
     * {@code quad.rows} over every row of [0, n), rows of {@code rowBytes}: each task's run cut in four quarters, and
     * the quarters' rows taken four at a time, one from each (row i of every quarter together).
     */
    static void forEachQuad(JvmDevice device, int n, long rowBytes, Quad quad) {
        forEachRun(device, n, rowBytes, (start, end) -> {
            int quarter = (end - start + 3) / 4;
            for (int first = start; first < start + quarter; first++) {
                quad.rows(first, Math.min(4, (end - 1 - first) / quarter + 1), quarter);
            }
        });
    }

    /** Row dots of the four weight rows at byte offsets at0..at3 with activation row b of a GEMV, into result[0..3]. */
    @FunctionalInterface
    interface QuadDots {
        void dots(int b, long at0, long at1, long at2, long at3, float[] result);
    }

    /**
     * out[b, j] = x[b] . w[j] (+ bias[j], or none where null) for b < m and the n rows j of {@code rowBytes}, four rows at
     * a time ({@link #forEachQuad}); a quad with fewer than four rows (at a run's end) repeats its last one: the same
     * arithmetic, its results unused.
     */
    static void multiplyByQuads(JvmDevice device, FloatArray out, FloatArray bias, int m, int n, long rowBytes, QuadDots dots) {
        forEachQuad(device, n, rowBytes, (first, count, step) -> {
            float[] result = new float[4];
            long at1 = (first + Math.min(1, count - 1) * step) * rowBytes, at2 = (first + Math.min(2, count - 1) * step) * rowBytes;
            long at3 = (first + Math.min(3, count - 1) * step) * rowBytes;
            for (int b = 0; b < m; b++) {
                dots.dots(b, first * rowBytes, at1, at2, at3, result);
                for (int q = 0; q < count; q++) {
                    int row = first + q * step;
                    out.set(b * n + row, bias == null ? result[q] : result[q] + bias.get(row));
                }
            }
        });
    }

    private interface Run {
        void rows(int start, int end);
    }

    /** {@code run.rows(start, end)} for the runs that cover [0, n), rows of {@code rowBytes}, a task each. */
    private static void forEachRun(JvmDevice device, int n, long rowBytes, Run run) {
        int perTask = (int) Math.max(1, Math.min(TASK_BYTES / Math.max(1, rowBytes), n / (4L * device.threads())));
        device.parallelFor((n + perTask - 1) / perTask, t -> run.rows(t * perTask, Math.min(n, t * perTask + perTask)));
    }
}
