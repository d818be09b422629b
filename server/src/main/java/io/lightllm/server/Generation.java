package io.lightllm.server;

import io.lightllm.engine.FinishReason;
import io.lightllm.engine.SamplingParams;
import io.lightllm.engine.TokenEvent;
import java.util.Map;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One request in the engine, as a handler sees it: a blocking sequence of {@link TokenEvent}s
 * for its n sequences. It holds one of the server's request slots and records the request's
 * metrics. Closing it before the end cancels the engine subscription, which aborts the request
 * and returns its KV slots at the engine's next step; every handler closes it (try-with-resources),
 * so a client that goes away or a handler that fails never leaves a request running.
 */
final class Generation implements AutoCloseable, Flow.Subscriber<TokenEvent> {
    private static final Object END = new Object();

    private final ServerState server;
    private final String endpoint;
    private final int sequences;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final long startNanos = System.nanoTime();
    private volatile Flow.Subscription subscription;
    private long firstTokenNanos;
    private int tokens;
    private int promptTokens;
    private int cachedTokens;
    private long requestId = -1;
    private int finishedSequences;
    private FinishReason outcome;
    private boolean closed;

    private Generation(ServerState server, String endpoint, int sequences) {
        this.server = server;
        this.endpoint = endpoint;
        this.sequences = sequences;
    }

    /** Submits a tokenized prompt; 503 when the server's queue is full, 400 when the engine refuses the request. */
    static Generation start(ServerState server, String endpoint, int[] prompt, SamplingParams params) {
        server.slots().acquire();
        Generation g = new Generation(server, endpoint, params.n());
        Flow.Publisher<TokenEvent> events;
        try {
            events = server.model().engine().submit(prompt, params);
        } catch (IllegalArgumentException e) {
            server.slots().release();
            throw ApiException.invalid(null, e.getMessage());
        } catch (RuntimeException e) {
            server.slots().release();
            throw e;
        }
        server.metrics().promptTokens.inc(prompt.length);
        g.promptTokens = prompt.length;
        events.subscribe(g);
        return g;
    }

    /** The next event, or null once every sequence has ended. */
    TokenEvent next() throws InterruptedException {
        if (finishedSequences == sequences) {
            return null;
        }
        Object o = inbox.take();
        if (o == END) {
            if (finishedSequences < sequences) {
                throw new IllegalStateException("the engine ended the request's stream before all of its sequences finished");
            }
            return null;
        }
        if (o instanceof Throwable t) {
            throw new ApiException(500, "server_error", null, null, "the engine failed the request: " + t.getMessage(), Map.of());
        }
        TokenEvent e = (TokenEvent) o;
        record(e);
        return e;
    }

    private void record(TokenEvent e) {
        long now = System.nanoTime();
        requestId = e.requestId();
        cachedTokens = Math.max(cachedTokens, e.cachedPromptTokens());
        if (e.token() >= 0) {
            if (tokens == 0) {
                firstTokenNanos = now;
                server.metrics().timeToFirstToken.observe((now - startNanos) / 1e9);
            }
            tokens++;
            server.metrics().generationTokens.inc();
        }
        if (e.last()) {
            finishedSequences++;
            if (outcome == null || e.finish() == FinishReason.ERROR) {
                outcome = e.finish();
            }
            if (finishedSequences == sequences) {
                server.metrics().endToEnd.observe((now - startNanos) / 1e9);
                if (tokens > 1) {
                    server.metrics().timePerOutputToken.observe((now - firstTokenNanos) / 1e9 / (tokens - 1));
                }
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        boolean complete = finishedSequences == sequences;
        if (!complete && subscription != null) {
            subscription.cancel();
        }
        String finish = complete ? outcome.apiName() : "abort";
        server.metrics().requests.labelValues(endpoint, finish).inc();
        server.slots().release();
        long end = System.nanoTime();
        // the access log: one line per generation request
        ACCESS.info("request {} {} prompt_tokens={} cached_tokens={} output_tokens={} ttft_ms={} total_ms={} finish={}",
                requestId, endpoint, promptTokens, cachedTokens, tokens,
                tokens > 0 ? String.format("%.1f", (firstTokenNanos - startNanos) / 1e6) : "-", String.format("%.1f", (end - startNanos) / 1e6), finish);
    }

    private static final org.slf4j.Logger ACCESS = org.slf4j.LoggerFactory.getLogger("io.lightllm.access");

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        s.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(TokenEvent item) {
        inbox.add(item);
    }

    @Override
    public void onError(Throwable t) {
        inbox.add(t);
    }

    @Override
    public void onComplete() {
        inbox.add(END);
    }
}
