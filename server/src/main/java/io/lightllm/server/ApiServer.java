package io.lightllm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.javalin.Javalin;
import io.javalin.config.JavalinConfig;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.json.JsonMapper;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP server: LightLLM's API, OpenAI's API, health checks and metrics over one
 * {@link ServedModel}. Requests run on virtual threads (a streaming request blocks its thread
 * while it waits for tokens). Every failure becomes a JSON error answer: nothing a client sends
 * can stop the server.
 */
public final class ApiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ApiServer.class);
    /** Paths open without the API key, so that orchestrators can probe the server. */
    private static final Set<String> OPEN_PATHS = Set.of("/health", "/liveness", "/readiness");

    private final ServerState state;
    private final Javalin app;
    private final java.util.concurrent.ScheduledExecutorService statsLine = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("lightllm-stats").daemon().factory());
    private double lastPrompt, lastGenerated, lastHits, lastLookups;

    /** Seconds between two stats lines (-Dlightllm.stats.interval.seconds; 0: none). */
    private static final long STATS_SECONDS = Long.getLong("lightllm.stats.interval.seconds", 10);

    private ApiServer(ServerState state) {
        this.state = state;
        this.app = Javalin.create(this::configure);
    }

    /** Starts serving {@code model}; returns once the port is bound. */
    public static ApiServer start(ServedModel model, ServerConfig config) {
        ServerState state = new ServerState(model, config, new RequestSlots(config.maxRequests()), new ServerMetrics(model.engine()),
                System.currentTimeMillis() / 1000);
        ApiServer server = new ApiServer(state);
        server.app.start(config.host(), config.port());
        if (STATS_SECONDS > 0) {
            server.statsLine.scheduleAtFixedRate(server::logStats, STATS_SECONDS, STATS_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
        }
        return server;
    }

    /**
     * The periodic stats line, when something happened since the last one: prompt and output
     * tokens per second, running and waiting sequences, KV use, the prefix cache's hit rate.
     */
    private void logStats() {
        try {
            io.lightllm.engine.EngineStats s = state.model().engine().stats();
            double prompt = state.metrics().promptTokens.get(), generated = state.metrics().generationTokens.get();
            double hits = s.prefixHitTokens(), lookups = s.prefixLookupTokens();
            if (prompt == lastPrompt && generated == lastGenerated && s.running() == 0 && s.waiting() == 0) {
                return;
            }
            LOG.info(String.format("stats: prompt %.1f tok/s, output %.1f tok/s, running %d, waiting %d, KV %d/%d used (%.1f%%) + %d cached, "
                            + "prefix cache hit %.1f%%", (prompt - lastPrompt) / STATS_SECONDS, (generated - lastGenerated) / STATS_SECONDS,
                    s.running(), s.waiting(), s.usedSlots(), s.capacity(), 100.0 * s.usedSlots() / s.capacity(), s.cachedSlots(),
                    lookups == lastLookups ? 0 : 100 * (hits - lastHits) / (lookups - lastLookups)));
            lastPrompt = prompt;
            lastGenerated = generated;
            lastHits = hits;
            lastLookups = lookups;
        } catch (RuntimeException e) {
            LOG.warn("stats line failed: {}", e.toString());
        }
    }

    /** The bound port (the chosen one when the config asked for 0). */
    public int port() {
        return app.port();
    }

    public String url() {
        String host = state.config().host().contains(":") ? "[" + state.config().host() + "]" : state.config().host();
        return "http://" + host + ":" + port();
    }

    /** Connections the kernel queues for the acceptor (see configure). */
    static final int ACCEPT_QUEUE = 4096;

    private void configure(JavalinConfig config) {
        config.startup.showJavalinBanner = false;
        config.concurrency.useVirtualThreads = true;
        config.http.maxRequestSize = state.config().maxBodyBytes();
        // Our own connector only for its accept queue: Jetty's default (0) leaves the JVM's 50, so a
        // burst of a few hundred clients connecting at once (a benchmark at rate inf) had ~30 reset
        // before the acceptor took them; the kernel caps the queue at net.core.somaxconn.
        config.jetty.addConnector((server, http) -> {
            ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
            connector.setHost(state.config().host());
            connector.setPort(state.config().port());
            connector.setAcceptQueueSize(ACCEPT_QUEUE);
            return connector;
        });
        config.jsonMapper(new JacksonMapper());
        StatusHandlers status = new StatusHandlers(state);
        var r = config.routes;
        r.before(this::authorize);
        r.get("/health", status::health);
        r.get("/liveness", status::health);
        r.get("/readiness", status::health);
        r.get("/token_load", status::tokenLoad);
        r.get("/metrics", status::metrics);
        r.post("/generate", new GenerateHandler(state));
        r.post("/generate_stream", new GenerateStreamHandler(state));
        r.get("/v1/models", status::models);
        r.get("/v1/models/{id}", status::model);
        r.get("/version", status::version);
        r.post("/tokenize", status::tokenize);
        r.post("/detokenize", status::detokenize);
        r.post("/v1/completions", new CompletionsHandler(state));
        r.post("/v1/chat/completions", new ChatCompletionsHandler(state));
        r.exception(ApiException.class, (e, ctx) -> fail(ctx, e.status(), e.getMessage(), e.type(), e.param(), e.code(), e));
        r.exception(HttpResponseException.class, (e, ctx) -> fail(ctx, e.getStatus(), javalinMessage(e, ctx), typeOf(e.getStatus()), null, null, null));
        r.exception(Exception.class, (e, ctx) -> {
            LOG.error("{} {} failed", ctx.method(), ctx.path(), e);
            fail(ctx, 500, "internal error: " + e, "server_error", null, null, null);
        });
        r.error(404, ctx -> {
            if (ctx.result() == null) {
                fail(ctx, 404, "no endpoint " + ctx.method() + " " + ctx.path(), "not_found_error", null, null, null);
            }
        });
    }

    private void authorize(Context ctx) {
        String key = state.config().apiKey();
        if (key == null || OPEN_PATHS.contains(ctx.path())) {
            return;
        }
        String given = ctx.header("Authorization");
        byte[] expected = ("Bearer " + key).getBytes(StandardCharsets.UTF_8);
        // constant time, so that the key cannot be guessed byte by byte from response times
        if (given == null || !MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), expected)) {
            throw new ApiException(401, "authentication_error", null, "invalid_api_key",
                    given == null ? "this server needs an API key: send Authorization: Bearer <key>" : "the API key is wrong",
                    java.util.Map.of("WWW-Authenticate", "Bearer"));
        }
    }

    private void fail(Context ctx, int status, String message, String type, String param, String code, ApiException e) {
        state.metrics().rejected.labelValues(Integer.toString(status)).inc();
        if (ctx.res().isCommitted()) {
            return; // a stream already answered 200; its error was sent as an event, if the client is still there
        }
        if (e != null) {
            e.headers().forEach(ctx::header);
        }
        ctx.status(status).json(JsonOut.error(message, type, param, code));
    }

    private static String javalinMessage(HttpResponseException e, Context ctx) {
        return switch (e.getStatus()) {
            case 404 -> "no endpoint " + ctx.method() + " " + ctx.path();
            case 405 -> "method " + ctx.method() + " is not allowed on " + ctx.path();
            case 413 -> "the request body is larger than the server's limit";
            default -> e.getMessage();
        };
    }

    private static String typeOf(int status) {
        return status == 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
    }

    @Override
    public void close() {
        statsLine.shutdownNow();
        app.stop();
    }

    /** Javalin's JSON through the project's Jackson (the response maps are plain maps and lists). */
    private static final class JacksonMapper implements JsonMapper {
        @Override
        public String toJsonString(Object obj, Type type) {
            try {
                return JsonBody.MAPPER.writeValueAsString(obj);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException("cannot write a response as JSON", e);
            }
        }
    }
}
