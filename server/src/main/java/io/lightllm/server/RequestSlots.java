package io.lightllm.server;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The server's queue limit: how many generation requests may be in the engine (running or
 * waiting) at once. One more gets 503 with {@code Retry-After}, so that a flood of requests
 * cannot grow the engine's queue without bound.
 */
final class RequestSlots {
    private final int limit;
    private final AtomicInteger taken = new AtomicInteger();

    RequestSlots(int limit) {
        this.limit = limit;
    }

    /**
     * Takes a slot or throws 503. A compare-and-set rather than increment-then-undo, so that a refused
     * request never counts, even for a moment, against the limit of one arriving beside it: a 503 means
     * exactly that {@code limit} requests were in progress.
     */
    void acquire() {
        while (true) {
            int now = taken.get();
            if (now >= limit) {
                throw new ApiException(503, "server_overloaded", null, "queue_full",
                        "the server has " + limit + " requests in progress, its limit; retry later", Map.of("Retry-After", "1"));
            }
            if (taken.compareAndSet(now, now + 1)) {
                return;
            }
        }
    }

    void release() {
        taken.decrementAndGet();
    }

    int inProgress() {
        return taken.get();
    }
}
