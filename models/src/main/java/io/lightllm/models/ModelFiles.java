package io.lightllm.models;

import io.lightllm.models.config.GenerationConfig;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.models.gguf.GgufModelConfig;
import io.lightllm.models.gguf.GgufWeights;
import io.lightllm.models.tokenizer.Tokenizer;
import io.lightllm.models.weights.SafetensorsWeights;
import io.lightllm.models.weights.WeightSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The one entry point for loading a model: a Hugging Face directory (config.json, safetensors,
 * tokenizer.json) or a single .gguf file, giving its config, weights, tokenizer and generation
 * defaults. Closing it unmaps the weights.
 */
public final class ModelFiles implements AutoCloseable {

    public enum Format { HF_SAFETENSORS, GGUF }

    private final Path source;
    private final Format format;
    private final ModelConfig config;
    private final WeightSource weights;
    private final Tokenizer tokenizer;
    private final GenerationConfig generationConfig;

    private ModelFiles(Path source, Format format, ModelConfig config, WeightSource weights, Tokenizer tokenizer,
                       GenerationConfig generationConfig) {
        this.source = source;
        this.format = format;
        this.config = config;
        this.weights = weights;
        this.tokenizer = tokenizer;
        this.generationConfig = generationConfig;
    }

    public static ModelFiles open(Path path) {
        return open(path, LoadOptions.defaults());
    }

    /**
     * Opens a model directory or .gguf file. A directory without config.json but with exactly one
     * .gguf file opens that file. Problems are {@link ModelLoadException}s with a message for the user.
     */
    public static ModelFiles open(Path path, LoadOptions options) {
        if (!Files.exists(path)) {
            throw new ModelLoadException("model not found: " + path);
        }
        if (Files.isRegularFile(path)) {
            if (path.getFileName().toString().endsWith(".gguf")) {
                return openGguf(path, options);
            }
            throw new ModelLoadException(path + " is neither a model directory nor a .gguf file");
        }
        if (Files.isRegularFile(path.resolve("config.json"))) {
            return openHf(path, options);
        }
        List<Path> ggufs = ggufFiles(path);
        if (ggufs.size() == 1) {
            return openGguf(ggufs.getFirst(), options);
        }
        throw new ModelLoadException(path + " is not a model directory: it has no config.json"
                + (ggufs.isEmpty() ? " and no .gguf file" : " and several .gguf files, name one of " + ggufs));
    }

    private static List<Path> ggufFiles(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".gguf")).sorted().toList();
        } catch (IOException e) {
            throw new ModelLoadException("cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    private static ModelFiles openHf(Path dir, LoadOptions options) {
        ModelConfig config = Architectures.readConfig(dir.resolve("config.json"));
        try {
            Architectures.of(config);
        } catch (ModelLoadException e) {
            throw new ModelLoadException(dir.resolve("config.json") + ": " + e.getMessage(), e);
        }
        Tokenizer tokenizer = Tokenizer.load(dir);
        try {
            WeightSource weights = io.lightllm.models.weights.Int4CheckpointWeights.wrap(SafetensorsWeights.open(dir, options),
                    io.lightllm.models.config.JsonFields.read(dir.resolve("config.json")));
            return new ModelFiles(dir, Format.HF_SAFETENSORS, config, weights, tokenizer, GenerationConfig.load(dir, config));
        } catch (RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    private static ModelFiles openGguf(Path file, LoadOptions options) {
        GgufWeights weights = GgufWeights.open(file, options);
        try {
            ModelConfig config = GgufModelConfig.from(weights.file());
            Tokenizer tokenizer = Tokenizer.fromGguf(weights.file());
            return new ModelFiles(file, Format.GGUF, config, weights, tokenizer, GenerationConfig.fromModel(config));
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    /** The directory or file that was opened. */
    public Path source() {
        return source;
    }

    public Format format() {
        return format;
    }

    public ModelConfig config() {
        return config;
    }

    public WeightSource weights() {
        return weights;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public GenerationConfig generationConfig() {
        return generationConfig;
    }

    /** Every token that ends generation: generation_config's, config.json's and the tokenizer's EOS ids, in that order. */
    public int[] stopTokenIds() {
        Set<Integer> ids = new LinkedHashSet<>(generationConfig.eosTokenIds());
        ids.addAll(config.eosTokenIds());
        for (int id : tokenizer.eosIds()) {
            ids.add(id);
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public void close() {
        try {
            tokenizer.close();
        } finally {
            weights.close();
        }
    }
}
