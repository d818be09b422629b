package io.lightllm.engine;

import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The third stage: one thread that turns the inference loop's tokens into text events on each
 * submission's stream, in order. Stop strings found here end their sequence in the loop at its
 * next step.
 */
final class Detokenization implements Runnable {
    private static final long POLL_MS = 20;
    private final BlockingQueue<GeneratedToken> queue = new LinkedBlockingQueue<>();
    private final Map<Long, Submission> submissions = new ConcurrentHashMap<>();
    private volatile boolean stopping;

    void register(Submission s) {
        submissions.put(s.id(), s);
    }

    /** Called by the inference loop; never blocks. */
    void accept(GeneratedToken g) {
        queue.add(g);
    }

    /** Stops once everything queued so far is delivered. */
    void stop() {
        stopping = true;
    }

    @Override
    public void run() {
        try {
            while (!stopping || !queue.isEmpty()) {
                GeneratedToken g = queue.poll(POLL_MS, TimeUnit.MILLISECONDS);
                if (g == null) {
                    continue;
                }
                long id = g.request().id();
                Submission s = submissions.get(id);
                if (s != null && s.accept(g)) {
                    submissions.remove(id);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
