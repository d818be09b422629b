package io.lightllm.models.infer;

/**
 * One forward step over several requests, packed without padding ("nopad"): the new tokens
 * of request b are {@code tokenIds[starts[b] .. starts[b] + newCounts[b])}. A prefill step
 * brings whole prompts (or their uncached rest); a decode step one token per request.
 *
 * @param prefill     whether this is a prefill step (else decode: every newCounts[b] is 1)
 * @param tokenIds    [T] new token ids
 * @param positions   [T] position of each new token in its sequence
 * @param kvSlots     [T] pool slot that receives each new token's K and V
 * @param requestRows [B] each request's row in the {@link RequestTokenTable}
 * @param starts      [B] index of each request's first new token in the packed arrays
 * @param newCounts   [B] new tokens per request
 * @param seqLens     [B] tokens of each request in the KV after this step (earlier + new)
 * @param logitTokens [R] the new tokens (indices into tokenIds) whose logits the step returns, in
 *                    this order: by default the last new token of each request (R = B); a prompt
 *                    whose log-probabilities are wanted adds all of its tokens
 * @param decodes     the requests at the head of the batch that are decode steps of running sequences
 *                    (one new token each): all of a decode step's; in a prefill step, the decodes that
 *                    chunked prefill puts before its prompt chunks, which decode attention serves (a
 *                    one-token remainder of a cached prompt is not one: it keeps prefill attention)
 */
public record NopadBatch(boolean prefill, int[] tokenIds, int[] positions, int[] kvSlots,
                         int[] requestRows, int[] starts, int[] newCounts, int[] seqLens, int[] logitTokens, int decodes) {

    /** No decodes in a prefill step; every request of a decode step. */
    public NopadBatch(boolean prefill, int[] tokenIds, int[] positions, int[] kvSlots, int[] requestRows, int[] starts, int[] newCounts,
            int[] seqLens, int[] logitTokens) {
        this(prefill, tokenIds, positions, kvSlots, requestRows, starts, newCounts, seqLens, logitTokens, prefill ? 0 : requestRows.length);
    }

    /** Logits of the last new token of each request. */
    public NopadBatch(boolean prefill, int[] tokenIds, int[] positions, int[] kvSlots, int[] requestRows, int[] starts, int[] newCounts,
            int[] seqLens) {
        this(prefill, tokenIds, positions, kvSlots, requestRows, starts, newCounts, seqLens, lastTokens(starts, newCounts));
    }

    /** The index of each request's last new token. */
    public static int[] lastTokens(int[] starts, int[] newCounts) {
        int[] last = new int[starts.length];
        for (int i = 0; i < last.length; i++) {
            last[i] = starts[i] + newCounts[i] - 1;
        }
        return last;
    }

    public NopadBatch {
        int t = tokenIds.length, b = requestRows.length;
        if (positions.length != t || kvSlots.length != t) {
            throw new IllegalArgumentException("tokenIds, positions and kvSlots must have one entry per token");
        }
        if (starts.length != b || newCounts.length != b || seqLens.length != b) {
            throw new IllegalArgumentException("requestRows, starts, newCounts and seqLens must have one entry per request");
        }
        int next = 0;
        for (int i = 0; i < b; i++) {
            if (starts[i] != next || newCounts[i] <= 0 || seqLens[i] < newCounts[i]) {
                throw new IllegalArgumentException("request " + i + ": bad start/newCount/seqLen " + starts[i] + "/" + newCounts[i] + "/" + seqLens[i]);
            }
            if (!prefill && newCounts[i] != 1) {
                throw new IllegalArgumentException("a decode step has one new token per request");
            }
            next += newCounts[i];
        }
        if (next != t) {
            throw new IllegalArgumentException("newCounts add up to " + next + " but there are " + t + " tokens");
        }
        for (int token : logitTokens) {
            if (token < 0 || token >= t) {
                throw new IllegalArgumentException("logit token " + token + " is not one of the " + t + " new tokens");
            }
        }
        if (!prefill && !java.util.Arrays.equals(logitTokens, lastTokens(starts, newCounts))) {
            throw new IllegalArgumentException("a decode step returns the logits of each request's token, in order");
        }
        if (decodes < 0 || decodes > b || (!prefill && decodes != b)) {
            throw new IllegalArgumentException("decodes must be 0 to " + b + " (all of a decode step), got " + decodes);
        }
        for (int i = 0; i < decodes; i++) {
            if (newCounts[i] != 1) {
                throw new IllegalArgumentException("request " + i + " is one of the leading decodes but has " + newCounts[i] + " new tokens");
            }
        }
    }

    /**
     * This decode step with {@code requests - requests()} padding requests after its own: each one token (id 0 at position
     * 0) into {@code slot}, in table row {@code row}, one token long, its logits after the real ones. A recorded step of
     * that many requests then serves this one ({@code DecoderModel}); the padding's results are never read.
     */
    public NopadBatch paddedTo(int requests, int row, int slot) {
        int b = requestRows.length;
        if (prefill || requests < b) {
            throw new IllegalArgumentException("only a decode step pads, to at least its " + b + " requests, not " + requests);
        }
        if (requests == b) {
            return this;
        }
        int[] ids = java.util.Arrays.copyOf(tokenIds, requests), pos = java.util.Arrays.copyOf(positions, requests);
        int[] slots = java.util.Arrays.copyOf(kvSlots, requests), rows = java.util.Arrays.copyOf(requestRows, requests);
        int[] first = java.util.Arrays.copyOf(starts, requests), counts = java.util.Arrays.copyOf(newCounts, requests);
        int[] lens = java.util.Arrays.copyOf(seqLens, requests);
        for (int r = b; r < requests; r++) {
            slots[r] = slot;
            rows[r] = row;
            first[r] = r;
            counts[r] = 1;
            lens[r] = 1;
        }
        return new NopadBatch(false, ids, pos, slots, rows, first, counts, lens);
    }

    /** Rows of the logits this step returns. */
    public int logitRows() {
        return logitTokens.length;
    }

    public int tokens() {
        return tokenIds.length;
    }

    public int requests() {
        return requestRows.length;
    }

    /** The longest sequence in the batch (after this step). */
    public int maxSeqLen() {
        int m = 0;
        for (int s : seqLens) {
            m = Math.max(m, s);
        }
        return m;
    }

    /** The most new tokens of one request in this step. */
    public int maxNewTokens() {
        int m = 0;
        for (int n : newCounts) {
            m = Math.max(m, n);
        }
        return m;
    }

    /** Tokens of request b already in the KV before this step (a cached prefix). */
    public int prefix(int b) {
        return seqLens[b] - newCounts[b];
    }
}
