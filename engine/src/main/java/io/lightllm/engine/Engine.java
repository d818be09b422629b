package io.lightllm.engine;

import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.models.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The serving engine: three stages joined by queues. Tokenization (a thread pool) turns prompts
 * into ids; the {@link InferenceLoop} (one thread, owns the device) admits requests through the
 * {@link Router} and runs prefill and decode steps; {@link Detokenization} (one thread) turns
 * tokens into text and applies stop strings. Each submission streams its {@link TokenEvent}s
 * through a {@link Flow.Publisher}; cancelling the subscription aborts the request.
 *
 * <p>The engine owns the KV pool and the request table; the model stays the caller's.
 */
public final class Engine implements AutoCloseable {
    private final CausalLM model;
    private final EngineConfig config;
    private final Tokenizer tokenizer;
    private final TokenKvPool pool;
    private final RequestTokenTable table;
    private final InferenceLoop loop;
    private final Detokenization detokenization = new Detokenization();
    private final ExecutorService tokenizers;
    private final Thread inferenceThread;
    private final Thread detokenizationThread;
    /** The image encoder's stage, for a model whose prompts hold images; null otherwise. */
    private final ImageEncoding imageEncoding;
    private final Thread imageEncodingThread;
    private final AtomicLong ids = new AtomicLong();
    private final int maxSequence;

    private Engine(CausalLM model, EngineConfig config, Tokenizer tokenizer) {
        this.model = model;
        this.config = config;
        this.tokenizer = tokenizer;
        RouterConfig rc = config.router();
        this.pool = model.newKvPool(rc.maxTotalTokens(), config.kvDtype());
        this.maxSequence = Math.min(model.maxSequenceLength(), rc.maxTotalTokens());
        this.table = new RequestTokenTable(model.device(), Math.min(rc.runningMaxReqSize(), rc.maxTotalTokens()), maxSequence);
        StepScheduler scheduler = new StepScheduler(new Router(rc), pool, table, config.eosTokenIds(),
                config.prefixCache() ? new PrefixCache(pool) : null, config.chunkedPrefill());
        this.loop = new InferenceLoop(model, pool, table, scheduler, new DeviceSampler(model.device(), model.vocabSize(), config.eosTokenIds()),
                detokenization::accept, this::promptsAwaitingImages);
        this.imageEncoding = model.imageEncoder() == null ? null
                : new ImageEncoding(model.imageEncoder(), config.imageBatch(), loop::submit, detokenization::accept);
        this.tokenizers = Executors.newFixedThreadPool(config.tokenizerThreads(), Thread.ofPlatform().name("lightllm-tokenize-", 0).daemon().factory());
        this.inferenceThread = Thread.ofPlatform().name("lightllm-inference").daemon().start(loop);
        this.detokenizationThread = Thread.ofPlatform().name("lightllm-detokenize").daemon().start(detokenization);
        this.imageEncodingThread = imageEncoding == null ? null : Thread.ofPlatform().name("lightllm-visual").daemon().start(imageEncoding);
    }

    /** Prompts in the image encoder's stage, not yet at the inference loop (counted as waiting there). */
    private int promptsAwaitingImages() {
        ImageEncoding stage = imageEncoding;
        return stage == null ? 0 : stage.pending();
    }

    /**
     * Starts the engine's threads. {@code tokenizer} may be null when only token ids are
     * submitted (events then carry no text); the engine does not close it or the model.
     */
    public static Engine start(CausalLM model, EngineConfig config, Tokenizer tokenizer) {
        return new Engine(model, config, tokenizer);
    }

    /**
     * Streams the completion of a text prompt, tokenized on the tokenization stage with the
     * tokenizer's special tokens (BOS); a bad prompt ends the stream with onError.
     */
    public Flow.Publisher<TokenEvent> submit(String prompt, SamplingParams params) {
        if (tokenizer == null) {
            throw new IllegalStateException("this engine has no tokenizer: submit token ids");
        }
        Submission submission = new Submission(ids.getAndIncrement());
        tokenizers.execute(() -> {
            try {
                enqueue(submission, tokenizer.encode(prompt, true), params);
            } catch (RuntimeException e) {
                submission.stream().fail(e);
            }
        });
        return submission.stream();
    }

    /** Streams the completion of a tokenized prompt; a bad request throws IllegalArgumentException here. */
    public Flow.Publisher<TokenEvent> submit(int[] promptIds, SamplingParams params) {
        Submission submission = new Submission(ids.getAndIncrement());
        enqueue(submission, promptIds, params);
        return submission.stream();
    }

    /** Runs a prompt to the end and returns its n sequences. */
    public List<Completion> generate(String prompt, SamplingParams params) {
        return collect(submit(prompt, params), params);
    }

    public List<Completion> generate(int[] promptIds, SamplingParams params) {
        return collect(submit(promptIds, params), params);
    }

    public EngineStats stats() {
        return loop.stats();
    }

    /** The image encoder stage's counters; null for a model whose prompts hold no images. */
    public ImageEncodingStats imageStats() {
        return imageEncoding == null ? null : imageEncoding.stats();
    }

    /**
     * The first published snapshot, from now on, that satisfies {@code condition}: checked on the
     * inference thread as each step ends, so it is the step itself, however late the caller looks.
     */
    public java.util.concurrent.CompletableFuture<EngineStats> whenStats(java.util.function.Predicate<EngineStats> condition) {
        return loop.whenStats(condition);
    }

    /** Waits until nothing runs or waits and the pool is whole (aborts and stop strings free their slots a step later). */
    public EngineStats awaitIdle(long timeoutMillis) throws InterruptedException {
        long end = System.currentTimeMillis() + timeoutMillis;
        while (!loop.stats().idle() && System.currentTimeMillis() < end) {
            Thread.sleep(5);
        }
        return loop.stats();
    }

    /** Token ids the model scores: 0 to this, exclusive. */
    public int vocabSize() {
        return model.vocabSize();
    }

    public EngineConfig config() {
        return config;
    }

    /** Each token's text, decoded once for the first structured-output request. */
    private volatile RegexConstraint.Vocabulary vocabulary;

    /** Compiled expressions with the token sets of their states, kept for the requests that repeat one (a schema per API). */
    private final Map<String, RegexConstraint.Dfa> dfas = Collections.synchronizedMap(new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, RegexConstraint.Dfa> eldest) {
            return size() > 32;
        }
    });

    private RegexConstraint.Dfa dfa(String regex) {
        return dfas.computeIfAbsent(regex, r -> new RegexConstraint.Dfa(r, vocabulary()));
    }

    private RegexConstraint.Vocabulary vocabulary() {
        RegexConstraint.Vocabulary v = vocabulary;
        if (v == null) {
            synchronized (this) {
                if (vocabulary == null) {
                    vocabulary = new RegexConstraint.Vocabulary(tokenizer, model.vocabSize(), config.eosTokenIds());
                }
                v = vocabulary;
            }
        }
        return v;
    }

    private void enqueue(Submission submission, int[] prompt, SamplingParams params) {
        List<Request> group = validated(submission.id(), prompt, params);
        detokenization.register(submission);
        submission.start(group, tokenizer);
        if (imageEncoding != null && imageEncoding.needed(prompt)) {
            imageEncoding.submit(group.getFirst());
        } else {
            loop.submit(group.getFirst());
        }
    }

    private List<Request> validated(long id, int[] prompt, SamplingParams params) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt has no tokens");
        }
        boolean images = false;
        for (int t : prompt) {
            if (model.isPlaceholder(t)) {
                images = true; // an image's placeholder id: its embedding row is the model's to place
            } else if (t < 0 || t >= model.vocabSize()) {
                throw new IllegalArgumentException("prompt token " + t + " is outside the vocabulary [0, " + model.vocabSize() + ")");
            }
        }
        for (int t : params.logitBias().keySet()) {
            if (t >= model.vocabSize()) {
                throw new IllegalArgumentException("logit_bias names token " + t + ", outside the vocabulary [0, " + model.vocabSize() + ")");
            }
        }
        if (images && params.promptLogprobs() >= 0) {
            throw new IllegalArgumentException("prompt_logprobs (and echo with logprobs) are not available for a prompt with images");
        }
        RouterConfig rc = config.router();
        if (prompt.length >= maxSequence) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens; this engine takes at most " + (maxSequence - 1));
        }
        if (config.chunkedPrefill() == 0 && prompt.length > rc.batchMaxTokens()) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens, more than batch_max_tokens " + rc.batchMaxTokens());
        }
        if (params.n() > table.maxRequests()) {
            throw new IllegalArgumentException("n " + params.n() + " exceeds the " + table.maxRequests() + " sequences that may run at once");
        }
        int maxNew = Math.min(params.maxNewTokens(), maxSequence - prompt.length);
        long needed = prompt.length + (long) params.n() * (maxNew - 1);
        if (needed > pool.capacity()) {
            throw new IllegalArgumentException("the request needs up to " + needed + " KV slots (prompt " + prompt.length + " + n " + params.n()
                    + " x (max_new_tokens " + maxNew + " - 1)) but the pool has " + pool.capacity());
        }
        long seed = params.seed() != null ? params.seed() : ThreadLocalRandom.current().nextLong();
        List<Request> group = Request.group(id, prompt, params, seed, maxNew);
        if (params.regex() != null) {
            if (tokenizer == null) {
                throw new IllegalArgumentException("structured output needs the model's tokenizer");
            }
            RegexConstraint.Dfa dfa = dfa(params.regex());
            group.forEach(r -> r.constraint(new RegexConstraint(dfa)));
        }
        return group;
    }

    private static List<Completion> collect(Flow.Publisher<TokenEvent> publisher, SamplingParams params) {
        int n = params.n();
        boolean wantsLogprobs = params.logprobs() >= 0;
        CompletableFuture<List<Completion>> done = new CompletableFuture<>();
        publisher.subscribe(new Flow.Subscriber<>() {
            private final List<List<Integer>> tokens = new ArrayList<>();
            private final List<StringBuilder> texts = new ArrayList<>();
            private final List<List<TokenLogprobs>> logprobs = new ArrayList<>();
            private final Completion[] completions = new Completion[n];
            private final java.util.concurrent.atomic.AtomicReference<List<TokenLogprobs>> promptLogprobs = new java.util.concurrent.atomic.AtomicReference<>();

            @Override
            public void onSubscribe(Flow.Subscription s) {
                for (int i = 0; i < n; i++) {
                    tokens.add(new ArrayList<>());
                    texts.add(new StringBuilder());
                    logprobs.add(new ArrayList<>());
                }
                s.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(TokenEvent e) {
                if (e.promptLogprobs() != null) {
                    promptLogprobs.set(e.promptLogprobs());
                }
                if (e.token() >= 0) {
                    tokens.get(e.sequence()).add(e.token());
                    if (e.logprobs() != null) {
                        logprobs.get(e.sequence()).add(e.logprobs());
                    }
                }
                if (e.text() != null) {
                    texts.get(e.sequence()).append(e.text());
                }
                if (e.last()) {
                    completions[e.sequence()] = new Completion(e.sequence(), tokens.get(e.sequence()).stream().mapToInt(Integer::intValue).toArray(),
                            e.text() == null ? null : texts.get(e.sequence()).toString(),
                            wantsLogprobs ? List.copyOf(logprobs.get(e.sequence())) : null, e.finish(), e.error(),
                            e.sequence() == 0 ? promptLogprobs.get() : null);
                }
            }

            @Override
            public void onError(Throwable t) {
                done.completeExceptionally(t);
            }

            @Override
            public void onComplete() {
                done.complete(List.of(completions));
            }
        });
        try {
            return done.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while generating", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    /** Stops the stages (unfinished requests end with an error) and frees the KV pool and table. */
    @Override
    public void close() {
        tokenizers.shutdownNow();
        if (imageEncoding != null) {
            imageEncoding.stop(); // what it still holds goes to the loop, which ends it
            join(imageEncodingThread);
        }
        loop.stop();
        join(inferenceThread);
        detokenization.stop();
        join(detokenizationThread);
        table.close();
        pool.close();
    }

    private static void join(Thread t) {
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
