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
 */
public record NopadBatch(boolean prefill, int[] tokenIds, int[] positions, int[] kvSlots,
                         int[] requestRows, int[] starts, int[] newCounts, int[] seqLens) {

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
