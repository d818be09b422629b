package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.engine.Router.Load;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The admission rule against peaks computed by hand (and by stepping time in the comments). */
class RouterTest {
    private long nextId;

    private Request request(int promptLength, SamplingParams params) {
        return Request.group(nextId++, new int[promptLength], params, 1, params.maxNewTokens()).getFirst();
    }

    private static List<Request> queued(List<Router.Admission> admitted) {
        return admitted.stream().map(Router.Admission::queued).toList();
    }

    private static SamplingParams maxNew(int n) {
        return SamplingParams.greedy(n);
    }

    @Test
    void peakIsTheWorstStepOfTheSortedBatch() {
        // sorted by remaining: (5,8) (10,5) (20,3); i=1: 8+5=13, i=2: 2*5+15=25, i=3: 3*3+35=44.
        // By time: at step 3 all three have grown by 3: 5+10+20+9 = 44; at step 5 only two are left: 15+10 = 25.
        assertEquals(44, Router.peakTokens(List.of(new Load(10, 5), new Load(20, 3), new Load(5, 8))));
        // one long request dominates: (1,100) then (50,1): max(101, 2+51) = 101
        assertEquals(101, Router.peakTokens(List.of(new Load(50, 1), new Load(1, 100))));
        assertEquals(0, Router.peakTokens(List.of()));
    }

    @Test
    void admitsInOrderWhileThePeakFitsAndNeverOvertakes() {
        Router router = new Router(new RouterConfig(100, 1000, 100, 0, 6));
        Request a = request(10, maxNew(20));
        Request b = request(30, maxNew(10));
        Request c = request(40, maxNew(10));
        Request d = request(1, maxNew(1));
        router.enqueue(a);
        assertEquals(List.of(a), queued(router.admit(10)));
        a.addSlots(new int[10]);   // as the prefill does
        a.addToken(0);
        router.enqueue(b);
        router.enqueue(c);
        router.enqueue(d);
        // a: 10 slots, 19 decode steps left; b after its prefill: 30 slots, 9 steps.
        // (10,19) (30,9): max(19+10, 2*9+40) = 58 <= 100: b joins.
        // adding c (40,9): (10,19) (30,9) (40,9): 3*9 + 80 = 107 > 100: c waits, and d behind it too.
        assertEquals(List.of(b), queued(router.admit(10)));
        assertEquals(58, router.committedPeak());
        assertEquals(List.of(c, d), router.waiting());
    }

    @Test
    void batchMaxTokensRunningMaxReqSizeAndRowsCapAPrefill() {
        Router tokens = new Router(new RouterConfig(1000, 50, 100, 0, 6));
        Request a = request(30, maxNew(2)), b = request(30, maxNew(2));
        tokens.enqueue(a);
        tokens.enqueue(b);
        assertEquals(List.of(a), queued(tokens.admit(10)), "30 + 30 prompt tokens exceed batch_max_tokens 50");

        Router sequences = new Router(new RouterConfig(1000, 1000, 2, 0, 6));
        Request pair = request(5, SamplingParams.builder().n(2).build());
        Request single = request(5, maxNew(2));
        sequences.enqueue(single);
        sequences.enqueue(pair);
        assertEquals(List.of(single), queued(sequences.admit(10)), "1 + 2 sequences exceed running_max_req_size 2");

        Router rows = new Router(new RouterConfig(1000, 1000, 100, 0, 6));
        rows.enqueue(request(5, maxNew(2)));
        assertEquals(List.of(), queued(rows.admit(0)));
    }

    @Test
    void siblingsCountTheSharedPromptOnce() {
        Router router = new Router(new RouterConfig(100, 1000, 100, 0, 6));
        // prompt 40, n = 3, max_new 11: (40,10) (0,10) (0,10): 3*10 + 40 = 70 <= 100.
        // (Counting the prompt three times would need 150.)
        Request first = request(40, SamplingParams.builder().maxNewTokens(11).n(3).build());
        router.enqueue(first);
        List<Router.Admission> admitted = router.admit(10);
        assertEquals(List.of(first), queued(admitted));
        assertEquals(first.siblings().subList(1, 3), admitted.getFirst().riders());
        assertEquals(70, router.committedPeak());
        assertEquals(3, router.running().size());
    }

    @Test
    void theOutputCapShortensTheEstimateUnlessEosIsIgnored() {
        Router router = new Router(new RouterConfig(1000, 1000, 100, 8, 6));
        Request mayStop = request(10, maxNew(500));
        Request ignoresEos = request(10, SamplingParams.builder().maxNewTokens(500).ignoreEos(true).build());
        assertEquals(8, router.estimatedMaxNew(mayStop));
        assertEquals(500, router.estimatedMaxNew(ignoresEos));
        for (int i = 0; i < 20; i++) {
            mayStop.addToken(0);
        }
        assertEquals(22, router.estimatedMaxNew(mayStop), "1.1 x 20 generated tokens");
    }

    @Test
    void admissionIsTriedEveryMaxWaitTokensDecodeSteps() {
        Router router = new Router(new RouterConfig(1000, 1000, 100, 0, 3));
        assertEquals(true, router.admissionDue(), "nothing runs");
        router.enqueue(request(4, maxNew(100)));
        router.admit(10);
        for (int step = 0; step < 3; step++) {
            assertEquals(false, router.admissionDue());
            router.decodeStepDone();
        }
        assertEquals(true, router.admissionDue());
    }

    @Test
    void theYoungestRunningRequestPausesFirst() {
        Router router = new Router(new RouterConfig(1000, 1000, 100, 0, 0));
        Request old = request(4, maxNew(10)), young = request(4, maxNew(10));
        router.enqueue(old);
        router.admit(10);
        router.enqueue(young);
        router.admit(10);
        assertEquals(young, router.youngest());
    }
}
