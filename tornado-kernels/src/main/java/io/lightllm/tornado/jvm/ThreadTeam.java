package io.lightllm.tornado.jvm;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * A fixed team of worker threads for kernel launches: the caller and {@code size - 1}
 * workers take indices of a launch from a shared counter until none are left. Workers spin
 * briefly and then park between launches, so a launch costs microseconds, not the tens of
 * microseconds of a fork-join submission (a decode step makes hundreds), and an idle team
 * uses no CPU.
 *
 * <p>The caller waits for the launch's indices to be done, not for every worker to check in:
 * when other processes hold the cores, a worker that is not scheduled in time simply takes no
 * part, and the caller runs the indices it would have taken. (The first version waited for all
 * workers, so one descheduled worker stalled every launch for a scheduler quantum.)
 */
final class ThreadTeam implements AutoCloseable {
    /** Spins before parking: long enough to bridge the gap between a decode step's launches. */
    private static final int SPINS = 20_000;

    private final Thread[] workers;
    /** The latest launch; workers compare it with the last one they saw. */
    private volatile Launch launch;
    private volatile boolean closed;

    /** One call of {@link #run}: its indices, the next to hand out and how many are done. */
    private static final class Launch {
        final IntConsumer task;
        final int count;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        volatile Throwable failure;

        Launch(IntConsumer task, int count, Thread caller) {
            this.task = task;
            this.count = count;
            this.caller = caller;
        }

        /** Runs indices until none are left. After a failure the rest are counted, not run. */
        void drain() {
            for (int i = next.getAndIncrement(); i < count; i = next.getAndIncrement()) {
                if (failure == null) {
                    try {
                        task.accept(i);
                    } catch (Throwable e) {
                        failure = e;
                    }
                }
                if (done.incrementAndGet() == count && Thread.currentThread() != caller) {
                    LockSupport.unpark(caller);
                }
            }
        }

        boolean finished() {
            return done.get() == count;
        }
    }

    /** Runs in a worker between seeing a launch and taking its indices (tests delay workers with it). */
    private final Runnable beforeDrain;

    ThreadTeam(int size) {
        this(size, () -> {
        });
    }

    ThreadTeam(int size, Runnable beforeDrain) {
        this.beforeDrain = beforeDrain;
        workers = new Thread[Math.max(0, size - 1)];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("lightllm-jvm-" + (i + 1)).start(this::work);
        }
    }

    int size() {
        return workers.length + 1;
    }

    /** Runs {@code task(i)} for every i in [0, n) on the team; returns when all are done. */
    synchronized void run(int n, IntConsumer task) {
        if (n <= 0) {
            return;
        }
        if (n == 1 || workers.length == 0 || isWorker()) {
            for (int i = 0; i < n; i++) {
                task.accept(i);
            }
            return;
        }
        Launch l = new Launch(task, n, Thread.currentThread());
        launch = l;
        // the caller takes indices too, so n - 1 helpers at most
        for (int w = 0; w < Math.min(workers.length, n - 1); w++) {
            LockSupport.unpark(workers[w]);
        }
        l.drain();
        for (int spins = 0; !l.finished(); ) {
            if (++spins > SPINS) {
                LockSupport.park(this);
            } else {
                Thread.onSpinWait();
            }
        }
        Throwable f = l.failure;
        if (f != null) {
            if (f instanceof RuntimeException re) {
                throw re;
            }
            if (f instanceof Error e) {
                throw e;
            }
            throw new IllegalStateException(f);
        }
    }

    private boolean isWorker() {
        Thread t = Thread.currentThread();
        for (Thread w : workers) {
            if (w == t) {
                return true;
            }
        }
        return false;
    }

    private void work() {
        Launch seen = null;
        while (!closed) {
            Launch l = launch;
            for (int spins = 0; l == seen && !closed; l = launch) {
                if (++spins > SPINS) {
                    LockSupport.park(this);
                } else {
                    Thread.onSpinWait();
                }
            }
            if (closed) {
                return;
            }
            seen = l;
            beforeDrain.run();
            l.drain();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
