package io.lightllm.models.weights;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The safetensors weights of a Hugging Face directory: one model.safetensors, or the shards named
 * by model.safetensors.index.json. All files are memory-mapped into one shared arena.
 */
public final class SafetensorsWeights implements WeightSource {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    private final Arena arena;
    private final TreeMap<String, Tensor> tensors;

    private SafetensorsWeights(Path dir, Arena arena, TreeMap<String, Tensor> tensors) {
        this.dir = dir;
        this.arena = arena;
        this.tensors = tensors;
    }

    /** Maps the weights of {@code dir}, checking every tensor's bounds (see {@link WeightLoading} for the progress bar). */
    public static SafetensorsWeights open(Path dir, LoadOptions options) {
        List<Path> files = shardFiles(dir);
        Arena arena = Arena.ofShared();
        try {
            TreeMap<String, Tensor> tensors = new TreeMap<>();
            for (Path f : files) {
                for (Tensor t : SafetensorsFile.read(f, MappedFile.map(f, arena)).values()) {
                    if (tensors.put(t.name(), t) != null) {
                        throw new ModelLoadException("tensor " + t.name() + " appears in more than one file of " + dir);
                    }
                }
            }
            WeightLoading.touch(tensors.values(), "Loading " + dir.getFileName(), options);
            checkIndex(dir, tensors);
            return new SafetensorsWeights(dir, arena, tensors);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The files that hold the weights: the index's shards, else model.safetensors, else the one *.safetensors. */
    static List<Path> shardFiles(Path dir) {
        Path index = dir.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) {
            LinkedHashSet<String> names = new LinkedHashSet<>(weightMap(index).values());
            return names.stream().map(dir::resolve).toList();
        }
        if (Files.isRegularFile(dir.resolve(SINGLE_FILE))) {
            return List.of(dir.resolve(SINGLE_FILE));
        }
        List<Path> found;
        try (Stream<Path> s = Files.list(dir)) {
            found = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new ModelLoadException("cannot list " + dir + ": " + e.getMessage(), e);
        }
        if (found.size() != 1) {
            throw new ModelLoadException(dir + " has no " + SINGLE_FILE + " or " + INDEX_FILE
                    + (found.isEmpty() ? "" : " and several other .safetensors files: " + found));
        }
        return found;
    }

    private static Map<String, String> weightMap(Path index) {
        JsonNode map = JsonFields.read(index).path("weight_map");
        if (!map.isObject()) {
            throw new ModelLoadException(index + " has no weight_map object");
        }
        Map<String, String> out = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    /** Every tensor the index names must be in the shard it names. */
    private static void checkIndex(Path dir, Map<String, Tensor> tensors) {
        Path index = dir.resolve(INDEX_FILE);
        if (!Files.isRegularFile(index)) {
            return;
        }
        for (Map.Entry<String, String> e : weightMap(index).entrySet()) {
            if (!tensors.containsKey(e.getKey())) {
                throw new ModelLoadException("tensor " + e.getKey() + " listed in " + index + " is missing from "
                        + dir.resolve(e.getValue()));
            }
        }
    }

    @Override
    public Tensor get(String hfName) {
        Tensor t = tensors.get(hfName);
        if (t == null) {
            throw new ModelLoadException("tensor " + hfName + " not found in " + dir);
        }
        return t;
    }

    @Override
    public boolean has(String hfName) {
        return tensors.containsKey(hfName);
    }

    @Override
    public SortedSet<String> names() {
        return Collections.unmodifiableSortedSet(new TreeSet<>(tensors.keySet()));
    }

    @Override
    public String location() {
        return dir.toString();
    }

    @Override
    public void close() {
        arena.close();
    }
}
