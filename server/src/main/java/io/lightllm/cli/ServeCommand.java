package io.lightllm.cli;

import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.RouterConfig;
import io.lightllm.models.Models;
import io.lightllm.server.ModelServer;
import io.lightllm.server.ServeOptions;
import io.lightllm.server.ServerConfig;
import io.lightllm.tornado.api.DType;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

/**
 * {@code lightllm serve}: loads a model (with a progress bar), warms it up and serves LightLLM's
 * and OpenAI's HTTP APIs until the process is stopped. Binds 127.0.0.1 unless --host says otherwise.
 */
final class ServeCommand implements Main.Command {
    /** Placeholder pool size for the router limits that derive from it, until the pool is sized from memory. */
    static final int DEFAULT_MAX_TOTAL_TOKENS = 8192;

    @Override
    public String help(String subcommand) {
        return "usage: lightllm serve --model PATH [flags]\n\n" + Main.MODEL_FLAGS + """
                  --served-model-name N    the model name of the API (default: the directory or file name)
                  --host H / --port P      where to listen (default 127.0.0.1:8000; port 0 picks a free one)
                  --api-key K              require "Authorization: Bearer K"
                  --max-body-bytes N       largest request body (default 4194304)
                  --max-requests N         generation requests in progress at once; more get 503 (default 1024)
                  --allowed-local-media-path DIR  a vision model may read file:// images under DIR (default: none)
                  --allow-remote-images    a vision model may fetch http(s) images (default: data: URIs only)
                engine (LightLLM's flags):
                  --max-total-token-num N  KV pool tokens (default: sized from --mem-fraction of the device's free memory)
                  --mem-fraction F         share of memory for weights and KV pool (default 0.9)
                  --batch-max-tokens N     tokens one prefill step computes at most
                  --running-max-req-size N sequences running at once
                  --router-max-new-token-len N  output length assumed for admission (default 1024; 0: max_new_tokens)
                  --router-max-wait-tokens N    decode steps between admissions (default 6)
                  --tokenizer-threads N    (default 2)
                  --disable-prefix-cache   no reuse of cached prompt prefixes
                  --chunked-prefill-size N prefill long prompts in chunks of N tokens beside the running decodes (default 0: off)
                  --visual-batch-size N    images a vision model's encoder stage encodes in one call, across requests (default 16)
                """;
    }

    @Override
    public String summary() {
        return "serve a model over HTTP: --model PATH [--device D] [--tp N] [--host H] [--port P] [--api-key K] [engine flags]";
    }

    @Override
    public int run(Flags flags) throws Exception {
        ServeOptions options = options(flags);
        flags.checkAllRead();
        ModelServer server = ModelServer.start(options);
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "lightllm-shutdown"));
        System.err.println("lightllm: serving " + options.servedName() + " at " + server.url()
                + " (OpenAI API at " + server.url() + "/v1)" + (options.server().apiKey() != null ? ", API key required" : ""));
        new CountDownLatch(1).await(); // serve until the process is stopped (Ctrl-C runs the shutdown hook)
        return 0;
    }

    static ServeOptions options(Flags f) {
        Path model = Path.of(f.required("model"));
        ModelOptions.batchInvariance(f);
        String device = ModelOptions.deviceId(f);
        String name = f.string("served-model-name", null);
        // without --max-total-token-num the pool is sized from memory after loading (--mem-fraction)
        boolean fixedPool = f.has("max-total-token-num");
        int total = f.integer("max-total-token-num", DEFAULT_MAX_TOTAL_TOKENS, 1, Integer.MAX_VALUE);
        double memFraction = f.number("mem-fraction", io.lightllm.engine.KvPoolSizing.DEFAULT_MEM_FRACTION, 0.01, 1);
        RouterConfig defaults = RouterConfig.defaults(total);
        RouterConfig router = new RouterConfig(total,
                f.integer("batch-max-tokens", defaults.batchMaxTokens(), 1, Integer.MAX_VALUE),
                f.integer("running-max-req-size", defaults.runningMaxReqSize(), 1, Integer.MAX_VALUE),
                f.integer("router-max-new-token-len", defaults.routerMaxNewTokenLen(), 0, Integer.MAX_VALUE),
                f.integer("router-max-wait-tokens", defaults.routerMaxWaitTokens(), 0, Integer.MAX_VALUE));
        DType kv = ModelOptions.kvDtype(f);
        EngineConfig engine = new EngineConfig(router, kv, Set.of(), f.integer("tokenizer-threads", 2, 1, 64), !f.bool("disable-prefix-cache"),
                f.integer("chunked-prefill-size", 0, 0, Integer.MAX_VALUE),
                f.integer("visual-batch-size", EngineConfig.DEFAULT_IMAGE_BATCH, 1, 4096));
        ServerConfig server = new ServerConfig(f.string("host", "127.0.0.1"), f.integer("port", 8000, 0, 65535), f.string("api-key", null),
                f.integer("max-body-bytes", ServerConfig.DEFAULT_MAX_BODY_BYTES, 1024, Integer.MAX_VALUE),
                f.integer("max-requests", ServerConfig.DEFAULT_MAX_REQUESTS, 1, Integer.MAX_VALUE),
                new ServerConfig.MediaPolicy(mediaPath(f.string("allowed-local-media-path", null)), f.bool("allow-remote-images")));
        Models.Quantization quant = ModelOptions.quantization(f);
        return new ServeOptions(model, device, ModelOptions.tp(f), name, engine, server, quant, false, fixedPool ? 0 : memFraction);
    }

    /** The --allowed-local-media-path folder, which must exist. */
    private static java.nio.file.Path mediaPath(String dir) {
        if (dir == null) {
            return null;
        }
        java.nio.file.Path p = java.nio.file.Path.of(dir);
        if (!java.nio.file.Files.isDirectory(p)) {
            throw new IllegalArgumentException("--allowed-local-media-path " + dir + " is not a folder");
        }
        return p.toAbsolutePath().normalize();
    }
}
