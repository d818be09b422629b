package io.lightllm.server;

import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.RouterConfig;
import io.lightllm.models.Models;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import java.util.Set;

/** The real serving stack on stories260K (a 260K-parameter Llama, 512-token context) on the JVM device, on a free loopback port. */
public final class StoriesServer {
    public static final String NAME = "stories260K";

    private StoriesServer() {
    }

    public static ModelServer start(ServerConfig server) {
        // 4096 KV slots hold 64 requests of ~60 tokens each at once; 64 rows so the concurrency test runs as one batch
        EngineConfig engine = new EngineConfig(new RouterConfig(4096, 4096, 64, 1024, 6), DType.F32, Set.of(), 2);
        return ModelServer.start(new ServeOptions(SharedData.model(NAME), "jvm", NAME, engine, server, Models.Quantization.NONE, true));
    }
}
