package io.lightllm.models.llama;

import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import java.util.Arrays;

/**
 * Greedy decoding of several prompts as one nopad batch, the simplest driver of a CausalLM:
 * one prefill of all prompts packed, then decode steps of all requests. The engine does this
 * for real (scheduling, sampling on the device); tests use this to check the model alone.
 */
public final class GreedyRunner {
    public final float[][] firstLogits;
    public final int[][] generated;
    /** Top-1 minus top-2 logit of the step that chose {@code generated[r][s]}. */
    public final float[][] margins;

    public GreedyRunner(CausalLM model, int[][] prompts, int steps, DType kvDtype) {
        this(model, prompts, steps, kvDtype, 0);
    }

    /** The same with token table rows of at least {@code tableLen} tokens (a server's table is as long as the model's context). */
    public GreedyRunner(CausalLM model, int[][] prompts, int steps, DType kvDtype, int tableLen) {
        int b = prompts.length;
        int total = 0;
        for (int[] p : prompts) {
            total += p.length + steps;
        }
        int maxLen = Math.max(tableLen, Arrays.stream(prompts).mapToInt(p -> p.length).max().orElse(0) + steps);
        firstLogits = new float[b][];
        generated = new int[b][steps];
        margins = new float[b][steps];
        try (TokenKvPool pool = model.newKvPool(total, kvDtype);
             RequestTokenTable table = new RequestTokenTable(model.device(), b + 1, maxLen)) {
            int[] rows = new int[b];
            table.acquire(); // row 0 stays unused: request rows need not start at 0
            for (int r = 0; r < b; r++) {
                rows[r] = table.acquire();
            }
            int tokens = Arrays.stream(prompts).mapToInt(p -> p.length).sum();
            int[] ids = new int[tokens], pos = new int[tokens], slots = pool.alloc(tokens);
            int[] starts = new int[b], counts = new int[b], lens = new int[b];
            int at = 0;
            for (int r = 0; r < b; r++) {
                starts[r] = at;
                counts[r] = prompts[r].length;
                lens[r] = prompts[r].length;
                for (int i = 0; i < prompts[r].length; i++, at++) {
                    ids[at] = prompts[r][i];
                    pos[at] = i;
                }
            }
            FloatArray logits = model.forwardToHost(new NopadBatch(true, ids, pos, slots, rows, starts, counts, lens), pool, table);
            int vocab = model.vocabSize();
            int[] next = new int[b];
            for (int r = 0; r < b; r++) {
                firstLogits[r] = Arrays.copyOfRange(logits.toArray(), r * vocab, (r + 1) * vocab);
                next[r] = argmax(firstLogits[r]);
                margins[r][0] = margin(firstLogits[r]);
            }
            for (int s = 0; s < steps; s++) {
                int[] decodeSlots = pool.alloc(b);
                int[] decodePos = new int[b], decodeStarts = new int[b], ones = new int[b];
                for (int r = 0; r < b; r++) {
                    generated[r][s] = next[r];
                    decodePos[r] = lens[r];
                    lens[r]++;
                    decodeStarts[r] = r;
                    ones[r] = 1;
                }
                if (s == steps - 1) {
                    break;
                }
                FloatArray l = model.forwardToHost(new NopadBatch(false, next.clone(), decodePos, decodeSlots, rows, decodeStarts,
                        ones, lens.clone()), pool, table);
                for (int r = 0; r < b; r++) {
                    float[] row = Arrays.copyOfRange(l.toArray(), r * vocab, (r + 1) * vocab);
                    next[r] = argmax(row);
                    margins[r][s + 1] = margin(row);
                }
            }
        }
    }

    /** The largest value minus the second largest. */
    static float margin(float[] v) {
        float[] sorted = v.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - 1] - sorted[sorted.length - 2];
    }

    /** Index of the largest value, the first on ties (as torch.argmax). */
    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
