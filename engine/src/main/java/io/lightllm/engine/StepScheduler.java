package io.lightllm.engine;

import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The host side of the inference loop, apart from the model: plans each step (admission
 * through the {@link Router}, KV slots and table rows, pauses when the pool is short), and
 * books the sampled tokens (finish checks, returning every finished request's slots and row).
 * Used by one thread.
 */
final class StepScheduler {
    private final Router router;
    private final TokenKvPool pool;
    private final RequestTokenTable table;
    private final Set<Integer> eosTokenIds;
    private final List<GeneratedToken> outputs = new ArrayList<>();
    private int pauses;
    private long prefillSteps;
    private long decodeSteps;

    StepScheduler(Router router, TokenKvPool pool, RequestTokenTable table, Set<Integer> eosTokenIds) {
        this.router = router;
        this.pool = pool;
        this.table = table;
        this.eosTokenIds = Set.copyOf(eosTokenIds);
    }

    /** Queues a new prompt's sequences (the first one carries its siblings). */
    void submit(Request first) {
        router.enqueue(first);
    }

    /**
     * Ends requests that were asked to finish, then plans the next step: a prefill of admitted
     * requests when admission is due and someone fits, else a decode of all running ones
     * (pausing the youngest while the pool is short). Null when nothing runs or waits to run.
     */
    Step next() {
        finishRequested();
        if (router.admissionDue()) {
            List<Router.Admission> admitted = router.admit(table.freeRows());
            if (!admitted.isEmpty()) {
                prefillSteps++;
                return prefill(admitted);
            }
        }
        if (router.running().isEmpty()) {
            return null;
        }
        makeRoomForDecode();
        decodeSteps++;
        router.decodeStepDone();
        return decode(router.running());
    }

    /** Books the token sampled for each of the step's sequences (no logprobs). */
    void complete(Step step, int[] tokens) {
        complete(step, new DeviceSampler.Sampled(tokens, new TokenLogprobs[tokens.length]));
    }

    /** Books the token sampled for each of the step's sequences, with its logprobs where asked. */
    void complete(Step step, DeviceSampler.Sampled sampled) {
        int[] tokens = sampled.tokens();
        List<Request> sequences = step.sequences();
        for (int s = 0; s < sequences.size(); s++) {
            Request r = sequences.get(s);
            int token = tokens[s];
            r.addToken(token);
            FinishReason reason = finishAfter(r, token);
            outputs.add(new GeneratedToken(r, token, sampled.logprobs()[s], reason, null));
            if (reason != null) {
                release(r);
                r.finished(reason, null);
            }
        }
    }

    /** Ends the step's sequences with an error (its forward pass or sampling failed). */
    void fail(Step step, String message) {
        for (Request r : step.sequences()) {
            finish(r, FinishReason.ERROR, message);
        }
    }

    /** Ends every running and waiting request with an error (the engine closes). */
    void failAll(String message) {
        for (Request r : router.running()) {
            finish(r, FinishReason.ERROR, message);
        }
        for (Request r : router.waiting()) {
            List<Request> riders = Router.riders(r);
            finish(r, FinishReason.ERROR, message);
            riders.forEach(rider -> finish(rider, FinishReason.ERROR, message));
        }
    }

    /** Tokens and endings since the last call, in order. */
    List<GeneratedToken> drainOutputs() {
        List<GeneratedToken> out = List.copyOf(outputs);
        outputs.clear();
        return out;
    }

    Router router() { return router; }

    TokenKvPool pool() { return pool; }

    int pauses() { return pauses; }

    long prefillSteps() { return prefillSteps; }

    long decodeSteps() { return decodeSteps; }

    /** The eos rule is skipped with ignore_eos; both eos and stop ids wait for min_new_tokens. */
    private FinishReason finishAfter(Request r, int token) {
        SamplingParams p = r.params();
        boolean minReached = r.generatedCount() >= p.minNewTokens();
        if (minReached && (p.stopTokenIds().contains(token) || (!p.ignoreEos() && eosTokenIds.contains(token)))) {
            return FinishReason.STOP;
        }
        return r.generatedCount() >= r.maxNewTokens() ? FinishReason.LENGTH : null;
    }

    private void finishRequested() {
        for (Request r : router.running()) {
            if (r.requestedFinish() != null) {
                finish(r, r.requestedFinish(), null);
            }
        }
        for (Request r : router.waiting()) {
            if (r.requestedFinish() != null) {
                List<Request> riders = Router.riders(r);
                finish(r, r.requestedFinish(), null);
                riders.forEach(rider -> finish(rider, rider.requestedFinish() != null ? rider.requestedFinish() : r.requestedFinish(), null));
            }
        }
    }

    private void finish(Request r, FinishReason reason, String message) {
        if (r.status() == RequestStatus.FINISHED) {
            return;
        }
        if (r.status() == RequestStatus.RUNNING) {
            release(r);
        } else {
            router.removeWaiting(r);
        }
        r.finished(reason, message);
        outputs.add(new GeneratedToken(r, -1, null, reason, message));
    }

    private void release(Request r) {
        pool.free(r.slots());
        table.release(r.row());
        router.leave(r);
    }

    /** A decode takes one slot per running sequence; pause the youngest until that many are free. */
    private void makeRoomForDecode() {
        while (pool.freeSlots() < router.running().size() && router.running().size() > 1) {
            Request youngest = router.youngest();
            release(youngest);
            youngest.paused();
            router.requeuePaused(youngest);
            pauses++;
        }
        if (pool.freeSlots() < router.running().size()) {
            throw new IllegalStateException("the KV pool of " + pool.capacity() + " slots cannot hold one request: " + router.running());
        }
    }

    private Step prefill(List<Router.Admission> admitted) {
        int tokens = 0;
        for (Router.Admission a : admitted) {
            tokens += a.queued().length();
        }
        int[] ids = new int[tokens], positions = new int[tokens], kvSlots = new int[tokens];
        int b = admitted.size();
        int[] rows = new int[b], starts = new int[b], counts = new int[b];
        List<Request> sequences = new ArrayList<>();
        List<Integer> logitsRows = new ArrayList<>();
        int t = 0;
        for (int i = 0; i < b; i++) {
            Request r = admitted.get(i).queued();
            int len = r.length();
            r.row(acquireRow());
            r.addSlots(allocate(len));
            int[] slots = r.slots();
            rows[i] = r.row();
            starts[i] = t;
            counts[i] = len;
            for (int p = 0; p < len; p++, t++) {
                ids[t] = r.tokenAt(p);
                positions[t] = p;
                kvSlots[t] = slots[p];
            }
            sequences.add(r);
            logitsRows.add(i);
            for (Request rider : admitted.get(i).riders()) {
                shareSlots(rider, slots);
                sequences.add(rider);
                logitsRows.add(i);
            }
        }
        NopadBatch batch = new NopadBatch(true, ids, positions, kvSlots, rows, starts, counts, counts.clone());
        return new Step(batch, sequences, logitsRows.stream().mapToInt(Integer::intValue).toArray());
    }

    /** A sibling of a prefilled prompt: a reference to each prompt slot and a row that lists them. */
    private void shareSlots(Request rider, int[] promptSlots) {
        pool.retain(promptSlots);
        rider.shareSlots(promptSlots);
        rider.row(acquireRow());
        table.writeRow(rider.row(), promptSlots);
    }

    private Step decode(List<Request> running) {
        int b = running.size();
        int[] ids = new int[b], positions = new int[b], kvSlots = new int[b], rows = new int[b], starts = new int[b],
                counts = new int[b], seqLens = new int[b], logitsRows = new int[b];
        for (int i = 0; i < b; i++) {
            Request r = running.get(i);
            int[] slot = allocate(1);
            r.addSlots(slot);
            int len = r.length();
            ids[i] = r.tokenAt(len - 1);
            positions[i] = len - 1;
            kvSlots[i] = slot[0];
            rows[i] = r.row();
            starts[i] = i;
            counts[i] = 1;
            seqLens[i] = len;
            logitsRows[i] = i;
        }
        return new Step(new NopadBatch(false, ids, positions, kvSlots, rows, starts, counts, seqLens), running, logitsRows);
    }

    private int acquireRow() {
        int row = table.acquire();
        if (row < 0) {
            throw new IllegalStateException("no free request-table row: the router admitted more than the table holds");
        }
        return row;
    }

    private int[] allocate(int n) {
        int[] slots = pool.alloc(n);
        if (slots == null) {
            throw new IllegalStateException("the KV pool has " + pool.freeSlots() + " free slots, " + n + " needed: the router over-committed");
        }
        return slots;
    }
}
