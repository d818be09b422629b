package io.lightllm.engine;

import io.lightllm.tornado.api.DType;
import java.util.Set;

/**
 * How an engine is set up.
 *
 * @param router           the router's limits; maxTotalTokens is also the KV pool's size in tokens
 * @param kvDtype          the KV pool's element type (F32, F16, or I8 or F8_E4M3 codes with per token-and-head scales)
 * @param eosTokenIds      tokens that end a request unless it ignores eos
 * @param tokenizerThreads threads of the tokenization stage
 * @param prefixCache      reuse the KV of cached prompt prefixes ({@link PrefixCache}; on unless --disable-prefix-cache)
 * @param chunkedPrefill   tokens a step computes at most, prompts prefilled in chunks of that size beside the running
 *                         decodes ({@code --chunked-prefill-size}); 0: whole prompts in prefill steps of their own
 * @param imageBatch       images a vision model's encoder stage encodes in one call at most, across the prompts waiting
 *                         ({@code --visual-batch-size}; LightLLM's {@code --visual_infer_batch_size})
 */
public record EngineConfig(RouterConfig router, DType kvDtype, Set<Integer> eosTokenIds, int tokenizerThreads, boolean prefixCache,
                           int chunkedPrefill, int imageBatch) {
    /** Images the encoder stage takes in one call unless set: 16 images of Llava-7B's tower fill an H200 (1 s a batch, docs/benchmarks.md). */
    public static final int DEFAULT_IMAGE_BATCH = 16;

    public EngineConfig {
        eosTokenIds = Set.copyOf(eosTokenIds);
        if (tokenizerThreads < 1) {
            throw new IllegalArgumentException("tokenizer threads must be >= 1, got " + tokenizerThreads);
        }
        if (chunkedPrefill < 0) {
            throw new IllegalArgumentException("chunked prefill size must be >= 0 (0: off), got " + chunkedPrefill);
        }
        if (imageBatch < 1) {
            throw new IllegalArgumentException("the image encoder's batch must be >= 1, got " + imageBatch);
        }
    }

    public EngineConfig(RouterConfig router, DType kvDtype, Set<Integer> eosTokenIds, int tokenizerThreads, boolean prefixCache, int chunkedPrefill) {
        this(router, kvDtype, eosTokenIds, tokenizerThreads, prefixCache, chunkedPrefill, DEFAULT_IMAGE_BATCH);
    }

    public EngineConfig(RouterConfig router, DType kvDtype, Set<Integer> eosTokenIds, int tokenizerThreads, boolean prefixCache) {
        this(router, kvDtype, eosTokenIds, tokenizerThreads, prefixCache, 0);
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
        return new EngineConfig(r, kvDtype, eosTokenIds, tokenizerThreads, prefixCache, chunkedPrefill, imageBatch);
    }

    public EngineConfig withKvDtype(DType d) {
        return new EngineConfig(router, d, eosTokenIds, tokenizerThreads, prefixCache, chunkedPrefill, imageBatch);
    }

    public EngineConfig withPrefixCache(boolean on) {
        return new EngineConfig(router, kvDtype, eosTokenIds, tokenizerThreads, on, chunkedPrefill, imageBatch);
    }

    public EngineConfig withChunkedPrefill(int tokens) {
        return new EngineConfig(router, kvDtype, eosTokenIds, tokenizerThreads, prefixCache, tokens, imageBatch);
    }

    public EngineConfig withImageBatch(int images) {
        return new EngineConfig(router, kvDtype, eosTokenIds, tokenizerThreads, prefixCache, chunkedPrefill, images);
    }
}
