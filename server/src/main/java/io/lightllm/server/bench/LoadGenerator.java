package io.lightllm.server.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Sends a run's requests as vLLM's benchmark does: arrivals are a Poisson process (exponential
 * gaps with mean 1/rate from a seeded RNG; an infinite rate sends everything at once), and each
 * arrival starts its request on a virtual thread, which first waits for one of maxConcurrency
 * permits when a limit is set. A request's latency is timed from when it is actually sent.
 */
final class LoadGenerator {
    /** One request to send. */
    public record Work(PromptBuilder.Prompt prompt, int outputTokens) { }

    /** The results in data-set order and the run's wall time, from the first arrival to the last answer. */
    record Run(List<RequestResult> results, double durationS) { }

    private LoadGenerator() {
    }

    static Run run(BenchClient client, List<Work> work, double rate, int maxConcurrency, long seed, java.time.Duration requestTimeout)
            throws InterruptedException {
        Random arrivals = new Random(seed);
        Semaphore permits = maxConcurrency > 0 ? new Semaphore(maxConcurrency) : null;
        List<Future<RequestResult>> futures = new ArrayList<>();
        List<RequestResult> results = new ArrayList<>();
        long t0 = System.nanoTime();
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        try {
            double arrivalS = 0;
            for (int i = 0; i < work.size(); i++) {
                if (Double.isFinite(rate)) {
                    arrivalS += -Math.log(1 - arrivals.nextDouble()) / rate;
                    sleepUntil(t0 + (long) (arrivalS * 1e9));
                }
                int index = i;
                Work w = work.get(i);
                futures.add(pool.submit(() -> send(client, permits, index, w, t0)));
            }
            // every request has had requestTimeout since it arrived, plus its wait for a permit: bound the whole run by that
            long queued = maxConcurrency > 0 ? (work.size() + maxConcurrency - 1) / maxConcurrency : 1;
            long deadline = System.nanoTime() + requestTimeout.toNanos() * queued;
            for (int i = 0; i < futures.size(); i++) {
                results.add(await(futures.get(i), i, work.get(i), deadline, t0));
            }
        } finally {
            pool.shutdownNow(); // interrupts requests still streaming after the deadline
            pool.awaitTermination(10, TimeUnit.SECONDS);
        }
        double duration = results.stream().mapToDouble(r -> r.startS() + r.latencyS()).max().orElse(0);
        return new Run(results, duration);
    }

    private static RequestResult send(BenchClient client, Semaphore permits, int index, Work w, long t0) throws InterruptedException {
        if (permits == null) {
            return client.stream(index, w.prompt(), w.outputTokens(), t0);
        }
        permits.acquire();
        try {
            return client.stream(index, w.prompt(), w.outputTokens(), t0);
        } finally {
            permits.release();
        }
    }

    private static RequestResult await(Future<RequestResult> f, int index, Work w, long deadline, long t0) throws InterruptedException {
        try {
            return f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            double now = (System.nanoTime() - t0) / 1e9;
            return RequestResult.failed(index, w.prompt().tokens(), w.outputTokens(), now, 0, "no answer before the run's deadline");
        } catch (ExecutionException e) {
            double now = (System.nanoTime() - t0) / 1e9;
            return RequestResult.failed(index, w.prompt().tokens(), w.outputTokens(), now, 0, e.getCause().toString());
        }
    }

    private static void sleepUntil(long nanoTime) throws InterruptedException {
        long wait = nanoTime - System.nanoTime();
        if (wait > 0) {
            TimeUnit.NANOSECONDS.sleep(wait);
        }
    }
}
