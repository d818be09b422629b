package io.lightllm.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;

/**
 * Decides which waiting requests join the running batch, with LightLLM's rule: a request joins
 * only if the batch's future peak of KV use still fits the pool, so running requests never
 * starve for slots while the estimates hold.
 *
 * <p>The peak: give each sequence i its KV slots {@code used_i} after the next step and the
 * decode steps {@code remaining_i} it may still take (each adds one slot). Sorted by remaining
 * descending, at the step where sequence i finishes, sequences 1..i are all still there and have
 * each grown by {@code remaining_i}, and the others have finished and freed theirs, so the use is
 * {@code remaining_i * i + sum_{j<=i} used_j}. The peak is the maximum over i; with exact
 * remaining lengths it is exact. A prompt's slots shared by its n sequences count once.
 *
 * <p>When a request may stop early its remaining length is an estimate: {@code
 * min(max_new_tokens, max(1.1 * generated, routerMaxNewTokenLen))}. A request that outgrows it
 * can find the pool short; the inference loop then pauses the {@link #youngest()} running
 * requests and {@link #requeuePaused re-queues} them ahead of new ones.
 *
 * <p>Waiting requests are tried in order and admission stops at the first that does not fit
 * (no overtaking). While requests run, admission is tried every {@code routerMaxWaitTokens}
 * decode steps. Used only by the inference loop's thread.
 */
public final class Router {
    /**
     * One sequence in the estimate: slots held after the next step, decode steps still possible
     * (each adds a slot), and the steps before the first of them, at the earliest and the latest (a
     * prompt still being prefilled in chunks holds its slots and grows only once its last chunk is
     * done, which depends on how many prompt tokens the coming steps compute).
     */
    record Load(long used, long remaining, long earliest, long latest) {
        Load(long used, long remaining) {
            this(used, remaining, 0, 0);
        }

        boolean delayed() {
            return latest > 0;
        }
    }

    /**
     * What the scheduler tells admission about the prompts it holds: the tokens of a request found
     * in the prefix cache, the cached tokens running requests share (counted once), and with
     * chunked prefill the steps before a running request decodes, and the prompt tokens per step.
     */
    record Context(java.util.function.ToIntFunction<Request> cachedPrefix, long lockedTokens,
                   java.util.function.ToLongFunction<Request> promptTokensAhead, long queuedPrefillTokens, int maxPrefillPerStep,
                   int minPrefillPerStep) {
        static final Context NONE = new Context(r -> 0, 0, r -> 0, 0, 0, 0);

        /** Steps until the prompt whose chunks end {@code tokensAhead} prompt tokens from now is prefilled, at the earliest. */
        long earliest(long tokensAhead) {
            return maxPrefillPerStep == 0 || tokensAhead == 0 ? 0 : (tokensAhead + maxPrefillPerStep - 1) / maxPrefillPerStep;
        }

        /** ... and at the latest. */
        long latest(long tokensAhead) {
            return minPrefillPerStep == 0 || tokensAhead == 0 ? 0 : (tokensAhead + minPrefillPerStep - 1) / minPrefillPerStep;
        }
    }

    /** A queued request to prefill, and the other fresh sequences of its prompt that share its slots. */
    public record Admission(Request queued, List<Request> riders) { }

    private final RouterConfig config;
    private final Deque<Request> waiting = new ArrayDeque<>();
    private final List<Request> running = new ArrayList<>();
    private int decodeStepsSinceAdmission;
    private long admissions;
    private long committedPeak;

    public Router(RouterConfig config) {
        this.config = config;
    }

    public RouterConfig config() {
        return config;
    }

    /** Queues a new prompt: its first sequence; the others ({@link Request#siblings()}) join with it. */
    public void enqueue(Request first) {
        waiting.addLast(first);
    }

    /** Queues a paused sequence ahead of new prompts. */
    public void requeuePaused(Request r) {
        waiting.addFirst(r);
    }

    /** Whether admission is due: nothing runs, or routerMaxWaitTokens decode steps have passed. */
    public boolean admissionDue() {
        return running.isEmpty() || decodeStepsSinceAdmission >= config.routerMaxWaitTokens();
    }

    public void decodeStepDone() {
        decodeStepsSinceAdmission++;
    }

    /**
     * Takes the waiting prompts that fit, in order, and counts their sequences as running.
     */
    public List<Admission> admit(int freeRows) {
        return admit(freeRows, Context.NONE);
    }

    /** {@link #admit(int)} with what the scheduler's prefix cache and chunked prefill hold. */
    public List<Admission> admit(int freeRows, Context context) {
        List<Admission> prefill = new ArrayList<>();
        List<Load> loads = loads(running, context);
        int sequences = running.size();
        long prefillTokens = 0;
        long shared = context.lockedTokens();
        long queued = context.queuedPrefillTokens();
        while (!waiting.isEmpty()) {
            Request next = waiting.peekFirst();
            List<Request> group = withRiders(next);
            int cached = context.cachedPrefix().applyAsInt(next);
            int tokens = next.length() - cached;

            // with chunked prefill a prompt is not limited by batch_max_tokens: its chunks are
            if ((context.maxPrefillPerStep() == 0 && prefillTokens + tokens > config.batchMaxTokens())
                    || sequences + group.size() > config.runningMaxReqSize()
                    || group.size() > freeRows) {
                break;
            }
            List<Load> candidate = new ArrayList<>(loads);
            for (Request r : group) {
                candidate.add(new Load(r == next ? tokens : 0, remainingAfterPrefill(r), context.earliest(queued + tokens),
                        context.latest(queued + tokens)));
            }
            // a newly matched prefix may be one no running request locks yet: count it (at worst twice)
            long peak = peakTokens(candidate) + shared + cached;
            if (peak > config.maxTotalTokens()) {
                break;
            }
            shared += cached;
            queued += tokens;
            waiting.pollFirst();
            loads = candidate;
            committedPeak = Math.max(committedPeak, peak);
            sequences += group.size();
            freeRows -= group.size();
            prefillTokens += tokens;
            for (Request r : group) {
                r.admitted(admissions++);
                running.add(r);
            }
            prefill.add(new Admission(next, List.copyOf(group.subList(1, group.size()))));
        }
        if (!prefill.isEmpty()) {
            decodeStepsSinceAdmission = 0;
        }
        return prefill;
    }

    /** The other fresh sequences of {@code queued}'s prompt, admitted and prefilled with it. */
    static List<Request> riders(Request queued) {
        List<Request> out = new ArrayList<>();
        for (Request s : queued.siblings()) {
            if (s != queued && s.status() == RequestStatus.WAITING && s.generatedCount() == 0) {
                out.add(s);
            }
        }
        return out;
    }

    private static List<Request> withRiders(Request queued) {
        List<Request> group = new ArrayList<>();
        group.add(queued);
        group.addAll(riders(queued));
        return group;
    }

    /** Takes a request out of the running set (finished or paused). */
    public void leave(Request r) {
        if (!running.remove(r)) {
            throw new IllegalStateException(r + " is not running");
        }
    }

    /** Takes a request out of the waiting queue (aborted before it ran). */
    public boolean removeWaiting(Request r) {
        return waiting.remove(r);
    }

    /** The running request admitted last: the first to pause. */
    public Request youngest() {
        return running.stream().max(Comparator.comparingLong(Request::admission)).orElseThrow();
    }

    public List<Request> running() {
        return List.copyOf(running);
    }

    public List<Request> waiting() {
        return List.copyOf(waiting);
    }

    public boolean idle() {
        return running.isEmpty() && waiting.isEmpty();
    }

    /** The highest peak the router has committed to when admitting: with exact estimates, KV use never exceeds it. */
    public long committedPeak() {
        return committedPeak;
    }

    /** The estimated peak of the running set as it is now. */
    public long runningPeak() {
        return peakTokens(loads(running, Context.NONE));
    }

    /** The output length the router assumes for r now. */
    int estimatedMaxNew(Request r) {
        int max = r.maxNewTokens();
        if (r.params().ignoreEos() || config.routerMaxNewTokenLen() == 0) {
            return max;
        }
        return Math.min(max, Math.max((int) (1.1 * r.generatedCount()), config.routerMaxNewTokenLen()));
    }

    /** Decode steps a waiting request may take after its prefill (which yields one token). */
    private long remainingAfterPrefill(Request r) {
        return Math.max(0, estimatedMaxNew(r) - r.generatedCount() - 1);
    }

    /**
     * A running request with g tokens holds the KV of all but its last token and may take
     * {@code estimate - g} more decode steps. Slots shared by sibling sequences are counted once,
     * with the sibling that may run longest (it is the last to free them).
     */
    private List<Load> loads(List<Request> requests, Context context) {
        List<Load> out = new ArrayList<>(requests.size());
        for (Request r : requests) {
            long ahead = context.promptTokensAhead().applyAsLong(r);
            // a prompt still in chunks yields its first token without a new slot, then decodes
            long remaining = Math.max(0, estimatedMaxNew(r) - r.generatedCount() - (ahead > 0 ? 1 : 0));
            long used = r.kvLength() - r.cachedPrefix(); // the cached part is counted once, with the cache's locked tokens
            if (r.sharedPrefix() > 0 && !ownsSharedPrefix(r, requests)) {
                used -= r.sharedPrefix();
            }
            out.add(new Load(used, remaining, context.earliest(ahead), context.latest(ahead)));
        }
        return out;
    }

    private boolean ownsSharedPrefix(Request r, List<Request> requests) {
        long mine = estimatedMaxNew(r) - r.generatedCount();
        for (Request s : r.siblings()) {
            if (s == r || s.sharedPrefix() == 0 || !requests.contains(s)) {
                continue;
            }
            long theirs = estimatedMaxNew(s) - s.generatedCount();
            if (theirs > mine || (theirs == mine && s.sequenceIndex() < r.sequenceIndex())) {
                return false;
            }
        }
        return true;
    }

    /** max over i of (remaining_i * i + sum_{j<=i} used_j), sequences sorted by remaining descending (i from 1). */
    static long peakTokens(List<Load> loads) {
        if (loads.stream().anyMatch(Load::delayed)) {
            return peakWithDelays(loads);
        }
        Load[] sorted = loads.toArray(Load[]::new);
        Arrays.sort(sorted, Comparator.comparingLong(Load::remaining).reversed());
        long cumulative = 0, peak = 0;
        for (int i = 0; i < sorted.length; i++) {
            cumulative += sorted[i].used();
            peak = Math.max(peak, sorted[i].remaining() * (i + 1) + cumulative);
        }
        return peak;
    }

    /**
     * The peak when some sequences start growing later, bounding each by growth from its earliest
     * start and presence until its latest end (the real one lies between). Use only rises until a
     * sequence may finish, so the peak is the most of the uses at those steps, each the sum over
     * the sequences that may still be there of used + the steps each may have grown. O(n^2); only
     * chunked prefill asks for it.
     */
    private static long peakWithDelays(List<Load> loads) {
        long peak = loads.stream().mapToLong(Load::used).sum();
        for (Load at : loads) {
            long t = at.latest() + at.remaining();
            long use = 0;
            for (Load l : loads) {
                if (l.latest() + l.remaining() >= t) {
                    use += l.used() + Math.min(l.remaining(), Math.max(0, t - l.earliest()));
                }
            }
            peak = Math.max(peak, use);
        }
        return peak;
    }
}
