package io.lightllm.engine;

import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The one thread that owns the device: takes new requests from its inbox, runs the step the
 * {@link StepScheduler} plans through the model, samples, and hands the tokens to
 * detokenization. It never waits on the other stages (both queues are unbounded); it sleeps
 * only when nothing runs.
 */
final class InferenceLoop implements Runnable {
    private static final long IDLE_POLL_MS = 20;
    private final CausalLM model;
    private final TokenKvPool pool;
    private final RequestTokenTable table;
    private final StepScheduler scheduler;
    private final DeviceSampler sampler;
    private final Consumer<GeneratedToken> output;
    private final BlockingQueue<Request> inbox = new LinkedBlockingQueue<>();
    /** Prompts submitted but not yet here (their images being encoded): counted as waiting. */
    private final java.util.function.IntSupplier upstream;
    private volatile boolean stopping;
    private volatile EngineStats stats;
    /** Where this thread's time went (EngineStats.StepSeconds), written by it alone. */
    private long prefillNanos, decodeNanos, schedulingNanos;

    InferenceLoop(CausalLM model, TokenKvPool pool, RequestTokenTable table, StepScheduler scheduler, DeviceSampler sampler,
                  Consumer<GeneratedToken> output, java.util.function.IntSupplier upstream) {
        this.model = model;
        this.pool = pool;
        this.table = table;
        this.scheduler = scheduler;
        this.sampler = sampler;
        this.output = output;
        this.upstream = upstream;
        publishStats();
    }

    /** Queues a new prompt's first sequence (thread-safe). */
    void submit(Request first) {
        inbox.add(first);
    }

    void stop() {
        stopping = true;
    }

    EngineStats stats() {
        return stats;
    }

    /** Waiters for a condition on the stats, checked on this thread at every publication. */
    private final java.util.List<java.util.Map.Entry<java.util.function.Predicate<EngineStats>, java.util.concurrent.CompletableFuture<EngineStats>>>
            watchers = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** The first snapshot from now on (the current one included) that satisfies {@code condition}. */
    java.util.concurrent.CompletableFuture<EngineStats> whenStats(java.util.function.Predicate<EngineStats> condition) {
        java.util.concurrent.CompletableFuture<EngineStats> f = new java.util.concurrent.CompletableFuture<>();
        watchers.add(java.util.Map.entry(condition, f));
        EngineStats now = stats;
        if (condition.test(now) && watchers.removeIf(w -> w.getValue() == f)) {
            f.complete(now);
        }
        return f;
    }

    @Override
    public void run() {
        while (!stopping) {
            try {
                if (!takeNewRequests()) {
                    if (stats.waiting() != upstream.getAsInt()) {
                        publishStats(); // an upstream stage's queue changed while nothing ran here
                    }
                    continue;
                }
                long t0 = System.nanoTime();
                Step step = scheduler.next();
                long t1 = System.nanoTime();
                if (step != null) {
                    run(step);
                }
                long t2 = System.nanoTime();
                scheduler.drainOutputs().forEach(output);
                if (step != null && step.prefill()) {
                    prefillNanos += t2 - t1;
                } else {
                    decodeNanos += t2 - t1;
                }
                schedulingNanos += (t1 - t0) + (System.nanoTime() - t2);
                publishStats();
            } catch (InterruptedException e) {
                break;
            } catch (RuntimeException e) {
                // a broken invariant of the scheduler must not leave clients waiting forever:
                // end every request with the error, then go on with new ones
                scheduler.failAll("internal error: " + e);
                scheduler.drainOutputs().forEach(output);
                publishStats();
            }
        }
        for (Request r = inbox.poll(); r != null; r = inbox.poll()) {
            scheduler.submit(r);
        }
        scheduler.failAll("the engine was closed");
        scheduler.drainOutputs().forEach(output);
        sampler.close();
        publishStats();
    }

    /** Moves the inbox into the router; waits a little when there is nothing else to do. False if still idle. */
    private boolean takeNewRequests() throws InterruptedException {
        if (scheduler.router().idle()) {
            Request first = inbox.poll(IDLE_POLL_MS, TimeUnit.MILLISECONDS);
            if (first == null) {
                return false;
            }
            scheduler.submit(first);
        }
        for (Request r = inbox.poll(); r != null; r = inbox.poll()) {
            scheduler.submit(r);
        }
        return true;
    }

    private void run(Step step) {
        try {
            DeviceBuffer logits = model.forward(step.batch(), pool, table);
            sampler.scorePrompts(step, logits); // before sampling, which may overwrite logits rows
            // a step of prompt chunks alone samples nothing
            scheduler.complete(step, step.sequences().isEmpty() ? new DeviceSampler.Sampled(new int[0], new TokenLogprobs[0])
                    : sampler.sample(step, logits));
        } catch (RuntimeException e) {
            scheduler.fail(step, e.toString());
        }
    }

    private void publishStats() {
        Router router = scheduler.router();
        stats = new EngineStats(router.running().size(), router.waiting().size() + inbox.size() + upstream.getAsInt(), pool.freeSlots(), pool.capacity(),
                table.freeRows(), table.maxRequests(),
                pool.highWater(), router.committedPeak(), scheduler.pauses(), scheduler.prefillSteps(), scheduler.decodeSteps(),
                scheduler.cachedSlots(), scheduler.prefixLookupTokens(), scheduler.prefixHitTokens(),
                new EngineStats.StepSeconds(prefillNanos / 1e9, decodeNanos / 1e9, schedulingNanos / 1e9));
        EngineStats now = stats;
        for (var w : watchers) {
            if (w.getKey().test(now) && watchers.remove(w)) {
                w.getValue().complete(now);
            }
        }
    }
}
