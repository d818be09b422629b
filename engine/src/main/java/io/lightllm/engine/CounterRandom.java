package io.lightllm.engine;

/**
 * Counter-based random numbers: the uniform number for token k of a sequence depends only on
 * the sequence's seed and k, so a seeded request gives the same output whatever batch it runs
 * in and after a pause (which recomputes its KV but not its random numbers).
 */
final class CounterRandom {
    private CounterRandom() { }

    /** A uniform float in [0, 1) for (seed, counter). */
    static float uniform(long seed, long counter) {
        long bits = mix(seed ^ mix(counter + 0x632BE59BD9B4E019L));
        return (bits >>> 40) * 0x1.0p-24f;
    }

    /** The seed of sequence {@code index} of a prompt submitted with {@code seed} (sequence 0 keeps it). */
    static long sequenceSeed(long seed, int index) {
        return index == 0 ? seed : mix(seed + index * 0x9E3779B97F4A7C15L);
    }

    /** SplitMix64's finalizer: a bijection of longs that scrambles every bit. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
