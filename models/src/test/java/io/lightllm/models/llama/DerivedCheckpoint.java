package io.lightllm.models.llama;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.LoadOptions;
import io.lightllm.models.config.JsonFields;
import io.lightllm.models.weights.SafetensorsWriter;
import io.lightllm.models.weights.SafetensorsWeights;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.TensorType;
import io.lightllm.tornado.api.FloatArray;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A checkpoint derived from a real fixture, for architectures without a fixture of their own:
 * the fixture's config.json and tensors, edited in memory (renamed, fused, rescaled) and
 * written with the fixture's tokenizer into a directory. Derived so that the fixture's
 * transformers golden (or a plain-llama checkpoint with the variant's effect folded into the
 * weights) stays the reference.
 */
final class DerivedCheckpoint {
    final ObjectNode config;
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private final Path fixture;
    private final Arena arena = Arena.ofAuto();

    private DerivedCheckpoint(Path fixture, ObjectNode config) {
        this.fixture = fixture;
        this.config = config;
    }

    /** The fixture's config and tensors (copied out of the mapping, so they outlive it). */
    static DerivedCheckpoint of(Path fixture) {
        DerivedCheckpoint c = new DerivedCheckpoint(fixture, (ObjectNode) JsonFields.read(fixture.resolve("config.json")));
        try (SafetensorsWeights w = SafetensorsWeights.open(fixture, LoadOptions.quietly())) {
            for (String name : w.names()) {
                Tensor t = w.get(name);
                MemorySegment copy = c.arena.allocate(t.data().byteSize(), 8);
                copy.copyFrom(t.data());
                c.tensors.put(name, new Tensor(name, t.type(), t.shape(), copy));
            }
        }
        return c;
    }

    int hidden() {
        return config.get("hidden_size").asInt();
    }

    int layers() {
        return config.get("num_hidden_layers").asInt();
    }

    /** The tensor names, in order. */
    java.util.Set<String> names() {
        return java.util.Collections.unmodifiableSet(tensors.keySet());
    }

    boolean has(String name) {
        return tensors.containsKey(name);
    }

    long[] shape(String name) {
        return tensor(name).shape();
    }

    /** The values of a tensor as f32 (exact for f16/bf16 sources). */
    float[] floats(String name) {
        FloatArray f = tensor(name).toFloat();
        return f.toArray();
    }

    /** Sets (or replaces) a tensor, stored as F32. */
    DerivedCheckpoint put(String name, long[] shape, float[] values) {
        MemorySegment seg = arena.allocate((long) values.length * Float.BYTES, 8);
        MemorySegment.copy(values, 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
        tensors.put(name, new Tensor(name, TensorType.F32, shape, seg));
        return this;
    }

    DerivedCheckpoint remove(String name) {
        tensor(name);
        tensors.remove(name);
        return this;
    }

    DerivedCheckpoint rename(String from, String to) {
        Tensor t = tensor(from);
        tensors.remove(from);
        tensors.put(to, new Tensor(to, t.type(), t.shape(), t.data()));
        return this;
    }

    /** Multiplies every value of a tensor by {@code factor} (in f32, stored as F32). */
    DerivedCheckpoint scale(String name, float factor) {
        float[] v = floats(name);
        for (int i = 0; i < v.length; i++) {
            v[i] *= factor;
        }
        return put(name, shape(name), v);
    }

    /** Writes config.json, model.safetensors and the fixture's tokenizer files into {@code dir}. */
    Path write(Path dir) throws IOException {
        for (String f : new String[] {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
            if (Files.exists(fixture.resolve(f))) {
                Files.copy(fixture.resolve(f), dir.resolve(f));
            }
        }
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        SafetensorsWriter.write(dir.resolve("model.safetensors"), new ArrayList<>(tensors.values()));
        return dir;
    }

    private Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no tensor " + name + " in the checkpoint derived from " + fixture);
        }
        return t;
    }
}
