package io.lightllm.engine;

/**
 * The router's limits (LightLLM's command-line flags of the same names).
 *
 * @param maxTotalTokens       KV slots of the pool: the admission rule's budget
 * @param batchMaxTokens       most tokens one prefill step may compute
 * @param runningMaxReqSize    most sequences running at once
 * @param routerMaxNewTokenLen the output length assumed for a request that may stop early (no
 *                             ignore_eos) and asks for more; 0 assumes its max_new_tokens
 * @param routerMaxWaitTokens  decode steps between attempts to admit waiting requests
 */
public record RouterConfig(int maxTotalTokens, int batchMaxTokens, int runningMaxReqSize, int routerMaxNewTokenLen,
                           int routerMaxWaitTokens) {

    public RouterConfig {
        positive(maxTotalTokens, "max_total_token_num");
        positive(batchMaxTokens, "batch_max_tokens");
        positive(runningMaxReqSize, "running_max_req_size");
        if (routerMaxNewTokenLen < 0) {
            throw new IllegalArgumentException("router_max_new_token_len must be >= 0 (0: no cap), got " + routerMaxNewTokenLen);
        }
        if (routerMaxWaitTokens < 0) {
            throw new IllegalArgumentException("router_max_wait_tokens must be >= 0, got " + routerMaxWaitTokens);
        }
    }

    /** LightLLM's defaults for a pool of {@code maxTotalTokens} slots (router_max_new_token_len 1024, wait 6 steps). */
    public static RouterConfig defaults(int maxTotalTokens) {
        return new RouterConfig(maxTotalTokens, Math.min(maxTotalTokens, 8192), 1000, 1024, 6);
    }

    private static void positive(int v, String name) {
        if (v <= 0) {
            throw new IllegalArgumentException(name + " must be > 0, got " + v);
        }
    }
}
