package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class TokenStreamTest {

    /** Records what it receives; requests nothing by itself. */
    private static final class Recorder implements Flow.Subscriber<TokenEvent> {
        final List<Object> received = new ArrayList<>();
        Flow.Subscription subscription;

        public void onSubscribe(Flow.Subscription s) { subscription = s; }
        public void onNext(TokenEvent e) { received.add(e.token()); }
        public void onError(Throwable t) { received.add(t); }
        public void onComplete() { received.add("complete"); }
    }

    private static TokenEvent token(int id) {
        return new TokenEvent(0, 0, id, null, null, null, null);
    }

    @Test
    void deliversOnlyWhatWasRequestedThenCompletes() {
        TokenStream stream = new TokenStream(() -> { });
        Recorder r = new Recorder();
        stream.emit(token(1));
        stream.subscribe(r);
        stream.emit(token(2));
        stream.emit(token(3));
        stream.complete();
        assertEquals(List.of(), r.received);
        r.subscription.request(2);
        assertEquals(List.of(1, 2), r.received);
        r.subscription.request(5);
        assertEquals(List.of(1, 2, 3, "complete"), r.received);
    }

    @Test
    void cancellingRunsTheAbortOnceAndStopsDelivery() {
        AtomicInteger aborts = new AtomicInteger();
        TokenStream stream = new TokenStream(aborts::incrementAndGet);
        Recorder r = new Recorder();
        stream.subscribe(r);
        r.subscription.request(10);
        stream.emit(token(1));
        r.subscription.cancel();
        r.subscription.cancel();
        stream.emit(token(2));
        stream.complete();
        assertEquals(1, aborts.get());
        assertEquals(List.of(1), r.received);
    }

    @Test
    void aSecondSubscriberAndANonPositiveRequestGetErrors() {
        TokenStream stream = new TokenStream(() -> { });
        Recorder first = new Recorder(), second = new Recorder();
        stream.subscribe(first);
        stream.subscribe(second);
        assertInstanceOf(IllegalStateException.class, second.received.getFirst());
        first.subscription.request(0);
        assertInstanceOf(IllegalArgumentException.class, first.received.getFirst());
        assertTrue(first.received.size() == 1);
    }
}
