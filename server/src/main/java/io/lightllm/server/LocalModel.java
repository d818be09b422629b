package io.lightllm.server;

import io.lightllm.engine.Completion;
import io.lightllm.engine.Engine;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.KvPoolSizing;
import io.lightllm.engine.RouterConfig;
import io.lightllm.engine.SamplingParams;
import io.lightllm.engine.TokenEvent;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.vision.ImageProcessor;
import io.lightllm.models.vision.VisionLanguageModel;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.models.tokenizer.Tokenizer;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Flow;
import java.util.stream.Collectors;

/**
 * A model served inside this JVM, without HTTP: what a Java application embeds (docs/java-api.md).
 * It loads the files, puts the model on its device, starts the engine (tokenization, the
 * inference loop, detokenization) and warms it up; then any thread may generate from text, token
 * ids or chat messages, whole or streamed, and the engine batches concurrent callers as it batches
 * HTTP requests. {@link ModelServer} is this plus the HTTP server.
 *
 * <pre>{@code
 * try (LocalModel m = LocalModel.load(Path.of("models/Llama-3.2-1B-Instruct"), "cuda:0")) {
 *     String answer = m.chat(List.of(LocalModel.user("Tell me a story.")), SamplingParams.greedy(200));
 * }
 * }</pre>
 */
public final class LocalModel implements AutoCloseable {
    /** KV tokens of the pool when nothing else says (LightLLM's 8k-token default is for servers). */
    public static final int DEFAULT_KV_TOKENS = 4096;

    private final ModelFiles files;
    private final CausalLM model;
    private final Engine engine;
    private final ServedModel served;

    private LocalModel(ModelFiles files, CausalLM model, Engine engine, ServedModel served) {
        this.files = files;
        this.model = model;
        this.engine = engine;
        this.served = served;
    }

    /** The model at {@code path} (a Hugging Face directory or a .gguf file) on {@code device} ("jvm", "cuda:0", ...), quietly. */
    public static LocalModel load(Path path, String device) {
        EngineConfig engine = new EngineConfig(RouterConfig.defaults(DEFAULT_KV_TOKENS), null, Set.of(), 2);
        return load(new ServeOptions(path, device, null, engine, ServerConfig.local(0), Models.Quantization.NONE, true));
    }

    /** The model as {@code lightllm serve} would load it (the server options are not used). */
    public static LocalModel load(ServeOptions o) {
        List<Device> devices = RankDevices.resolve(o.device(), o.tp());
        ModelFiles files = ModelFiles.open(o.model(), new LoadOptions(o.quiet(), false));
        CausalLM model = null;
        Engine engine = null;
        try {
            model = Models.load(files, devices, o.quantization(), o.quiet());
            Set<Integer> stopIds = Arrays.stream(files.stopTokenIds()).boxed().collect(Collectors.toSet());
            DType kv = model.kvDtype(o.engine().kvDtype()); // null (--kv-dtype auto): what its attention runs best over
            EngineConfig config = new EngineConfig(router(o, model, kv), kv, stopIds, o.engine().tokenizerThreads(), o.engine().prefixCache(),
                    o.engine().chunkedPrefill(), o.engine().imageBatch());
            engine = Engine.start(model, config, files.tokenizer());
            warmUp(engine, files.tokenizer());
            ServedModel served = served(o.servedName(), engine, files, Math.min(model.maxSequenceLength(), config.router().maxTotalTokens()),
                    imageInputs(model, files, o.server().media()));
            return new LocalModel(files, model, engine, served);
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

    // ---- generation

    /** Greedy text after {@code prompt} (the tokenizer adds BOS where the model wants it), at most {@code maxNewTokens} tokens. */
    public String generate(String prompt, int maxNewTokens) {
        return generate(prompt, SamplingParams.greedy(maxNewTokens)).getFirst().text();
    }

    /** The {@code params.n()} completions of {@code prompt}, when all are done. */
    public List<Completion> generate(String prompt, SamplingParams params) {
        return engine.generate(prompt, params);
    }

    /** Tokens and text as they are generated, one {@link TokenEvent} per token and sequence. */
    public Flow.Publisher<TokenEvent> stream(String prompt, SamplingParams params) {
        return engine.submit(prompt, params);
    }

    /** A chat message; roles as OpenAI's (system, user, assistant, tool). */
    public record Message(String role, String content) {
    }

    public static Message system(String content) {
        return new Message("system", content);
    }

    public static Message user(String content) {
        return new Message("user", content);
    }

    public static Message assistant(String content) {
        return new Message("assistant", content);
    }

    /** The prompt the model's chat template makes of {@code messages}, with the assistant's turn opened. */
    public String chatPrompt(List<Message> messages) {
        return served.chatTemplate().render(messages.stream().map(m -> Map.<String, Object>of("role", m.role(), "content", m.content())).toList());
    }

    /** The assistant's answer to {@code messages}. */
    public String chat(List<Message> messages, SamplingParams params) {
        return engine.generate(chatTokens(messages), params).getFirst().text();
    }

    /** The assistant's answer to {@code messages}, streamed. */
    public Flow.Publisher<TokenEvent> streamChat(List<Message> messages, SamplingParams params) {
        return engine.submit(chatTokens(messages), params);
    }

    /** The token ids of {@link #chatPrompt}: the rendered template carries its own special tokens (BOS among them), so none are added. */
    public int[] chatTokens(List<Message> messages) {
        return files.tokenizer().encode(chatPrompt(messages), false);
    }

    // ---- what it holds

    public Engine engine() {
        return engine;
    }

    /** The loaded model (for a vision checkpoint, a {@link VisionLanguageModel}, which turns images into prompt tokens). */
    public CausalLM model() {
        return model;
    }

    public ModelFiles files() {
        return files;
    }

    public Tokenizer tokenizer() {
        return files.tokenizer();
    }

    /** The model's name in the API (the directory or file name unless given) and its context. */
    public String name() {
        return served.name();
    }

    ServedModel served() {
        return served;
    }

    /** What was loaded where: device, weight bytes, KV pool tokens and bytes, context length (the start-up line of serve). */
    public String summary() {
        io.lightllm.engine.EngineStats s = engine.stats();
        var c = engine.config();
        long kvBytes = io.lightllm.models.infer.TokenKvPool.bytesPerToken(files.config().numHiddenLayers(), files.config().numKeyValueHeads(),
                files.config().headDim(), c.kvDtype()) * s.capacity();
        return String.format("model %s (%s) on %s: weights %.1f MiB, KV pool %d tokens of %s (%.1f MiB), context %d tokens, prefix cache %s, "
                        + "chunked prefill %s", name(), files.config().modelType(), model.device().id(), model.weightBytes() / 1048576.0, s.capacity(),
                c.kvDtype(), kvBytes / 1048576.0, served.contextLength(), c.prefixCache() ? "on" : "off",
                c.chunkedPrefill() > 0 ? c.chunkedPrefill() + " tokens" : "off")
                + (engine.imageStats() != null ? ", image encoder stage on its own " + model.device().id() + " instance, batches of up to "
                        + c.imageBatch() + " images" : "");
    }

    @Override
    public void close() {
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

    /** One short generation, so that kernels are compiled and buffers allocated before the first caller waits on them. */
    private static void warmUp(Engine engine, Tokenizer tokenizer) {
        int first = tokenizer.bosId() != Tokenizer.NO_TOKEN ? tokenizer.bosId() : 0;
        engine.generate(new int[] {first}, SamplingParams.greedy(2));
    }

    /** A vision model's image input (its preprocessor_config.json beside the weights), or null for a text model. */
    private static ImageInputs imageInputs(CausalLM model, ModelFiles files, ServerConfig.MediaPolicy media) {
        if (!(model.unwrap() instanceof VisionLanguageModel llava)) {
            return null;
        }
        Path dir = Files.isDirectory(files.source()) ? files.source() : files.source().getParent();
        // Llava's image token; Qwen-VL's <img></img> (the span the model fills with the image)
        String placeholder = files.tokenizer().idToToken(llava.imageTokenIndex())
                + (llava.imageEndIndex() >= 0 ? files.tokenizer().idToToken(llava.imageEndIndex()) : "");
        return new ImageInputs(llava, ImageProcessor.load(dir), placeholder, media);
    }

    private static ServedModel served(String name, Engine engine, ModelFiles files, int contextLength, ImageInputs images) {
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
        return new ServedModel(name, engine, t, contextLength, special, template, images);
    }
}
