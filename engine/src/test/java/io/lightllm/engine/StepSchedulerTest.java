package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The scheduler with a real KV pool and request table, and tokens chosen by the test instead of
 * a model: token k of request id is {@link #token}, and a request meant to stop early gets the
 * stop token at its chosen length. So every request's exact output is known in advance, also
 * across pauses.
 */
class StepSchedulerTest {
    private static final int STOP = 99;
    private static final int EOS = 98;
    private final Device device = Devices.get("jvm");

    private static int token(Request r, int k) {
        return (int) ((r.id() * 31 + r.sequenceIndex() * 7 + k) % 90);
    }

    /** Tokens a request should produce: its stop position if it has one, else max_new_tokens. */
    private static int expectedLength(Request r, int[] stopAt) {
        int stop = stopAt[(int) r.id()];
        return stop > 0 ? Math.min(stop, r.maxNewTokens()) : r.maxNewTokens();
    }

    private static int[] sample(Step step, int[] stopAt) {
        int[] out = new int[step.sequences().size()];
        for (int s = 0; s < out.length; s++) {
            Request r = step.sequences().get(s);
            int k = r.generatedCount();
            out[s] = stopAt[(int) r.id()] == k + 1 ? STOP : token(r, k);
        }
        return out;
    }

    /**
     * With the prefix cache half the prompts start with one of three shared prefixes; its
     * evictable slots are not the router's, so the over-commit check counts the pool without them.
     */
    @ParameterizedTest(name = "router_max_new_token_len {0}, prefix cache {1}, seed {2}, chunked prefill {3}")
    @CsvSource({"0, false, 0, 0", "6, false, 0, 0", "0, true, 0, 0", "6, true, 0, 0", "0, true, 1, 0", "6, true, 1, 0", "0, true, 2, 0",
        "6, true, 2, 0", "0, true, 3, 0", "6, true, 3, 0", "0, true, 4, 0", "6, true, 4, 0", "0, true, 5, 0", "6, true, 5, 0",
        "0, true, 6, 0", "6, true, 6, 0", "0, false, 0, 16", "6, false, 0, 16", "0, true, 0, 16", "6, true, 0, 16", "0, true, 1, 7",
        "6, true, 1, 7", "0, false, 2, 40", "6, true, 2, 40"})
    void randomArrivalsNeverOverCommitAndEveryRequestFinishesExactly(int outputCap, boolean prefixCache, int seed, int chunk) {
        run(outputCap, prefixCache, seed, chunk, 160);
    }

    /**
     * Pausing a request unlocks its cached prefix: those slots must be evicted before another request is paused or the
     * step given up (seed 1 in a pool of 96 left one request that fits, 16 + 35 tokens, with the pool held by unlocked
     * cache entries: "cannot hold one request" before).
     */
    @Test
    void pausingARequestEvictsThePrefixItUnlocked() {
        run(6, true, 1, 0, 96);
    }

    private void run(int outputCap, boolean prefixCache, int seed, int chunk, int capacity) {
        int rowsAvailable = 24;
        Random random = new Random(1234 + outputCap + 1000L * seed);
        int total = 120;
        int[] stopAt = new int[total];
        try (TokenKvPool pool = new TokenKvPool(device, 1, 1, 1, capacity, DType.F32);
             RequestTokenTable table = new RequestTokenTable(device, rowsAvailable, 128)) {
            Router router = new Router(new RouterConfig(capacity, 64, 16, outputCap, 2));
            PrefixCache cache = prefixCache ? new PrefixCache(pool) : null;
            StepScheduler scheduler = new StepScheduler(router, pool, table, Set.of(EOS), cache, chunk);
            int[][] shared = {random.ints(24, 0, 90).toArray(), random.ints(8, 0, 90).toArray(), random.ints(30, 0, 90).toArray()};
            List<Request> all = new ArrayList<>();
            int submitted = 0;
            int steps = 0;
            while (true) {
                for (int arrivals = random.nextInt(3); arrivals > 0 && submitted < total; arrivals--, submitted++) {
                    int[] prompt = random.ints(1 + random.nextInt(40), 0, 90).toArray();
                    if (prefixCache && random.nextBoolean()) {
                        int[] head = shared[random.nextInt(shared.length)];
                        int[] joined = java.util.Arrays.copyOf(head, Math.min(40, head.length + prompt.length));
                        System.arraycopy(prompt, 0, joined, head.length, joined.length - head.length);
                        prompt = joined;
                    }
                    SamplingParams p = SamplingParams.builder().maxNewTokens(1 + random.nextInt(40)).n(random.nextInt(5) == 0 ? 3 : 1)
                            .stopTokenIds(List.of(STOP)).build();
                    stopAt[submitted] = random.nextBoolean() ? 1 + random.nextInt(40) : 0;
                    List<Request> group = Request.group(submitted, prompt, p, 7, p.maxNewTokens());
                    all.addAll(group);
                    scheduler.submit(group.getFirst());
                }
                Step step = scheduler.next();
                if (step == null) {
                    if (submitted == total) {
                        break;
                    }
                    continue;
                }
                steps++;
                assertTrue(step.batch().tokens() <= 64 || step.batch().requests() == 1, "batch_max_tokens");
                if (chunk > 0) { // the decodes, and the prompt chunks' share
                    int decodes = (int) java.util.Arrays.stream(step.batch().newCounts()).filter(c -> c == 1).count();
                    assertTrue(step.batch().tokens() <= Math.max(chunk, decodes + chunk / 4), "chunk budget: " + step.batch().tokens());
                }
                assertTrue(router.running().size() <= 16, "running_max_req_size");
                int evictable = cache == null ? 0 : cache.cachedTokens() - cache.lockedTokens();
                if (outputCap == 0) {
                    assertTrue(pool.usedSlots() - evictable <= router.committedPeak(),
                            pool.usedSlots() + " slots in use, the router committed to " + router.committedPeak());
                }
                scheduler.complete(step, sample(step, stopAt));
            }
            assertTrue(router.committedPeak() <= capacity);
            assertTrue(pool.highWater() <= capacity);
            if (outputCap == 0) {
                assertEquals(0, scheduler.pauses(), "exact estimates never need a pause");
                assertTrue(cache != null || pool.highWater() <= router.committedPeak());
            } else {
                assertTrue(scheduler.pauses() > 0, "a 6-token estimate for up to 40 tokens must run short");
            }
            for (Request r : all) {
                assertEquals(RequestStatus.FINISHED, r.status(), r.toString());
                int n = expectedLength(r, stopAt);
                int[] expected = new int[n];
                for (int k = 0; k < n; k++) {
                    expected[k] = stopAt[(int) r.id()] == k + 1 ? STOP : token(r, k);
                }
                assertArrayEquals(expected, r.generated(), r.toString());
                assertEquals(stopAt[(int) r.id()] > 0 && stopAt[(int) r.id()] <= r.maxNewTokens() ? FinishReason.STOP : FinishReason.LENGTH,
                        r.finishReason(), r.toString());
            }
            if (cache != null) {
                assertTrue(cache.hitTokens() > 0, "shared prefixes were found cached");
                assertEquals(0, cache.lockedTokens(), "nothing runs, so nothing is locked");
                assertEquals(capacity, pool.freeSlots() + cache.cachedTokens(), "the cache holds the only references left");
                cache.clear();
            }
            assertEquals(capacity, pool.freeSlots(), "every slot is back");
            assertEquals(rowsAvailable, table.freeRows(), "every row is back");
            assertTrue(steps > total);
        }
    }

    /**
     * Chunked prefill's point: a long prompt is read over several steps, each within the chunk's
     * tokens, while a running stream decodes a token in every one of them; the long prompt's
     * request samples only in the step of its last chunk.
     */
    @Test
    void aLongPromptIsPrefilledInChunksWhileAStreamKeepsDecoding() {
        int chunk = 16;
        try (TokenKvPool pool = new TokenKvPool(device, 1, 1, 1, 512, DType.F32);
             RequestTokenTable table = new RequestTokenTable(device, 4, 256)) {
            StepScheduler scheduler = new StepScheduler(new Router(new RouterConfig(512, 64, 4, 0, 1)), pool, table, Set.of(EOS), null, chunk);
            Request stream = Request.group(0, new int[] {5, 6, 7}, SamplingParams.greedy(100), 1, 100).getFirst();
            scheduler.submit(stream);
            Step first = scheduler.next();
            scheduler.complete(first, sample(first, new int[2]));
            Request longPrompt = Request.group(1, new java.util.Random(2).ints(100, 0, 90).toArray(), SamplingParams.greedy(4), 1, 4).getFirst();
            scheduler.submit(longPrompt);
            int chunkSteps = 0;
            while (longPrompt.generatedCount() == 0) {
                Step step = scheduler.next();
                assertTrue(step != null, "a step: " + stream + " " + longPrompt);
                assertTrue(step.sequences().contains(stream), "the stream decodes in every step");
                assertEquals(1, step.batch().decodes(), "the stream's token is the step's one decode, first (decode attention serves it)");
                assertTrue(step.batch().tokens() <= chunk, step.batch().tokens() + " tokens in a step of chunk " + chunk);
                boolean last = step.sequences().contains(longPrompt);
                int streamBefore = stream.generatedCount();
                scheduler.complete(step, sample(step, new int[2]));
                assertEquals(streamBefore + 1, stream.generatedCount());
                chunkSteps++;
                assertEquals(last, longPrompt.generatedCount() == 1, "the long prompt samples in its last chunk's step only");
            }
            // a decode before the prompt is admitted (router_max_wait_tokens 1), then its 100 tokens, 15 a step beside the stream's one
            assertEquals(1 + 7, chunkSteps);
            // the counters count steps, whatever they mix: the stream's prompt and the 7 chunks; the 8 steps the stream decoded in
            assertEquals(1 + 7, scheduler.prefillSteps(), "steps that computed prompt tokens");
            assertEquals(1 + 7, scheduler.decodeSteps(), "steps that decoded");
            // no prompt tokens left: a plain decode step of both, which the model replays as a recorded graph
            Step after = scheduler.next();
            assertFalse(after.prefill(), "a decode-kind step once every prompt is in");
            assertEquals(List.of(stream, longPrompt), after.sequences());
            scheduler.complete(after, sample(after, new int[2]));
            assertEquals(1 + 7, scheduler.prefillSteps());
        }
    }

    @Test
    void prefillPacksPromptsAndSiblingsShareThePromptSlots() {
        try (TokenKvPool pool = new TokenKvPool(device, 1, 1, 1, 64, DType.F32);
             RequestTokenTable table = new RequestTokenTable(device, 4, 16)) {
            StepScheduler scheduler = new StepScheduler(new Router(new RouterConfig(64, 64, 4, 0, 6)), pool, table, Set.of(EOS), null);
            List<Request> single = Request.group(0, new int[] {5, 6}, SamplingParams.greedy(3), 1, 3);
            List<Request> pair = Request.group(1, new int[] {7, 8, 9}, SamplingParams.builder().maxNewTokens(3).n(2).build(), 1, 3);
            scheduler.submit(single.getFirst());
            scheduler.submit(pair.getFirst());
            Step prefill = scheduler.next();
            assertTrue(prefill.prefill());
            assertArrayEquals(new int[] {5, 6, 7, 8, 9}, prefill.batch().tokenIds());
            assertArrayEquals(new int[] {0, 1, 0, 1, 2}, prefill.batch().positions());
            assertArrayEquals(new int[] {0, 2}, prefill.batch().starts());
            assertArrayEquals(new int[] {0, 1, 1}, prefill.logitsRows(), "both sequences of the pair sample from its row");
            assertEquals(5, pool.usedSlots(), "the pair's prompt is stored once");
            Request sibling = pair.get(1);
            int[] promptSlots = pair.getFirst().slots();
            assertArrayEquals(promptSlots, sibling.slots());
            IntArray row = (IntArray) device.download(table.buffer());
            for (int p = 0; p < 3; p++) {
                assertEquals(promptSlots[p], row.get(sibling.row() * 16 + p), "the sibling's table row lists the prompt slots");
            }
            scheduler.complete(prefill, new int[] {1, 2, 3});
            Step decode = scheduler.next();
            assertEquals(false, decode.prefill());
            assertArrayEquals(new int[] {1, 2, 3}, decode.batch().tokenIds());
            assertArrayEquals(new int[] {2, 3, 3}, decode.batch().positions());
            assertArrayEquals(new int[] {3, 4, 4}, decode.batch().seqLens());
            assertEquals(8, pool.usedSlots());
            pair.getFirst().requestFinish(FinishReason.ABORT);
            scheduler.complete(decode, new int[] {1, 2, 3});
            scheduler.next();   // the abort takes effect at the step boundary
            assertEquals(FinishReason.ABORT, pair.getFirst().finishReason());
            assertNull(sibling.finishReason(), "aborting one sequence leaves its sibling running");
            assertEquals(2 + 2 + 3 + 2, pool.usedSlots(), "the prompt stays while the sibling holds it");
        }
    }

    @Test
    void eosStopsOnlyAfterMinNewTokensAndNotWithIgnoreEos() {
        try (TokenKvPool pool = new TokenKvPool(device, 1, 1, 1, 64, DType.F32);
             RequestTokenTable table = new RequestTokenTable(device, 4, 16)) {
            StepScheduler scheduler = new StepScheduler(new Router(new RouterConfig(64, 64, 4, 0, 6)), pool, table, Set.of(EOS), null);
            Request early = Request.group(0, new int[] {1}, SamplingParams.builder().maxNewTokens(5).minNewTokens(2).build(), 1, 5).getFirst();
            Request ignoring = Request.group(1, new int[] {1}, SamplingParams.builder().maxNewTokens(3).ignoreEos(true).build(), 1, 3).getFirst();
            scheduler.submit(early);
            scheduler.submit(ignoring);
            for (Step step = scheduler.next(); step != null; step = scheduler.next()) {
                scheduler.complete(step, fill(step.sequences().size(), EOS));
            }
            assertArrayEquals(new int[] {EOS, EOS}, early.generated());
            assertEquals(FinishReason.STOP, early.finishReason());
            assertArrayEquals(new int[] {EOS, EOS, EOS}, ignoring.generated());
            assertEquals(FinishReason.LENGTH, ignoring.finishReason());
            List<GeneratedToken> outputs = scheduler.drainOutputs();
            assertEquals(5, outputs.size());
            assertNotNull(outputs.getLast().finish());
        }
    }

    private static int[] fill(int n, int v) {
        int[] a = new int[n];
        java.util.Arrays.fill(a, v);
        return a;
    }
}
