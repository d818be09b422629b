package io.lightllm.server.bench;

import java.net.URI;
import java.time.Duration;

/**
 * What a serving benchmark sends, whatever the request rate (the rates are given to {@link ServingBenchmark#run}).
 *
 * @param url            the server's base URL (no trailing path), e.g. http://127.0.0.1:8000
 * @param endpoint       which streaming API to drive
 * @param apiKey         sent as {@code Authorization: Bearer} when non-null
 * @param numPrompts     requests per run
 * @param maxConcurrency requests in flight at most; 0 means no limit
 * @param inputLen       prompt tokens (the fixed length, or the distribution's target mean)
 * @param outputLen      output tokens (likewise)
 * @param dataset        how prompt and output lengths are drawn
 * @param contextLen     the model's context; 0 asks the server ({@code GET /v1/models}, max_model_len)
 * @param seed           seeds the prompts, the lengths and the arrival times
 * @param requestTimeout the longest one request may take before it counts as failed
 * @param prefixLen      {@link Dataset#SHARED_PREFIX}: tokens of each shared system prompt
 * @param numPrefixes    {@link Dataset#SHARED_PREFIX}: how many different system prompts the requests share in turn
 * @param datasetPath    {@link Dataset#SHAREGPT}: the file of conversations
 */
public record ServingBenchConfig(URI url, Endpoint endpoint, String apiKey, int numPrompts, int maxConcurrency,
                                 int inputLen, int outputLen, Dataset dataset, int contextLen, long seed, Duration requestTimeout,
                                 int prefixLen, int numPrefixes, java.nio.file.Path datasetPath) {
    /** Without a shared-prefix workload or a dataset file. */
    public ServingBenchConfig(URI url, Endpoint endpoint, String apiKey, int numPrompts, int maxConcurrency, int inputLen, int outputLen,
                              Dataset dataset, int contextLen, long seed, Duration requestTimeout) {
        this(url, endpoint, apiKey, numPrompts, maxConcurrency, inputLen, outputLen, dataset, contextLen, seed, requestTimeout, 0, 1, null);
    }

    /** The streaming API a benchmark drives. */
    public enum Endpoint {
        /** {@code POST /v1/completions} with {@code stream: true} and {@code stream_options.include_usage}. */
        OPENAI,
        /** LightLLM's {@code POST /generate_stream}. */
        LIGHTLLM;

        public static Endpoint parse(String name) {
            return switch (name) {
                case "openai" -> OPENAI;
                case "lightllm" -> LIGHTLLM;
                default -> throw new IllegalArgumentException("--endpoint must be openai or lightllm (got '" + name + "')");
            };
        }
    }

    /** How request lengths are drawn. */
    public enum Dataset {
        /** Every request has exactly inputLen prompt tokens and outputLen output tokens. */
        FIXED,
        /** Log-normal lengths shaped like ShareGPT's (see {@link LengthSampler}). */
        SHAREGPT_LIKE,
        /**
         * The prefix cache's workload: numPrefixes system prompts of prefixLen tokens, each request
         * one of them (in turn) followed by a question of inputLen tokens; outputs of outputLen.
         */
        SHARED_PREFIX,
        /** Conversations from a file in ShareGPT's format (see {@link ShareGptDataset}); inputLen and outputLen are not used. */
        SHAREGPT;

        public static Dataset parse(String name) {
            return switch (name) {
                case "fixed" -> FIXED;
                case "sharegpt-like" -> SHAREGPT_LIKE;
                case "shared-prefix" -> SHARED_PREFIX;
                case "sharegpt" -> SHAREGPT;
                default -> throw new IllegalArgumentException("--dataset must be fixed, sharegpt-like, shared-prefix or sharegpt (got '" + name + "')");
            };
        }
    }

    public ServingBenchConfig {
        String scheme = url.getScheme();
        if (!"http".equals(scheme) && !"https".equals(scheme) || url.getHost() == null) {
            throw new IllegalArgumentException("--url must be an http(s) URL such as http://127.0.0.1:8000 (got '" + url + "')");
        }
        if (numPrompts < 1) {
            throw new IllegalArgumentException("--num-prompts must be >= 1 (got " + numPrompts + ")");
        }
        if (maxConcurrency < 0) {
            throw new IllegalArgumentException("--max-concurrency must be >= 1 (got " + maxConcurrency + ")");
        }
        if ((dataset == Dataset.SHAREGPT) != (datasetPath != null)) {
            throw new IllegalArgumentException("--dataset sharegpt reads its conversations from --dataset-path FILE, which only it takes");
        }
        if (inputLen < 1 || outputLen < 1) {
            throw new IllegalArgumentException("--input-len and --output-len must be >= 1 (got " + inputLen + ", " + outputLen + ")");
        }
    }

    /** {@code url} plus {@code path}. */
    URI resolve(String path) {
        String base = url.toString();
        return URI.create((base.endsWith("/") ? base.substring(0, base.length() - 1) : base) + path);
    }
}
