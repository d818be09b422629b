package io.lightllm.engine;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The publisher of one submission's events, for a single subscriber. Events are buffered
 * without bound (the engine never waits for a slow client) and delivered as the subscriber
 * requests them; cancelling the subscription runs {@code onCancel} (which aborts the request).
 */
final class TokenStream implements Flow.Publisher<TokenEvent> {
    private final Runnable onCancel;
    private final ConcurrentLinkedQueue<TokenEvent> buffer = new ConcurrentLinkedQueue<>();
    private final AtomicLong demand = new AtomicLong();
    private final AtomicInteger drains = new AtomicInteger();
    private final AtomicBoolean subscribed = new AtomicBoolean();
    private volatile Flow.Subscriber<? super TokenEvent> subscriber;
    private volatile boolean completed;
    private volatile Throwable failure;
    private volatile boolean cancelled;
    private boolean terminated;

    TokenStream(Runnable onCancel) {
        this.onCancel = onCancel;
    }

    @Override
    public void subscribe(Flow.Subscriber<? super TokenEvent> s) {
        if (!subscribed.compareAndSet(false, true)) {
            s.onSubscribe(new Flow.Subscription() {
                public void request(long n) { }
                public void cancel() { }
            });
            s.onError(new IllegalStateException("a request's token stream takes one subscriber"));
            return;
        }
        subscriber = s;
        s.onSubscribe(new Flow.Subscription() {
            @Override
            public void request(long n) {
                if (n <= 0) {
                    failure = new IllegalArgumentException("Flow rule 3.9: request(" + n + ") must ask for a positive number");
                    cancel();
                } else {
                    demand.getAndAccumulate(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
                }
                drain();
            }

            @Override
            public void cancel() {
                if (!cancelled) {
                    cancelled = true;
                    onCancel.run();
                }
            }
        });
        drain();
    }

    void emit(TokenEvent event) {
        buffer.add(event);
        drain();
    }

    void complete() {
        completed = true;
        drain();
    }

    void fail(Throwable t) {
        failure = t;
        completed = true;
        drain();
    }

    /** Delivers what is due; one thread at a time, and again if more arrived meanwhile. */
    private void drain() {
        if (drains.getAndIncrement() != 0) {
            return;
        }
        do {
            Flow.Subscriber<? super TokenEvent> s = subscriber;
            if (s != null && !terminated) {
                deliver(s);
            }
        } while (drains.decrementAndGet() != 0);
    }

    private void deliver(Flow.Subscriber<? super TokenEvent> s) {
        if (cancelled && failure == null) {
            buffer.clear();
            terminated = true;
            return;
        }
        while (failure == null && demand.get() > 0 && !buffer.isEmpty()) {
            demand.decrementAndGet();
            s.onNext(buffer.poll());
        }
        if (failure != null) {
            terminated = true;
            buffer.clear();
            s.onError(failure);
        } else if (completed && buffer.isEmpty()) {
            terminated = true;
            s.onComplete();
        }
    }
}
