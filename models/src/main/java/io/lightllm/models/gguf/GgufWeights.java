package io.lightllm.models.gguf;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.weights.MappedFile;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.WeightLoading;
import io.lightllm.models.weights.WeightSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The tensors of a memory-mapped GGUF file under the Hugging Face names of its architecture's
 * declaration (through {@link GgufTensorNames}) and HF-order shapes. Q/K projections of llama files keep llama.cpp's
 * interleaved-rotary row order: see {@link GgufModelConfig}.
 */
public final class GgufWeights implements WeightSource {
    private final GgufFile file;
    private final Arena arena;
    private final TreeMap<String, Tensor> tensors;

    private final GgufTensorNames names;

    private GgufWeights(GgufFile file, Arena arena, TreeMap<String, Tensor> tensors, GgufTensorNames names) {
        this.names = names;
        this.file = file;
        this.arena = arena;
        this.tensors = tensors;
    }

    /** Maps and parses {@code path}, checking every tensor (see {@link WeightLoading} for the progress bar). */
    public static GgufWeights open(Path path, LoadOptions options) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment mapped = MappedFile.map(path, arena);
            GgufFile file = GgufFile.read(path, mapped);
            TreeMap<String, Tensor> tensors = new TreeMap<>();
            GgufTensorNames names = GgufTensorNames.of(GgufModelConfig.architecture(file));
            int heads = GgufModelConfig.heads(file);
            for (GgufTensorInfo info : file.tensorInfos()) {
                for (Tensor t : names.toHf(file.tensor(info, info.name()), heads, arena)) {
                    if (tensors.put(t.name(), t) != null) {
                        throw new ModelLoadException("tensor " + t.name() + " appears twice in " + path);
                    }
                }
            }
            WeightLoading.touch(tensors.values(), "Loading " + path.getFileName(), options);
            return new GgufWeights(file, arena, tensors, names);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The parsed file (metadata for the config and the tokenizer). */
    public GgufFile file() {
        return file;
    }

    @Override
    public Tensor get(String hfName) {
        Tensor t = tensors.get(hfName);
        if (t == null) {
            throw new ModelLoadException("tensor " + hfName + " not found in " + file.path()
                    + names.toGguf(hfName).map(g -> " (GGUF name " + g + ")").orElse(""));
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
        return file.path().toString();
    }

    @Override
    public void close() {
        arena.close();
    }
}
