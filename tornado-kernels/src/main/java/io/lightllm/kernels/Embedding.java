package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/** Token embedding lookup: rows of a [vocab, dim] table (f32, f16 or bf16) gathered into f32 [tokens, dim]. */
public final class Embedding {
    public static final KernelRef GATHER = KernelRef.of(Embedding.class, "embeddingGather");

    private Embedding() {
    }

    /**
     * out[t] = table[ids[t] - firstRow] for the ids this table holds, rows
     * {@code [firstRow, firstRow + rows)} of a vocabulary of {@code vocab} (all of it, or one
     * tensor-parallel rank's part), and 0 for the other valid ids, so that the ranks' outputs add up
     * to the whole lookup. An id outside [0, vocab) cannot be reported from a kernel; it yields a row
     * of NaN instead of reading outside the table, so the mistake shows in the output.
     */
    public static void embeddingGather(FloatArray out, NativeArray table, IntArray ids, int tokens, int dim, int vocab, int firstRow, int rows) {
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int d = 0; d < dim; d++) {
                int id = ids.get(t);
                float v = Float.NaN;
                if (id >= 0 && id < vocab) {
                    v = 0f;
                    int row = id - firstRow;
                    if (row >= 0 && row < rows) {
                        v = table.getFloat(row * dim + d);
                    }
                }
                out.set(t * dim + d, v);
            }
        }
    }

    /** The whole lookup: {@code table} holds every row of the vocabulary. */
    public static void launchGather(Device device, DeviceBuffer out, DeviceBuffer table, DeviceBuffer ids, int tokens, int dim) {
        launchGather(device, out, table, ids, tokens, dim, -1, 0);
    }

    /**
     * One tensor-parallel rank's part of the lookup: {@code table} holds rows
     * {@code [firstRow, firstRow + table rows)} of a vocabulary of {@code vocab}; the ranks' outputs
     * summed (an all-reduce) are the whole lookup. {@code vocab} -1: the table is the whole vocabulary.
     */
    public static void launchGather(Device device, DeviceBuffer out, DeviceBuffer table, DeviceBuffer ids, int tokens, int dim,
            int vocab, int firstRow) {
        Shapes.positive(tokens, "tokens");
        Shapes.positive(dim, "dim");
        if (table.elements() % dim != 0) {
            throw new IllegalArgumentException("embedding table of " + table.elements() + " elements is not a whole number of rows of " + dim);
        }
        Shapes.intIndexable(table.elements(), "embedding table");
        Shapes.intIndexable((long) tokens * dim, "out");
        Shapes.atLeast(out, (long) tokens * dim, "out");
        Shapes.atLeast(ids, tokens, "ids");
        int rows = (int) (table.elements() / dim);
        int whole = vocab < 0 ? rows : vocab;
        if (firstRow < 0 || firstRow + rows > whole) {
            throw new IllegalArgumentException("table rows [" + firstRow + ", " + (firstRow + rows) + ") are outside a vocabulary of " + whole);
        }
        device.launch(GATHER, Grid.of(tokens, dim), out, table, ids, tokens, dim, whole, firstRow, rows);
    }
}
