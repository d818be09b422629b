package io.lightllm.engine;

/**
 * A snapshot of the inference loop, taken after each step.
 *
 * @param running        sequences holding KV slots
 * @param waiting        sequences queued for admission (new or paused)
 * @param freeSlots      free KV slots
 * @param capacity       KV slots of the pool
 * @param freeRows       free rows of the request table
 * @param rows           rows of the request table
 * @param highWater      the most KV slots in use at once so far
 * @param committedPeak  the highest peak the router admitted against
 * @param pauses         sequences paused because the pool ran short
 * @param prefillSteps   prefill steps run (with chunked prefill: steps that compute prompt tokens, decodes beside them or not)
 * @param decodeSteps    decode steps run (with chunked prefill: steps that decode, prompt tokens beside them or not)
 * @param cachedSlots    KV slots only the prefix cache holds: no running request uses them, and they are
 *                       freed as soon as the pool needs room (so "in use" means capacity - free - cached)
 * @param prefixLookupTokens prompt tokens looked up in the prefix cache
 * @param prefixHitTokens    of those, tokens whose KV was found cached (not prefilled again)
 * @param stepSeconds    where the inference thread's time went so far ({@link StepSeconds})
 */
public record EngineStats(int running, int waiting, int freeSlots, int capacity, int freeRows, int rows, int highWater, long committedPeak, int pauses,
                          long prefillSteps, long decodeSteps, int cachedSlots, long prefixLookupTokens, long prefixHitTokens,
                          StepSeconds stepSeconds) {
    /**
     * Seconds the inference thread spent running steps that computed prompt tokens (prefill; with chunked prefill, any
     * step with a prompt chunk), running decode-only steps (forward pass, sampling and booking the tokens, all waits on
     * the device included), and planning steps and handing their tokens on (scheduling): what a serving run's wall
     * time is made of, the rest being idle.
     */
    public record StepSeconds(double prefill, double decode, double scheduling) {
        public static final StepSeconds NONE = new StepSeconds(0, 0, 0);
    }

    /** KV slots held for running requests (their own and the cached prefixes they use). */
    public int usedSlots() {
        return capacity - freeSlots - cachedSlots;
    }

    /** Nothing runs or waits, and every slot is free or only cached, and every table row is free. */
    public boolean idle() {
        return running == 0 && waiting == 0 && freeSlots + cachedSlots == capacity && freeRows == rows;
    }
}
