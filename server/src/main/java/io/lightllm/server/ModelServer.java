package io.lightllm.server;

import io.lightllm.engine.Engine;
import io.lightllm.models.ModelFiles;

/**
 * The whole serving stack for one model: a {@link LocalModel} (files, model, engine, started in
 * that order with a warm-up generation) and the HTTP server over it, closed in reverse. What
 * {@code lightllm serve} runs and what the integration tests start.
 */
public final class ModelServer implements AutoCloseable {
    private final LocalModel local;
    private final ApiServer http;

    private ModelServer(LocalModel local, ApiServer http) {
        this.local = local;
        this.http = http;
    }

    public static ModelServer start(ServeOptions o) {
        checkPortFree(o.server());
        LocalModel local = LocalModel.load(o);
        try {
            ModelServer server = new ModelServer(local, ApiServer.start(local.served(), o.server()));
            if (!o.quiet()) {
                System.err.println(local.summary() + "; listening on " + server.url());
            }
            return server;
        } catch (RuntimeException | Error e) {
            local.close();
            throw e;
        }
    }

    /** A port in use is found before the model loads (minutes for a large one), not after. */
    private static void checkPortFree(ServerConfig c) {
        if (c.port() == 0) {
            return;
        }
        try (java.net.ServerSocket probe = new java.net.ServerSocket()) {
            probe.setReuseAddress(true);
            probe.bind(new java.net.InetSocketAddress(c.host(), c.port()));
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("cannot listen on " + c.host() + ":" + c.port() + ": the port is in use or not allowed ("
                    + e.getMessage() + ")");
        }
    }

    public String url() {
        return http.url();
    }

    public int port() {
        return http.port();
    }

    public Engine engine() {
        return local.engine();
    }

    public ModelFiles files() {
        return local.files();
    }

    /** The model in this JVM, for in-process use beside HTTP. */
    public LocalModel local() {
        return local;
    }

    @Override
    public void close() {
        try {
            http.close();
        } finally {
            local.close();
        }
    }
}
