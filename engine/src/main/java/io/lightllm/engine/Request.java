package io.lightllm.engine;

import java.util.List;

/**
 * One sequence being generated: its prompt, the tokens generated so far, the KV slots and
 * request-table row it holds while running, and how it ended. A prompt with {@code n > 1}
 * becomes n sibling requests that share the prompt's KV slots (each holds a reference).
 *
 * <p>Owned by the inference loop's thread; only {@link #requestFinish} may be called from
 * other threads.
 */
public final class Request {
    private final long id;
    private final int sequenceIndex;
    private final int[] prompt;
    private final SamplingParams params;
    private final long seed;
    private final int maxNewTokens;
    private final IntSequence generated;
    private int[] promptDistinct;
    private final IntSequence slots;
    private List<Request> siblings = List.of();
    private int sharedPrefix;
    private PrefixCache.Match cacheLock = PrefixCache.Match.NONE;
    private RegexConstraint constraint;
    private int cachedPromptTokens = -1;
    /** Entry i: the log-probability of prompt token i + 1, filled as the prompt's chunks are computed. */
    private final List<TokenLogprobs> promptLogprobs = new java.util.ArrayList<>();
    private int row = -1;
    private long admission = -1;
    private int pauses;
    private RequestStatus status = RequestStatus.WAITING;
    private FinishReason finishReason;
    private String error;
    private volatile FinishReason requestedFinish;

    /**
     * @param maxNewTokens the params' limit, already cut to what the model's longest sequence leaves
     */
    Request(long id, int sequenceIndex, int[] prompt, SamplingParams params, long seed, int maxNewTokens) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt has no tokens");
        }
        this.id = id;
        this.sequenceIndex = sequenceIndex;
        this.prompt = prompt.clone();
        this.params = params;
        this.seed = seed;
        this.maxNewTokens = maxNewTokens;
        this.generated = new IntSequence(Math.min(maxNewTokens, 256));
        this.slots = new IntSequence(prompt.length + Math.min(maxNewTokens, 256));
    }

    /**
     * The n sequences of one prompt (n from the params), sharing one list of siblings. Sequence
     * i draws its random numbers from {@code seed} mixed with i (sequence 0 uses seed itself).
     */
    static List<Request> group(long id, int[] prompt, SamplingParams params, long seed, int maxNewTokens) {
        java.util.ArrayList<Request> group = new java.util.ArrayList<>();
        for (int i = 0; i < params.n(); i++) {
            group.add(new Request(id, i, prompt, params, CounterRandom.sequenceSeed(seed, i), maxNewTokens));
        }
        List<Request> siblings = List.copyOf(group);
        for (Request r : siblings) {
            r.siblings = siblings;
        }
        return siblings;
    }

    public long id() { return id; }

    /** Which of the prompt's n sequences this is (0 for n = 1). */
    public int sequenceIndex() { return sequenceIndex; }

    public int promptLength() { return prompt.length; }

    public int[] prompt() { return prompt.clone(); }

    public SamplingParams params() { return params; }

    /** The seed of this sequence's random stream. */
    public long seed() { return seed; }

    public int maxNewTokens() { return maxNewTokens; }

    public int generatedCount() { return generated.size(); }

    public int[] generated() { return generated.toArray(); }

    public int generatedAt(int i) { return generated.get(i); }

    /** Tokens in the sequence: prompt and output. */
    public int length() { return prompt.length + generated.size(); }

    /** Token at position p of the sequence (prompt, then output). */
    public int tokenAt(int p) {
        return p < prompt.length ? prompt[p] : generated.get(p - prompt.length);
    }

    public RequestStatus status() { return status; }

    public FinishReason finishReason() { return finishReason; }

    /** The failure's message, for {@link FinishReason#ERROR}. */
    public String error() { return error; }

    public int pauses() { return pauses; }

    /** Asks the inference loop to end this request at its next step boundary (thread-safe). */
    public void requestFinish(FinishReason reason) {
        if (requestedFinish == null) {
            requestedFinish = reason;
        }
    }

    FinishReason requestedFinish() { return requestedFinish; }

    // ---- KV bookkeeping, used by the inference loop and the router

    int row() { return row; }

    void row(int r) { row = r; }

    int kvLength() { return slots.size(); }

    int[] slots() { return slots.toArray(); }

    int[] slotRange(int from, int to) { return slots.range(from, to); }

    void addSlots(int[] s) { slots.addAll(s); }

    /** Leading slots held together with running siblings (counted once by the router). */
    int sharedPrefix() { return sharedPrefix; }

    List<Request> siblings() { return siblings; }

    void siblings(List<Request> group) { siblings = group; }

    void shareSlots(int[] prefix) {
        if (slots.size() != 0) {
            throw new IllegalStateException("request " + id + " already holds slots");
        }
        slots.addAll(prefix);
        sharedPrefix = prefix.length;
    }

    /** The prefix cache's nodes this request locks: its cached prefix, then its whole prompt once prefilled. */
    PrefixCache.Match cacheLock() { return cacheLock; }

    /** Leading slots counted with the prefix cache's locked tokens rather than as this request's own. */
    int cachedPrefix() { return cacheLock.length(); }

    /** Starts the KV from a cached prefix: a reference to each of its slots (taken by the caller). */
    void useCached(PrefixCache.Match m) {
        if (slots.size() != 0) {
            throw new IllegalStateException("request " + id + " already holds slots");
        }
        slots.addAll(m.slots());
        cacheLock = m;
    }

    /** Records, at the first prefill only, how many prompt tokens came from the cache. */
    void prefilled(int cached) {
        if (cachedPromptTokens < 0) {
            cachedPromptTokens = cached;
        }
    }

    void cacheLock(PrefixCache.Match m) {
        cacheLock = m;
    }

    /** Replaces the leading slots with {@code prefix} (the caller moved the references). */
    void replaceSlots(int[] prefix) {
        int[] rest = slots.range(prefix.length, slots.size());
        slots.clear();
        slots.addAll(prefix);
        slots.addAll(rest);
    }

    /** Prompt tokens whose KV came from the prefix cache at the first prefill (usage's cached_tokens). */
    public int cachedPromptTokens() { return Math.max(0, cachedPromptTokens); }

    /** Whether this request's prompt tokens are scored: asked for, and sequence 0 (its siblings share the prompt). */
    boolean scoresPrompt() { return params.promptLogprobs() >= 0 && sequenceIndex == 0; }

    /** Prompt positions scored so far: position q scores prompt token q + 1. */
    int scoredPositions() { return promptLogprobs.size(); }

    void addPromptLogprobs(List<TokenLogprobs> scores) { promptLogprobs.addAll(scores); }

    /** The prompt's log-probabilities (entry i: token i + 1) when asked for, else null. */
    public List<TokenLogprobs> promptLogprobs() { return scoresPrompt() ? List.copyOf(promptLogprobs) : null; }

    /** The first {@code n} tokens of the sequence. */
    int[] tokens(int n) {
        int[] out = new int[n];
        for (int p = 0; p < n; p++) {
            out[p] = tokenAt(p);
        }
        return out;
    }

    /** Admission order among running requests: the youngest has the largest. */
    long admission() { return admission; }

    void admitted(long order) {
        admission = order;
        status = RequestStatus.RUNNING;
    }

    /** The prompt's distinct tokens below {@code vocab} (an image's placeholder ids are no tokens), ascending; made once. */
    int[] promptDistinct(int vocab) {
        if (promptDistinct == null) {
            promptDistinct = java.util.Arrays.stream(prompt).filter(t -> t < vocab).sorted().distinct().toArray();
        }
        return promptDistinct;
    }

    void addToken(int token) {
        generated.add(token);
        if (constraint != null) {
            constraint.advance(token);
        }
    }

    /** The structured-output constraint of this sequence, or null. */
    RegexConstraint constraint() { return constraint; }

    void constraint(RegexConstraint c) { constraint = c; }

    /** Drops the KV bookkeeping (the caller has freed the slots and the row) and waits again. */
    void paused() {
        slots.clear();
        sharedPrefix = 0;
        cacheLock = PrefixCache.Match.NONE;
        row = -1;
        pauses++;
        status = RequestStatus.WAITING;
    }

    void finished(FinishReason reason, String message) {
        slots.clear();
        sharedPrefix = 0;
        cacheLock = PrefixCache.Match.NONE;
        row = -1;
        status = RequestStatus.FINISHED;
        finishReason = reason;
        error = message;
    }

    @Override
    public String toString() {
        return "Request[" + id + (siblings.size() > 1 ? "." + sequenceIndex : "") + " prompt=" + prompt.length
                + " out=" + generated.size() + "/" + maxNewTokens + " " + status + (finishReason != null ? " " + finishReason : "") + "]";
    }
}
