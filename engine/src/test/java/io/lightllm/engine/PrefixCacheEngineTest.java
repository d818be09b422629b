package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.SharedData;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import org.junit.jupiter.api.Test;

/**
 * The prefix cache with a real model (stories260K on the JVM): a shared "system prompt" and a
 * multi-turn follow-up are read from the cache, the tokens generated are those of an engine
 * without it, and usage-level counts (cached prompt tokens per request) say what was reused.
 */
class PrefixCacheEngineTest {
    @Test
    void sharedPrefixesAndFollowUpsReuseTheirKvAndChangeNoOutput() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            Random random = new Random(5);
            int[] system = random.ints(120, 3, model.vocabSize()).toArray();
            List<int[]> prompts = new ArrayList<>();
            for (int q = 0; q < 6; q++) {
                int[] p = java.util.Arrays.copyOf(system, system.length + 10);
                for (int i = 0; i < 10; i++) {
                    p[system.length + i] = 3 + random.nextInt(model.vocabSize() - 3);
                }
                prompts.add(p);
            }
            SamplingParams params = SamplingParams.builder().maxNewTokens(16).ignoreEos(true).build();
            List<int[]> reference = new ArrayList<>();
            try (Engine plain = Engine.start(model, EngineConfig.of(1024, eos).withPrefixCache(false), null)) {
                for (int[] p : prompts) {
                    reference.add(plain.generate(p, params).getFirst().tokens());
                }
            }
            try (Engine cached = Engine.start(model, EngineConfig.of(1024, eos), null)) {
                int[] hits = new int[prompts.size()];
                for (int q = 0; q < prompts.size(); q++) {
                    Result r = run(cached, prompts.get(q), params);
                    assertArrayEquals(reference.get(q), r.tokens, "question " + q + ": the cache changes no token");
                    hits[q] = r.cachedPromptTokens;
                }
                assertEquals(0, hits[0], "nothing cached before the first request");
                for (int q = 1; q < hits.length; q++) {
                    assertEquals(system.length, hits[q], "question " + q + " reads the shared system prompt from the cache");
                }
                // a follow-up turn: the first conversation, its answer and a new question
                int[] turn1 = prompts.getFirst();
                int[] turn2 = new int[turn1.length + reference.getFirst().length + 5];
                System.arraycopy(turn1, 0, turn2, 0, turn1.length);
                System.arraycopy(reference.getFirst(), 0, turn2, turn1.length, reference.getFirst().length);
                for (int i = turn1.length + reference.getFirst().length; i < turn2.length; i++) {
                    turn2[i] = 7;
                }
                Result follow = run(cached, turn2, params);
                // the answer's last token was never fed back, so its KV is not cached
                assertEquals(turn1.length + reference.getFirst().length - 1, follow.cachedPromptTokens, "the first turn and its answer are cached");
                EngineStats s = cached.awaitIdle(5_000);
                assertTrue(s.prefixHitTokens() >= 5L * system.length, s.toString());
                assertEquals(s.capacity(), s.freeSlots() + s.cachedSlots(), "only the cache holds slots when idle");
            }
        });
    }

    record Result(int[] tokens, int cachedPromptTokens) {
    }

    static Result run(Engine engine, int[] prompt, SamplingParams params) throws Exception {
        CompletableFuture<Result> done = new CompletableFuture<>();
        engine.submit(prompt, params).subscribe(new Flow.Subscriber<>() {
            private final List<Integer> tokens = new ArrayList<>();

            public void onSubscribe(Flow.Subscription s) {
                s.request(Long.MAX_VALUE);
            }

            public void onNext(TokenEvent e) {
                if (e.token() >= 0) {
                    tokens.add(e.token());
                }
                if (e.last()) {
                    done.complete(new Result(tokens.stream().mapToInt(Integer::intValue).toArray(), e.cachedPromptTokens()));
                }
            }

            public void onError(Throwable t) {
                done.completeExceptionally(t);
            }

            public void onComplete() {
            }
        });
        return done.get(60, java.util.concurrent.TimeUnit.SECONDS);
    }
}
