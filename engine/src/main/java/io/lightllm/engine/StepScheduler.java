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
    /** Null when the prefix cache is off. */
    private final PrefixCache cache;
    /** Tokens a step computes at most when prompts are prefilled in chunks; 0: whole prompts, steps of one kind. */
    private final int chunk;
    /** Prompts admitted and not yet wholly prefilled (chunked mode), in admission order. */
    private final List<Prefilling> prefilling = new ArrayList<>();
    private final List<GeneratedToken> outputs = new ArrayList<>();
    private int pauses;
    private long prefillSteps;
    private long decodeSteps;

    StepScheduler(Router router, TokenKvPool pool, RequestTokenTable table, Set<Integer> eosTokenIds, PrefixCache cache) {
        this(router, pool, table, eosTokenIds, cache, 0);
    }

    /**
     * @param chunkedPrefill tokens per step when long prompts are prefilled in chunks beside the
     *                       running decodes (0: off)
     */
    StepScheduler(Router router, TokenKvPool pool, RequestTokenTable table, Set<Integer> eosTokenIds, PrefixCache cache, int chunkedPrefill) {
        this.chunk = chunkedPrefill;
        this.cache = cache;
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
        if (chunk > 0) {
            return nextMixed();
        }
        if (router.admissionDue()) {
            List<Router.Admission> admitted = router.admit(table.freeRows(), admissionContext());
            if (!admitted.isEmpty()) {
                prefillSteps++;
                return prefill(startPrompts(admitted));
            }
        }
        if (router.running().isEmpty()) {
            return null;
        }
        makeRoomToDecode(router.running());
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
            if (cache != null && step.promptsDone().contains(r)) {
                // the prompt's KV is written: later prompts starting with it reuse it (riders share it already)
                adopt(r, cache.insert(r.tokens(r.kvLength()), r.slots(), r.kvLength(), r.cacheLock()));
            }
            r.addToken(token);
            FinishReason reason = finishAfter(r, token);
            outputs.add(new GeneratedToken(r, token, sampled.logprobs()[s], reason, null));
            if (reason != null) {
                release(r, true);
                r.finished(reason, null);
            }
        }
    }

    /** Ends the step's sequences with an error (its forward pass or sampling failed). */
    void fail(Step step, String message) {
        for (Request r : step.sequences()) {
            finish(r, FinishReason.ERROR, message);
        }
        // a chunk of a prompt may have been in the failed step: its KV cannot be trusted
        for (Prefilling p : List.copyOf(prefilling)) {
            finish(p.request, FinishReason.ERROR, message);
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

    /** Slots the prefix cache holds that no running request locks (evictable on demand). */
    int cachedSlots() { return cache == null ? 0 : cache.cachedTokens() - cache.lockedTokens(); }

    long prefixLookupTokens() { return cache == null ? 0 : cache.lookupTokens(); }

    long prefixHitTokens() { return cache == null ? 0 : cache.hitTokens(); }

    /** The eos rule is skipped with ignore_eos; both eos and stop ids wait for min_new_tokens. */
    private FinishReason finishAfter(Request r, int token) {
        SamplingParams p = r.params();
        boolean minReached = r.generatedCount() >= p.minNewTokens();
        if (minReached && (p.stopTokenIds().contains(token) || (!p.ignoreEos() && eosTokenIds.contains(token)))) {
            return FinishReason.STOP;
        }
        if (r.constraint() != null && r.constraint().complete() && (eosTokenIds.contains(token) || !r.constraint().canExtend())) {
            return FinishReason.STOP; // the structured output is whole: nothing may follow, or the end was chosen
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
        Prefilling chunked = prefillingOf(r);
        if (chunked != null && chunked.request == r) {
            // a prompt ended before its last chunk: its siblings, which wait for it, end with it
            prefilling.remove(chunked);
            chunked.riders.forEach(rider -> finish(rider, reason, message));
        } else if (chunked != null) {
            chunked.riders.remove(r);
        }
        if (r.status() == RequestStatus.RUNNING) {
            // part of a prompt still being prefilled has no KV: nothing of it goes to the prefix cache
            release(r, reason != FinishReason.ERROR && chunked == null);
        } else {
            router.removeWaiting(r);
        }
        r.finished(reason, message);
        outputs.add(new GeneratedToken(r, -1, null, reason, message));
    }

    /**
     * Makes {@code r} hold the cache's slots for its prompt, which {@code m} locks. They are its
     * own, except where another request of the same step cached the same tokens first: then r gives
     * up its copy of that KV (the same values) for the cached one, so the router's count of shared
     * tokens holds. Siblings that share r's slots keep r's copy, so r keeps it too and locks nothing.
     */
    private void adopt(Request r, PrefixCache.Match m) {
        int[] mine = r.slotRange(0, m.length());
        if (!java.util.Arrays.equals(mine, m.slots())) {
            if (r.siblings().size() > 1) {
                cache.unlock(m);
                r.cacheLock(PrefixCache.Match.NONE);
                return;
            }
            pool.retain(m.slots());
            pool.free(mine);
            r.replaceSlots(m.slots());
            table.writeRow(r.row(), m.slots());
        }
        r.cacheLock(m);
    }

    /**
     * Gives back a request's slots and row. With {@code cacheSequence} its sequence's KV (all but
     * the newest token, whose KV is not written yet) joins the prefix cache first, so a follow-up
     * (the next turn of a chat) finds it; a failed step's KV is not trusted.
     */
    private void release(Request r, boolean cacheSequence) {
        if (cache != null) {
            PrefixCache.Match lock = r.cacheLock();
            if (cacheSequence && r.sharedPrefix() == 0 && r.kvLength() > 0) {
                lock = cache.insert(r.tokens(r.kvLength()), r.slots(), r.kvLength(), lock);
            }
            cache.unlock(lock);
        }
        pool.free(r.slots());
        table.release(r.row());
        router.leave(r);
    }

    /** A prefill step of whole prompts: each computed from its cached prefix on, sampled with its siblings. */
    private Step prefill(List<Prefilling> prompts) {
        List<int[]> entries = new ArrayList<>();
        List<Request> entryRequests = new ArrayList<>(), sequences = new ArrayList<>(), promptsDone = new ArrayList<>();
        List<Integer> logitsRows = new ArrayList<>();
        for (Prefilling p : prompts) {
            Request r = p.request;
            entries.add(new int[] {r.row(), p.done, r.length() - p.done});
            entryRequests.add(r);
            promptsDone.add(r);
            for (Request s : withFirst(r, p.riders)) {
                sequences.add(s);
                logitsRows.add(entries.size() - 1);
            }
        }
        return batchStep(entries, entryRequests, sequences, logitsRows, promptsDone, 0);
    }

    /** The chunked prefill {@code r} belongs to (its prompt, or one its siblings share), or null. */
    private Prefilling prefillingOf(Request r) {
        for (Prefilling p : prefilling) {
            if (p.request == r || p.riders.contains(r)) {
                return p;
            }
        }
        return null;
    }

    /** A prompt being prefilled chunk by chunk, the siblings waiting to share it, and the tokens whose KV is written. */
    private static final class Prefilling {
        final Request request;
        final List<Request> riders;
        int done;

        Prefilling(Request request, List<Request> riders, int done) {
            this.request = request;
            this.riders = new ArrayList<>(riders);
            this.done = done;
        }
    }

    /**
     * Chunked prefill (vLLM's, LightLLM's --chunked_prefill_size): one kind of step while prompts are read.
     * Every running sequence past its prompt decodes its next token, as a one-token prefill over its
     * KV, and the admitted prompts fill the rest of the step's {@link #chunk} tokens in order, a
     * long prompt over several steps. A step without prompt tokens is a plain decode step, so the
     * model replays it as a recorded graph (as vLLM replays CUDA graphs for decode-only batches). A
     * prompt is sampled from (with its siblings) in the step that computes its last token; until then
     * its slots are allocated, and the router counts them.
     */
    private Step nextMixed() {
        if (router.admissionDue()) {
            List<Router.Admission> admitted = router.admit(table.freeRows(), admissionContext());
            prefilling.addAll(startPrompts(admitted));
        }
        java.util.Set<Request> waitingForPrompt = new java.util.HashSet<>();
        for (Prefilling p : prefilling) {
            waitingForPrompt.add(p.request);
            waitingForPrompt.addAll(p.riders);
        }
        List<Request> decoding = new ArrayList<>(router.running());
        decoding.removeAll(waitingForPrompt);
        if (decoding.isEmpty() && prefilling.isEmpty()) {
            return null;
        }
        decoding = makeRoomToDecode(decoding);
        if (!decoding.isEmpty()) {
            decodeSteps++;
            router.decodeStepDone();
        }
        if (prefilling.isEmpty()) {
            // no prompt tokens this step: a plain decode step, which the model replays as a recorded graph
            return decoding.isEmpty() ? null : decode(decoding);
        }
        prefillSteps++; // a step that computes prompt tokens (with decodes or not)
        // the decodes first: a long prompt never holds them back, and it still gets a fair share
        int budget = Math.max(chunk - decoding.size(), minPrefillPerStep());
        List<int[]> entries = new ArrayList<>(); // {row, firstPosition, count} with tokens and slots read from the request
        List<Request> entryRequests = new ArrayList<>();
        List<Request> sequences = new ArrayList<>(), promptsDone = new ArrayList<>();
        List<Integer> logitsRows = new ArrayList<>();
        for (Request r : decoding) {
            r.addSlots(allocate(1));
            logitsRows.add(entries.size());
            entries.add(new int[] {r.row(), r.length() - 1, 1});
            entryRequests.add(r);
            sequences.add(r);
        }
        for (java.util.Iterator<Prefilling> it = prefilling.iterator(); it.hasNext() && budget > 0; ) {
            Prefilling p = it.next();
            Request r = p.request;
            int n = Math.min(r.length() - p.done, budget);
            budget -= n;
            entries.add(new int[] {r.row(), p.done, n});
            entryRequests.add(r);
            p.done += n;
            if (p.done == r.length()) {
                it.remove();
                promptsDone.add(r);
                for (Request s : withFirst(r, p.riders)) {
                    sequences.add(s);
                    logitsRows.add(entries.size() - 1);
                }
            }
        }
        return batchStep(entries, entryRequests, sequences, logitsRows, promptsDone, decoding.size());
    }

    /** The least prompt tokens a mixed step computes (the decodes take the rest of the chunk); 0 without chunks. */
    private int minPrefillPerStep() {
        return chunk == 0 ? 0 : Math.max(1, chunk / 4);
    }

    /**
     * Tokens of {@code r}'s sequence whose KV the prefix cache holds (all but the last at most), as admission counts them;
     * none for a prompt to be scored, which is computed whole.
     */
    private int cachedPrefix(Request r) {
        return cache == null || r.scoresPrompt() ? 0 : cache.peek(r.tokens(r.length()), r.length() - 1);
    }

    /**
     * Admission's view: the cached prefixes and the cached tokens running requests share; with
     * chunks, each request of a prefilling prompt (and its siblings) decodes only after the steps
     * that the prompt tokens up to its own take, at the least a step computes, and new prompts
     * queue behind them.
     */
    private Router.Context admissionContext() {
        java.util.Map<Request, Long> ahead = new java.util.IdentityHashMap<>();
        long tokens = 0;
        for (Prefilling p : prefilling) {
            tokens += p.request.length() - p.done;
            long upToThis = tokens;
            ahead.put(p.request, upToThis);
            p.riders.forEach(r -> ahead.put(r, upToThis));
        }
        return new Router.Context(this::cachedPrefix, cache == null ? 0 : cache.lockedTokens(), r -> ahead.getOrDefault(r, 0L), tokens,
                chunk, minPrefillPerStep());
    }

    private static List<Request> withFirst(Request first, List<Request> rest) {
        List<Request> all = new ArrayList<>();
        all.add(first);
        all.addAll(rest);
        return all;
    }

    /**
     * The admitted prompts' rows and slots (their cached prefixes, then the rest allocated now),
     * shared with their siblings, before their first computed token. Every prefix is looked up
     * (and locked) before anything is allocated, so the room an allocation makes by evicting cache
     * entries never takes a prefix that admission counted as cached.
     */
    private List<Prefilling> startPrompts(List<Router.Admission> admitted) {
        List<PrefixCache.Match> cached = new ArrayList<>();
        for (Router.Admission a : admitted) {
            Request r = a.queued();
            cached.add(cache == null || r.scoresPrompt() ? PrefixCache.Match.NONE : cache.lookup(r.tokens(r.length()), r.length() - 1));
        }
        List<Prefilling> started = new ArrayList<>();
        for (int i = 0; i < admitted.size(); i++) {
            started.add(startPrompt(admitted.get(i), cached.get(i)));
        }
        return started;
    }

    private Prefilling startPrompt(Router.Admission a, PrefixCache.Match m) {
        Request r = a.queued();
        int len = r.length();
        r.row(acquireRow());
        if (m.length() > 0) {
            pool.retain(m.slots());
            r.useCached(m);
            table.writeRow(r.row(), m.slots());
        }
        r.prefilled(m.length());
        r.addSlots(allocate(len - m.length()));
        for (Request rider : a.riders()) {
            shareSlots(rider, r.slots());
        }
        return new Prefilling(r, a.riders(), m.length());
    }

    /**
     * A prefill-kind step: entries {row, first position, count} of the requests' tokens, slots read from them.
     * {@code logitsRows} name entries; the step's logits hold each entry's last token, or all of its tokens
     * where its prompt is scored and not yet (a request paused and prefilled again is not scored twice).
     */
    private Step batchStep(List<int[]> entries, List<Request> entryRequests, List<Request> sequences, List<Integer> logitsRows,
            List<Request> promptsDone, int decodes) {
        int tokens = entries.stream().mapToInt(e -> e[2]).sum(), b = entries.size();
        int[] ids = new int[tokens], positions = new int[tokens], kvSlots = new int[tokens];
        int[] rows = new int[b], starts = new int[b], counts = new int[b], seqLens = new int[b], lastRow = new int[b];
        List<Integer> logitTokens = new ArrayList<>();
        List<Step.PromptScores> scores = new ArrayList<>();
        int t = 0;
        for (int i = 0; i < b; i++) {
            int[] e = entries.get(i);
            Request r = entryRequests.get(i);
            int[] slots = r.slotRange(e[1], e[1] + e[2]);
            rows[i] = e[0];
            starts[i] = t;
            counts[i] = e[2];
            seqLens[i] = e[1] + e[2];
            // position q scores prompt token q + 1: the positions of this entry past those already scored
            int scoreFrom = Math.max(e[1], r.scoredPositions()), scoreTo = Math.min(e[1] + e[2], r.promptLength() - 1);
            if (r.scoresPrompt() && scoreFrom < scoreTo) {
                scores.add(new Step.PromptScores(r, logitTokens.size() + scoreFrom - e[1], scoreFrom, scoreTo - scoreFrom));
                for (int k = 0; k < e[2]; k++) {
                    logitTokens.add(t + k);
                }
            } else {
                logitTokens.add(t + e[2] - 1);
            }
            lastRow[i] = logitTokens.size() - 1;
            for (int k = 0; k < e[2]; k++, t++) {
                ids[t] = r.tokenAt(e[1] + k);
                positions[t] = e[1] + k;
                kvSlots[t] = slots[k];
            }
        }
        NopadBatch batch = new NopadBatch(true, ids, positions, kvSlots, rows, starts, counts, seqLens,
                logitTokens.stream().mapToInt(Integer::intValue).toArray(), decodes);
        return new Step(batch, sequences, logitsRows.stream().mapToInt(entry -> lastRow[entry]).toArray(), promptsDone, scores);
    }

    /**
     * A decode takes one slot per decoding sequence: evict unlocked cache entries, then pause the
     * youngest running sequence (a prompt still in chunks goes back with its siblings) until that
     * many are free. Returns the decoding sequences left.
     */
    private List<Request> makeRoomToDecode(List<Request> decoding) {
        List<Request> left = new ArrayList<>(decoding);
        // a paused request unlocks its cached prefix: evict again after each pause, before pausing another
        while (evictFor(left.size()) < left.size() && router.running().size() > 1) {
            Request youngest = router.youngest();
            Prefilling p = prefillingOf(youngest);
            if (p != null) {
                // a prompt not yet prefilled: back to the queue with its siblings, which ride with it again
                prefilling.remove(p);
                for (Request r : withFirst(p.request, p.riders)) {
                    release(r, false);
                    r.paused();
                    pauses++;
                }
                router.requeuePaused(p.request);
            } else {
                release(youngest, false);
                youngest.paused();
                router.requeuePaused(youngest);
                left.remove(youngest);
                pauses++;
            }
        }
        if (evictFor(left.size()) < left.size()) {
            throw new IllegalStateException("the KV pool of " + pool.capacity() + " slots cannot hold one request: " + left);
        }
        return left;
    }

    /** Evicts unlocked cache entries until {@code wanted} slots are free, if the cache holds enough; the free slots then. */
    private int evictFor(int wanted) {
        if (cache != null && pool.freeSlots() < wanted) {
            cache.evict(wanted - pool.freeSlots());
        }
        return pool.freeSlots();
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
        evictFor(n);
        int[] slots = pool.alloc(n);
        if (slots == null) {
            throw new IllegalStateException("the KV pool has " + pool.freeSlots() + " free slots, " + n + " needed: the router over-committed");
        }
        return slots;
    }
}
