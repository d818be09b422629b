package io.lightllm.engine;

import io.lightllm.models.Golden;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A mix of requests for end-to-end tests, and the two ways to run it: every request alone in
 * an engine of its own pool (the reference), or all at once.
 */
final class Workload {
    /** One request: a prompt and its sampling settings; {@code golden} is the transformers greedy output it must start with, or null. */
    record Job(int[] prompt, SamplingParams params, int[] golden) {
        boolean greedy() {
            return params.greedy();
        }
    }

    private Workload() {
    }

    /**
     * {@code count} requests: first each golden prompt greedy with eos ignored for
     * {@code goldenTokens}, then a rotation of greedy (eos honoured), greedy ignoring eos,
     * seeded sampling, and seeded sampling with n = 2 and a repetition penalty, on golden
     * prompts or random ids of 1 to {@code maxPrompt} tokens, with 1 to {@code maxNew} new tokens.
     */
    static List<Job> mixed(List<Golden> golden, int goldenTokens, int count, int vocab, int maxPrompt, int maxNew, long seed) {
        Random random = new Random(seed);
        List<Job> jobs = new ArrayList<>();
        for (Golden g : golden) {
            jobs.add(new Job(g.inputIds(), SamplingParams.builder().maxNewTokens(goldenTokens).ignoreEos(true).build(),
                    Arrays.copyOf(g.greedyIds(), goldenTokens)));
        }
        for (int i = jobs.size(); i < count; i++) {
            int[] prompt = random.nextBoolean() ? golden.get(random.nextInt(golden.size())).inputIds()
                    : random.ints(1 + random.nextInt(maxPrompt), 0, vocab).toArray();
            SamplingParams.Builder p = SamplingParams.builder().maxNewTokens(1 + random.nextInt(maxNew));
            switch (i % 4) {
                case 0 -> { }
                case 1 -> p.ignoreEos(true);
                case 2 -> p.temperature(0.9f).topK(40).topP(0.9f).seed(1000L + i);
                default -> p.temperature(1.0f).repetitionPenalty(1.1f).seed(2000L + i).n(2);
            }
            jobs.add(new Job(prompt, p.build(), null));
        }
        return jobs;
    }

    /** KV slots the jobs could hold at once if all ran together (their worst cases). */
    static long worstCaseSlots(List<Job> jobs) {
        return jobs.stream().mapToLong(j -> j.prompt().length + (long) j.params().n() * (j.params().maxNewTokens() - 1)).sum();
    }

    /** Each job alone: submitted only after the previous one finished. */
    static List<List<Completion>> solo(Engine engine, List<Job> jobs) {
        List<List<Completion>> out = new ArrayList<>();
        for (Job j : jobs) {
            out.add(engine.generate(j.prompt(), j.params()));
        }
        return out;
    }

    /** All jobs submitted at once, from one thread each. */
    static List<List<Completion>> concurrent(Engine engine, List<Job> jobs) {
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            List<CompletableFuture<List<Completion>>> futures = jobs.stream()
                    .map(j -> CompletableFuture.supplyAsync(() -> engine.generate(j.prompt(), j.params()), clients)).toList();
            return futures.stream().map(CompletableFuture::join).toList();
        }
    }
}
