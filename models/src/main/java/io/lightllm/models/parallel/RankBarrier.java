package io.lightllm.models.parallel;

/**
 * A reusable barrier for the ranks of one communicator that a failing rank can break: the
 * others, waiting or arriving later, get an exception instead of waiting forever. (A
 * {@link java.util.concurrent.CyclicBarrier} reset races with ranks that have not arrived yet.)
 */
final class RankBarrier {
    private final int parties;
    private int arrived;
    private long generation;
    private boolean broken;

    RankBarrier(int parties) {
        this.parties = parties;
    }

    synchronized void await() {
        if (broken) {
            throw new IllegalStateException("another rank failed during a collective operation");
        }
        if (++arrived == parties) {
            arrived = 0;
            generation++;
            notifyAll();
            return;
        }
        long mine = generation;
        while (mine == generation && !broken) {
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the other ranks", e);
            }
        }
        if (mine == generation) {
            throw new IllegalStateException("another rank failed during a collective operation");
        }
    }

    /** Wakes every waiting rank with an exception, and fails later arrivals until {@link #repair}. */
    synchronized void breakAll() {
        broken = true;
        notifyAll();
    }

    /** Ready for the next step; call once no rank runs any more. */
    synchronized void repair() {
        broken = false;
        arrived = 0;
    }
}
