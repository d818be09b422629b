package io.lightllm.models.weights;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;
import io.lightllm.tornado.api.DType;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads the tensor table of one mapped .safetensors file: an 8-byte little-endian header length,
 * a JSON header {name: {dtype, shape, data_offsets: [begin, end]}} and the data section the
 * offsets count from. Every tensor becomes a slice of the mapping.
 */
public final class SafetensorsFile {
    /** The format's own bound (safetensors refuses larger headers). */
    private static final long MAX_HEADER_BYTES = 100L << 20;

    private SafetensorsFile() {
    }

    /** The tensors of {@code file} (mapped as {@code mapped}), in header order. */
    public static Map<String, Tensor> read(Path file, MemorySegment mapped) {
        long size = mapped.byteSize();
        if (size < 8) {
            throw new ModelLoadException(file + " is truncated: " + size + " bytes, less than the 8-byte header length");
        }
        long headerLen = mapped.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
            throw new ModelLoadException("bad safetensors header in " + file + ": header length " + headerLen
                    + " (not a safetensors file?)");
        }
        if (8 + headerLen > size) {
            throw new ModelLoadException(file + " is truncated: its header needs " + (8 + headerLen)
                    + " bytes but the file has " + size);
        }
        JsonNode header = parseHeader(file, mapped.asSlice(8, headerLen));
        MemorySegment data = mapped.asSlice(8 + headerLen);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getKey().equals("__metadata__")) {
                tensors.put(e.getKey(), tensor(file, e.getKey(), e.getValue(), data));
            }
        }
        return tensors;
    }

    private static JsonNode parseHeader(Path file, MemorySegment bytes) {
        try {
            JsonNode header = JsonFields.mapper().readTree(bytes.toArray(ValueLayout.JAVA_BYTE));
            if (header == null || !header.isObject()) {
                throw new ModelLoadException("bad safetensors header in " + file + ": not a JSON object");
            }
            return header;
        } catch (IOException e) {
            throw new ModelLoadException("bad safetensors header in " + file + ": " + e.getMessage(), e);
        }
    }

    private static Tensor tensor(Path file, String name, JsonNode entry, MemorySegment data) {
        JsonNode offsets = entry.path("data_offsets");
        JsonNode shapeNode = entry.path("shape");
        if (!entry.path("dtype").isTextual() || !shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
            throw new ModelLoadException("bad safetensors header in " + file + ": entry " + name
                    + " needs dtype, shape and data_offsets [begin, end], found " + entry);
        }
        String dtypeName = entry.get("dtype").asText();
        TensorType type;
        try {
            type = TensorType.of(DType.fromName(dtypeName));
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException("tensor " + name + " in " + file + " has unsupported dtype " + dtypeName
                    + " (supported: F32, F16, BF16, I8, I32, I64)", e);
        }
        long[] shape = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong(-1);
            if (shape[i] < 0) {
                throw new ModelLoadException("bad safetensors header in " + file + ": tensor " + name
                        + " has shape " + shapeNode);
            }
            elements *= shape[i];
        }
        long begin = offsets.get(0).asLong(-1);
        long end = offsets.get(1).asLong(-1);
        long expected = type.byteSize(elements);
        if (begin < 0 || end < begin || end - begin != expected) {
            throw new ModelLoadException("bad safetensors header in " + file + ": tensor " + name + " " + dtypeName
                    + shapeNode + " needs " + expected + " bytes but data_offsets are " + offsets);
        }
        if (end > data.byteSize()) {
            throw new ModelLoadException(file + " is truncated: tensor " + name + " ends at byte " + end
                    + " of the data section, which has only " + data.byteSize());
        }
        return new Tensor(name, type, shape, data.asSlice(begin, end - begin));
    }
}
