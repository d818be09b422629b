package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.SharedData;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Cancelling a subscription mid-generation, with a real model, while another request keeps running. */
class EngineAbortTest {

    @Test
    void cancellingASubscriptionFreesItsSlotsAtTheNextStep() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            int[] keeps = golden.getFirst().inputIds();
            // a long prompt: if the cancelled request kept its slots, the used count would show it
            int[] cancelled = new Random(3).ints(100, 0, model.vocabSize()).toArray();
            // without the prefix cache, which would keep the cancelled request's KV as evictable entries
            try (Engine engine = Engine.start(model, EngineConfig.of(1024, eos).withPrefixCache(false), null)) {
                CompletableFuture<List<Completion>> other = CompletableFuture.supplyAsync(() ->
                        engine.generate(keeps, SamplingParams.builder().maxNewTokens(400).ignoreEos(true).build()));
                CompletableFuture<EngineStats> atCancel = new CompletableFuture<>();
                java.util.concurrent.atomic.AtomicReference<CompletableFuture<EngineStats>> removedAt = new java.util.concurrent.atomic.AtomicReference<>();
                AtomicInteger afterCancel = new AtomicInteger();
                engine.submit(cancelled, SamplingParams.builder().maxNewTokens(400).ignoreEos(true).build()).subscribe(new Flow.Subscriber<>() {
                    private Flow.Subscription subscription;
                    private int received;

                    public void onSubscribe(Flow.Subscription s) {
                        subscription = s;
                        s.request(Long.MAX_VALUE);
                    }

                    public void onNext(TokenEvent e) {
                        if (atCancel.isDone()) {
                            afterCancel.incrementAndGet();
                        } else if (++received == 5) {
                            // events reach a subscriber after the detokenization stage, a step or two behind
                            // the inference loop: the bound counts steps from the cancel itself
                            // watched from before the cancel: the first snapshot (taken on the inference thread, one per
                            // step) with only the other request left, which may still be waiting for admission
                            removedAt.set(engine.whenStats(s -> s.running() + s.waiting() <= 1));
                            subscription.cancel();
                            atCancel.complete(engine.stats());
                        }
                    }

                    public void onError(Throwable t) {
                        atCancel.completeExceptionally(t);
                    }

                    public void onComplete() {
                    }
                });
                EngineStats cancel = atCancel.get(30, TimeUnit.SECONDS);
                EngineStats removed = removedAt.get().get(30, TimeUnit.SECONDS);
                assertEquals(1, removed.running() + removed.waiting(), "the cancelled request is removed: " + removed);
                assertTrue(removed.decodeSteps() - cancel.decodeSteps() <= 2,
                        "removed at the step boundary after the cancel (one step may have been running): " + cancel + " -> " + removed);
                assertTrue(!other.isDone(), "the other request still runs");
                int used = removed.capacity() - removed.freeSlots();
                assertTrue(used <= keeps.length + removed.decodeSteps(),
                        used + " slots in use: only the other request's prompt and at most one per decode step, none of the cancelled one's");
                List<Completion> done = other.get(60, TimeUnit.SECONDS);
                assertEquals(FinishReason.LENGTH, done.getFirst().finish());
                assertEquals(400, done.getFirst().tokens().length);
                EngineStats end = engine.awaitIdle(5_000);
                assertEquals(end.capacity(), end.freeSlots());
                assertEquals(end.rows(), end.freeRows());
                assertEquals(0, afterCancel.get(), "no events after cancel");
            }
        });
    }
}
