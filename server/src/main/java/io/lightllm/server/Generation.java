package io.lightllm.server;

import io.lightllm.engine.FinishReason;
import io.lightllm.engine.SamplingParams;
import io.lightllm.engine.TokenEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One request in the engine, as a handler sees it: a blocking sequence of {@link TokenEvent}s
 * for its sequences. It holds one of the server's request slots per prompt and records the
 * request's metrics. Closing it before the end cancels the engine subscriptions, which aborts
 * the requests and returns their KV slots at the engine's next step; every handler closes it
 * (try-with-resources), so a client that goes away or a handler that fails never leaves a
 * request running.
 *
 * <p>Several prompts (OpenAI completions take a list) are one engine request each, all running at
 * once; their events arrive merged, with prompt {@code p}'s sequence {@code s} numbered
 * {@code p * n + s}, which is OpenAI's choice index.
 */
final class Generation implements AutoCloseable {
    private static final Object END = new Object();

    private final ServerState server;
    private final String endpoint;
    private final int n;
    private final List<Part> parts = new ArrayList<>();
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final long startNanos = System.nanoTime();
    private long firstTokenNanos;
    private int tokens;
    private int finishedSequences;
    private int endedParts;
    private FinishReason outcome;
    private boolean closed;

    private Generation(ServerState server, String endpoint, int n) {
        this.server = server;
        this.endpoint = endpoint;
        this.n = n;
    }

    /** Submits a tokenized prompt; 503 when the server's queue is full, 400 when the engine refuses the request. */
    static Generation start(ServerState server, String endpoint, int[] prompt, SamplingParams params) {
        return start(server, endpoint, List.of(prompt), params);
    }

    /** Submits each prompt as a request of its own; if one is refused, those already submitted are aborted. */
    static Generation start(ServerState server, String endpoint, List<int[]> prompts, SamplingParams params) {
        Generation g = new Generation(server, endpoint, params.n());
        try {
            for (int[] prompt : prompts) {
                g.submit(prompt, params);
            }
        } catch (RuntimeException e) {
            g.close();
            throw e;
        }
        return g;
    }

    private void submit(int[] prompt, SamplingParams params) {
        server.slots().acquire();
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
        Part part = new Part(parts.size() * n, prompt.length);
        parts.add(part);
        events.subscribe(part);
    }

    private int sequences() {
        return parts.size() * n;
    }

    /** The next event, or null once every sequence has ended. */
    TokenEvent next() throws InterruptedException {
        while (finishedSequences < sequences()) {
            Object o = inbox.take();
            if (o == END) {
                if (++endedParts == parts.size() && finishedSequences < sequences()) {
                    throw new IllegalStateException("the engine ended the request's stream before all of its sequences finished");
                }
                continue;
            }
            if (o instanceof Throwable t) {
                throw new ApiException(500, "server_error", null, null, "the engine failed the request: " + t.getMessage(), Map.of());
            }
            TokenEvent e = (TokenEvent) o;
            record(e);
            return e;
        }
        return null;
    }

    /** Prompt tokens over all prompts (each counted once, whatever n is). */
    int promptTokens() {
        return parts.stream().mapToInt(p -> p.promptTokens).sum();
    }

    /** Prompt tokens whose KV came from the prefix cache, over all prompts. */
    int cachedPromptTokens() {
        return parts.stream().mapToInt(p -> p.cachedTokens).sum();
    }

    private void record(TokenEvent e) {
        long now = System.nanoTime();
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
            if (finishedSequences == sequences()) {
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
        boolean complete = !parts.isEmpty() && finishedSequences == sequences();
        if (!complete) {
            for (Part p : parts) {
                p.cancel();
            }
        }
        String finish = complete ? outcome.apiName() : "abort";
        server.metrics().requests.labelValues(endpoint, finish).inc();
        for (int i = 0; i < parts.size(); i++) {
            server.slots().release();
        }
        long end = System.nanoTime();
        // the access log: one line per generation request
        String ids = parts.stream().map(p -> Long.toString(p.requestId)).collect(Collectors.joining(","));
        ACCESS.info("request {} {} prompt_tokens={} cached_tokens={} output_tokens={} ttft_ms={} total_ms={} finish={}",
                ids, endpoint, promptTokens(), cachedPromptTokens(), tokens,
                tokens > 0 ? String.format("%.1f", (firstTokenNanos - startNanos) / 1e6) : "-", String.format("%.1f", (end - startNanos) / 1e6), finish);
    }

    private static final org.slf4j.Logger ACCESS = org.slf4j.LoggerFactory.getLogger("io.lightllm.access");

    /** One prompt's engine request: its events go to the shared inbox, renumbered from {@code firstSequence}. */
    private final class Part implements Flow.Subscriber<TokenEvent> {
        final int firstSequence;
        final int promptTokens;
        volatile long requestId = -1;
        volatile int cachedTokens;
        private volatile Flow.Subscription subscription;
        private volatile boolean cancelled;

        Part(int firstSequence, int promptTokens) {
            this.firstSequence = firstSequence;
            this.promptTokens = promptTokens;
        }

        void cancel() {
            cancelled = true;
            Flow.Subscription s = subscription;
            if (s != null) {
                s.cancel();
            }
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            if (cancelled) {
                s.cancel();
                return;
            }
            s.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(TokenEvent e) {
            requestId = e.requestId();
            cachedTokens = Math.max(cachedTokens, e.cachedPromptTokens());
            inbox.add(firstSequence == 0 ? e : e.withSequence(firstSequence + e.sequence()));
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
}
