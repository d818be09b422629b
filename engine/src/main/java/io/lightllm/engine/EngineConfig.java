package io.lightllm.engine;

import io.lightllm.tornado.api.DType;
import java.util.Set;

/**
 * How an engine is set up.
 *
 * @param router           the router's limits; maxTotalTokens is also the KV pool's size in tokens
 * @param kvDtype          the KV pool's element type (F32, F16, or I8 with per-token scales)
 * @param eosTokenIds      tokens that end a request unless it ignores eos
 * @param tokenizerThreads threads of the tokenization stage
 * @param prefixCache      reuse the KV of cached prompt prefixes ({@link PrefixCache}; on unless --disable-prefix-cache)
 */
public record EngineConfig(RouterConfig router, DType kvDtype, Set<Integer> eosTokenIds, int tokenizerThreads, boolean prefixCache) {

    public EngineConfig {
        eosTokenIds = Set.copyOf(eosTokenIds);
        if (tokenizerThreads < 1) {
            throw new IllegalArgumentException("tokenizer threads must be >= 1, got " + tokenizerThreads);
        }
    }

    /** A configuration with the prefix cache on. */
    public EngineConfig(RouterConfig router, DType kvDtype, Set<Integer> eosTokenIds, int tokenizerThreads) {
        this(router, kvDtype, eosTokenIds, tokenizerThreads, true);
    }

    /** LightLLM's router defaults for a pool of {@code maxTotalTokens}, F32 KV, two tokenizer threads. */
    public static EngineConfig of(int maxTotalTokens, Set<Integer> eosTokenIds) {
        return new EngineConfig(RouterConfig.defaults(maxTotalTokens), DType.F32, eosTokenIds, 2);
    }

    public EngineConfig withRouter(RouterConfig r) {
        return new EngineConfig(r, kvDtype, eosTokenIds, tokenizerThreads, prefixCache);
    }

    public EngineConfig withKvDtype(DType d) {
        return new EngineConfig(router, d, eosTokenIds, tokenizerThreads, prefixCache);
    }

    public EngineConfig withPrefixCache(boolean on) {
        return new EngineConfig(router, kvDtype, eosTokenIds, tokenizerThreads, on);
    }
}
