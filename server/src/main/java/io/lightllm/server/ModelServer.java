package io.lightllm.server;

import io.lightllm.engine.Engine;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.KvPoolSizing;
import io.lightllm.tornado.api.DType;
import io.lightllm.engine.RouterConfig;
import io.lightllm.engine.SamplingParams;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.models.tokenizer.Tokenizer;
import io.lightllm.tornado.runtime.Device;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The whole serving stack for one model: its files, the model on the device, the engine and the
 * HTTP server, started in that order (with a warm-up generation before the port opens) and
 * closed in reverse. What {@code lightllm serve} runs and what the integration tests start.
 */
public final class ModelServer implements AutoCloseable {
    private final ModelFiles files;
    private final CausalLM model;
    private final Engine engine;
    private final ApiServer http;

    private ModelServer(ModelFiles files, CausalLM model, Engine engine, ApiServer http) {
        this.files = files;
        this.model = model;
        this.engine = engine;
        this.http = http;
    }

    /**
     * The router limits, with the pool sized from memory when asked: the fraction of what the
     * weights leave, never more than every running request at full length could use.
     */
    private static RouterConfig router(ServeOptions o, CausalLM model, DType kvDtype) {
        RouterConfig r = o.engine().router();
        if (o.memFraction() <= 0) {
            return r;
        }
        int fromMemory = KvPoolSizing.maxTotalTokens(model, kvDtype, o.memFraction(), model.weightBytes());
        int total = (int) Math.min(fromMemory, (long) model.maxSequenceLength() * r.runningMaxReqSize());
        return new RouterConfig(total, Math.min(r.batchMaxTokens(), total), r.runningMaxReqSize(), r.routerMaxNewTokenLen(),
                r.routerMaxWaitTokens());
    }

    public static ModelServer start(ServeOptions o) {
        checkPortFree(o.server());
        List<Device> devices = RankDevices.resolve(o.device(), o.tp());
        ModelFiles files = ModelFiles.open(o.model(), new LoadOptions(o.quiet(), false));
        CausalLM model = null;
        Engine engine = null;
        try {
            model = Models.load(files, devices, o.quantization(), o.quiet());
            Set<Integer> stopIds = Arrays.stream(files.stopTokenIds()).boxed().collect(Collectors.toSet());
            DType kv = model.kvDtype(o.engine().kvDtype()); // null (--kv-dtype auto): what its attention runs best over
            EngineConfig config = new EngineConfig(router(o, model, kv), kv, stopIds, o.engine().tokenizerThreads(), o.engine().prefixCache(),
                    o.engine().chunkedPrefill());
            engine = Engine.start(model, config, files.tokenizer());
            warmUp(engine, files.tokenizer());
            ServedModel served = served(o.servedName(), engine, files, Math.min(model.maxSequenceLength(), config.router().maxTotalTokens()));
            return new ModelServer(files, model, engine, ApiServer.start(served, o.server()));
        } catch (RuntimeException | Error e) {
            if (engine != null) {
                engine.close();
            }
            if (model != null) {
                model.close();
            }
            files.close();
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

    /** One short generation, so that kernels are compiled and buffers allocated before the first client waits on them. */
    private static void warmUp(Engine engine, Tokenizer tokenizer) {
        int first = tokenizer.bosId() != Tokenizer.NO_TOKEN ? tokenizer.bosId() : 0;
        engine.generate(new int[] {first}, SamplingParams.greedy(2));
    }

    private static ServedModel served(String name, Engine engine, ModelFiles files, int contextLength) {
        Tokenizer t = files.tokenizer();
        Set<Integer> special = new HashSet<>();
        for (int id : files.stopTokenIds()) {
            special.add(id);
        }
        String bos = "";
        if (t.bosId() != Tokenizer.NO_TOKEN) {
            special.add(t.bosId());
            bos = t.idToToken(t.bosId());
        }
        int[] eos = files.stopTokenIds();
        ChatTemplate template = new ChatTemplate(t.chatTemplate().orElse(null), bos, eos.length > 0 ? t.idToToken(eos[0]) : "");
        return new ServedModel(name, engine, t, contextLength, special, template);
    }

    public String url() {
        return http.url();
    }

    public int port() {
        return http.port();
    }

    public Engine engine() {
        return engine;
    }

    public ModelFiles files() {
        return files;
    }

    @Override
    public void close() {
        try {
            http.close();
        } finally {
            try {
                engine.close();
            } finally {
                try {
                    model.close();
                } finally {
                    files.close();
                }
            }
        }
    }
}
