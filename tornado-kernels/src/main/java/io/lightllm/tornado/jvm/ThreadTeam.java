package io.lightllm.tornado.jvm;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * A fixed team of worker threads for kernel launches: the caller and {@code size - 1}
 * workers take indices from a shared counter until none are left. Workers spin briefly and
 * then park between launches, so a launch costs microseconds, not the tens of microseconds
 * of a fork-join submission; a decode step makes hundreds of launches.
 */
final class ThreadTeam implements AutoCloseable {
    private static final int SPINS = 20000;

    private final Thread[] workers;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger busy = new AtomicInteger();
    private volatile IntConsumer task;
    private volatile int count;
    private volatile long generation;
    private volatile boolean closed;
    private volatile Throwable failure;
    private volatile Thread caller;

    ThreadTeam(int size) {
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
        this.task = task;
        this.count = n;
        this.failure = null;
        this.caller = Thread.currentThread();
        next.set(0);
        busy.set(workers.length);
        generation++; // publishes the fields above to the workers
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        drain();
        int spins = 0;
        while (busy.get() > 0) {
            if (++spins > SPINS) {
                LockSupport.park(this);
            } else {
                Thread.onSpinWait();
            }
        }
        this.task = null;
        Throwable f = failure;
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

    private void drain() {
        IntConsumer t = task;
        int n = count;
        for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
            try {
                t.accept(i);
            } catch (Throwable e) {
                failure = e;
                next.set(n); // stop handing out work
            }
        }
    }

    private void work() {
        long seen = 0;
        while (!closed) {
            int spins = 0;
            while (generation == seen && !closed) {
                if (++spins > SPINS) {
                    LockSupport.park(this);
                } else {
                    Thread.onSpinWait();
                }
            }
            if (closed) {
                return;
            }
            seen = generation;
            drain();
            if (busy.decrementAndGet() == 0) {
                LockSupport.unpark(caller);
            }
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
