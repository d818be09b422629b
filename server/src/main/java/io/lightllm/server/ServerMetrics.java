package io.lightllm.server;

import io.lightllm.engine.Engine;
import io.lightllm.engine.EngineStats;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The server's Prometheus metrics, in a registry of its own (so that two servers in one JVM,
 * as in the tests, do not share counts). Latencies are histograms in seconds; the engine's
 * state (queue, batch, KV pool, steps) is read from {@link Engine#stats()} at each scrape.
 */
final class ServerMetrics {
    private static final double[] LATENCY_BUCKETS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

    private final PrometheusRegistry registry = new PrometheusRegistry();

    /** Finished generation requests by endpoint and outcome (stop, length, abort, error). */
    final Counter requests = Counter.builder().name("lightllm_requests").help("generation requests by endpoint and outcome")
            .labelNames("endpoint", "outcome").register(registry);
    /** Requests answered with an error status before reaching the engine, by status. */
    final Counter rejected = Counter.builder().name("lightllm_rejected_requests").help("requests refused with an error status")
            .labelNames("status").register(registry);
    final Counter promptTokens = Counter.builder().name("lightllm_prompt_tokens").help("prompt tokens submitted (prefill)").register(registry);
    final Counter generationTokens = Counter.builder().name("lightllm_generation_tokens").help("tokens generated (decode)").register(registry);
    final Histogram timeToFirstToken = latency("lightllm_time_to_first_token_seconds", "from submission to the first generated token");
    final Histogram timePerOutputToken = latency("lightllm_time_per_output_token_seconds", "mean time between a request's tokens after the first");
    final Histogram endToEnd = latency("lightllm_e2e_request_latency_seconds", "from submission to the last token");

    ServerMetrics(Engine engine) {
        gauge("lightllm_queue_length", "sequences waiting for admission", engine, EngineStats::waiting);
        gauge("lightllm_running_batch_size", "sequences holding KV slots", engine, EngineStats::running);
        gauge("lightllm_kv_used_tokens", "KV pool slots in use by running requests", engine, EngineStats::usedSlots);
        gauge("lightllm_kv_total_tokens", "KV pool slots", engine, EngineStats::capacity);
        gauge("lightllm_kv_usage_ratio", "fraction of the KV pool in use by running requests", engine, s -> s.usedSlots() / (double) s.capacity());
        gauge("lightllm_prefix_cache_tokens", "KV slots only the prefix cache holds (evicted when the pool needs room)", engine,
                EngineStats::cachedSlots);
        gauge("lightllm_prefix_cache_hit_ratio", "prompt tokens found in the prefix cache / prompt tokens looked up", engine,
                s -> s.prefixLookupTokens() == 0 ? 0 : s.prefixHitTokens() / (double) s.prefixLookupTokens());
        CounterWithCallback.builder().name("lightllm_prefix_cache_hit_tokens").help("prompt tokens whose KV came from the prefix cache")
                .callback(cb -> cb.call(engine.stats().prefixHitTokens())).register(registry);
        CounterWithCallback.builder().name("lightllm_prefix_cache_lookup_tokens").help("prompt tokens looked up in the prefix cache")
                .callback(cb -> cb.call(engine.stats().prefixLookupTokens())).register(registry);
        CounterWithCallback.builder().name("lightllm_prefill_steps").help("prefill steps run by the engine")
                .callback(cb -> cb.call(engine.stats().prefillSteps())).register(registry);
        CounterWithCallback.builder().name("lightllm_decode_steps").help("decode steps run by the engine")
                .callback(cb -> cb.call(engine.stats().decodeSteps())).register(registry);
        // where the inference thread's time goes (the rest of a busy server's wall time is waiting for requests)
        CounterWithCallback.builder().name("lightllm_step_seconds").help("seconds the inference thread spent, by phase: prefill "
                        + "(steps with prompt tokens), decode (decode-only steps), scheduling (planning steps, handing tokens on)")
                .labelNames("phase").callback(cb -> {
                    EngineStats.StepSeconds t = engine.stats().stepSeconds();
                    cb.call(t.prefill(), "prefill");
                    cb.call(t.decode(), "decode");
                    cb.call(t.scheduling(), "scheduling");
                }).register(registry);
        if (engine.imageStats() != null) {
            GaugeWithCallback.builder().name("lightllm_image_queue_length").help("prompts waiting for their images to be encoded")
                    .callback(cb -> cb.call(engine.imageStats().pending())).register(registry);
            CounterWithCallback.builder().name("lightllm_images_encoded").help("images the encoder stage encoded")
                    .callback(cb -> cb.call(engine.imageStats().images())).register(registry);
            CounterWithCallback.builder().name("lightllm_image_encoder_batches").help("encoder calls (each the images of the prompts then waiting)")
                    .callback(cb -> cb.call(engine.imageStats().batches())).register(registry);
            CounterWithCallback.builder().name("lightllm_image_encoder_seconds").help("time spent encoding images")
                    .callback(cb -> cb.call(engine.imageStats().seconds())).register(registry);
        }
    }

    private Histogram latency(String name, String help) {
        return Histogram.builder().name(name).help(help).classicOnly().classicUpperBounds(LATENCY_BUCKETS).register(registry);
    }

    private void gauge(String name, String help, Engine engine, java.util.function.ToDoubleFunction<EngineStats> value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.applyAsDouble(engine.stats()))).register(registry);
    }

    /** The text exposition format (version 0.0.4), what Prometheus scrapes. */
    String scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            PrometheusTextFormatWriter.create().write(out, registry.scrape(), io.prometheus.metrics.config.EscapingScheme.UNDERSCORE_ESCAPING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    static String contentType() {
        return PrometheusTextFormatWriter.CONTENT_TYPE;
    }
}
