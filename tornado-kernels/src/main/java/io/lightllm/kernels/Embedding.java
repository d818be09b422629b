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
     * out[t] = table[ids[t]]. An id outside [0, vocab) cannot be reported from a kernel; it
     * yields a row of NaN instead of reading outside the table, so the mistake shows in the output.
     */
    public static void embeddingGather(FloatArray out, NativeArray table, IntArray ids, int tokens, int dim, int vocab) {
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int d = 0; d < dim; d++) {
                int id = ids.get(t);
                float v = Float.NaN;
                if (id >= 0 && id < vocab) {
                    v = table.getFloat(id * dim + d);
                }
                out.set(t * dim + d, v);
            }
        }
    }

    public static void launchGather(Device device, DeviceBuffer out, DeviceBuffer table, DeviceBuffer ids, int tokens, int dim) {
        Shapes.positive(tokens, "tokens");
        Shapes.positive(dim, "dim");
        if (table.elements() % dim != 0) {
            throw new IllegalArgumentException("embedding table of " + table.elements() + " elements is not a whole number of rows of " + dim);
        }
        Shapes.intIndexable(table.elements(), "embedding table");
        Shapes.intIndexable((long) tokens * dim, "out");
        Shapes.atLeast(out, (long) tokens * dim, "out");
        Shapes.atLeast(ids, tokens, "ids");
        int vocab = (int) (table.elements() / dim);
        device.launch(GATHER, Grid.of(tokens, dim), out, table, ids, tokens, dim, vocab);
    }
}
