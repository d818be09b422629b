package io.lightllm.models.gguf;

import io.lightllm.models.ModelLoadException;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.TensorType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed GGUF (v2/v3) file over its memory mapping: metadata, tensor table and data section.
 *
 * <p>Metadata values are boxed scalars (unsigned 8/16-bit and signed 32-bit ints as Integer,
 * uint32 and 64-bit ints as Long, Float, Double, Boolean, String) or arrays (byte[], short[], int[],
 * long[], float[], double[], boolean[], String[], or Object[] for nested arrays); unsigned array
 * elements keep their bits.
 */
public final class GgufFile {
    private static final int MAGIC = 0x46554747; // "GGUF" little-endian
    private static final int DEFAULT_ALIGNMENT = 32;

    private final Path path;
    private final MemorySegment mapped;
    private final int version;
    private final Map<String, Object> metadata;
    private final List<GgufTensorInfo> tensorInfos;
    private final long dataStart;

    private GgufFile(Path path, MemorySegment mapped, int version, Map<String, Object> metadata,
                     List<GgufTensorInfo> tensorInfos, long dataStart) {
        this.path = path;
        this.mapped = mapped;
        this.version = version;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.tensorInfos = List.copyOf(tensorInfos);
        this.dataStart = dataStart;
    }

    /** Parses the header of {@code file}, mapped as {@code mapped}; checks every tensor's type and bounds. */
    public static GgufFile read(Path file, MemorySegment mapped) {
        Cursor in = new Cursor(file, mapped);
        if (mapped.byteSize() < 4 || in.u32() != MAGIC) {
            throw new ModelLoadException(file + " is not a GGUF file (bad magic)");
        }
        int version = in.u32();
        if (version != 2 && version != 3) {
            throw new ModelLoadException(file + " has GGUF version " + version + "; versions 2 and 3 are supported");
        }
        long tensorCount = in.count("tensor count");
        long kvCount = in.count("metadata count");
        Map<String, Object> metadata = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = in.string();
            metadata.put(key, in.value(in.u32()));
        }
        List<GgufTensorInfo> infos = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = in.string();
            int nDims = in.u32();
            if (nDims < 1 || nDims > 4) {
                throw new ModelLoadException("bad GGUF tensor table in " + file + ": tensor " + name + " has " + nDims + " dimensions");
            }
            long[] dims = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                dims[d] = in.count("dimension of " + name);
            }
            infos.add(new GgufTensorInfo(name, in.u32(), dims, in.u64()));
        }
        long alignment = alignment(file, metadata);
        long dataStart = (in.position() + alignment - 1) / alignment * alignment;
        GgufFile gguf = new GgufFile(file, mapped, version, metadata, infos, dataStart);
        for (GgufTensorInfo info : infos) {
            if (info.offset() % alignment != 0) {
                throw new ModelLoadException("bad GGUF tensor table in " + file + ": tensor " + info.name()
                        + " starts at offset " + info.offset() + ", not a multiple of the alignment " + alignment);
            }
            gguf.tensor(info, info.name()); // checks type and bounds
        }
        return gguf;
    }

    private static long alignment(Path file, Map<String, Object> metadata) {
        Object a = metadata.get("general.alignment");
        if (a == null) {
            return DEFAULT_ALIGNMENT;
        }
        long v = ((Number) a).longValue();
        if (v <= 0 || Long.bitCount(v) != 1) {
            throw new ModelLoadException(file + ": general.alignment " + v + " is not a power of two");
        }
        return v;
    }

    /** The tensor of {@code info} (HF-order shape) as a slice of the mapping, under the name {@code name}. */
    public Tensor tensor(GgufTensorInfo info, String name) {
        TensorType type = GgmlType.tensorType(info.ggmlType()).orElseThrow(() -> new ModelLoadException(
                "tensor " + info.name() + " in " + path + " has GGML type " + GgmlType.name(info.ggmlType())
                        + ", which is not supported (supported: F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K, I8, I32, I64)"));
        long bytes;
        try {
            bytes = type.byteSize(info.elementCount());
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException("bad GGUF tensor " + info.name() + " in " + path + ": " + e.getMessage(), e);
        }
        long start = dataStart + info.offset();
        if (start + bytes > mapped.byteSize()) {
            throw new ModelLoadException(path + " is truncated: tensor " + info.name() + " ends at byte "
                    + (start + bytes) + " but the file has " + mapped.byteSize());
        }
        return new Tensor(name, type, info.hfShape(), mapped.asSlice(start, bytes));
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    public Map<String, Object> metadata() {
        return metadata;
    }

    public List<GgufTensorInfo> tensorInfos() {
        return tensorInfos;
    }

    public boolean has(String key) {
        return metadata.containsKey(key);
    }

    private Object require(String key) {
        Object v = metadata.get(key);
        if (v == null) {
            throw new ModelLoadException("GGUF metadata key " + key + " missing in " + path);
        }
        return v;
    }

    public String getString(String key) {
        return as(key, require(key), String.class);
    }

    /** An integer value of any integer type that fits an int. */
    public int getInt(String key) {
        Object v = require(key);
        if (!(v instanceof Integer || v instanceof Long) || ((Number) v).longValue() != ((Number) v).intValue()) {
            throw new ModelLoadException("GGUF metadata key " + key + " in " + path + " is " + v + ", not an int");
        }
        return ((Number) v).intValue();
    }

    public int getInt(String key, int orElse) {
        return has(key) ? getInt(key) : orElse;
    }

    public float getFloat(String key) {
        Object v = require(key);
        if (!(v instanceof Float || v instanceof Double)) {
            throw new ModelLoadException("GGUF metadata key " + key + " in " + path + " is " + v + ", not a float");
        }
        return ((Number) v).floatValue();
    }

    public float getFloat(String key, float orElse) {
        return has(key) ? getFloat(key) : orElse;
    }

    public boolean getBoolean(String key, boolean orElse) {
        return has(key) ? as(key, require(key), Boolean.class) : orElse;
    }

    public String[] getStringArray(String key) {
        return as(key, require(key), String[].class);
    }

    public float[] getFloatArray(String key) {
        return as(key, require(key), float[].class);
    }

    public int[] getIntArray(String key) {
        return as(key, require(key), int[].class);
    }

    private <T> T as(String key, Object v, Class<T> type) {
        if (!type.isInstance(v)) {
            throw new ModelLoadException("GGUF metadata key " + key + " in " + path + " holds a "
                    + v.getClass().getSimpleName() + ", expected " + type.getSimpleName());
        }
        return type.cast(v);
    }

    /** Reads little-endian GGUF values; running past the end is reported as a truncated file. */
    private static final class Cursor {
        private final Path file;
        private final MemorySegment seg;
        private long pos;

        Cursor(Path file, MemorySegment seg) {
            this.file = file;
            this.seg = seg;
        }

        long position() {
            return pos;
        }

        private void need(long bytes) {
            if (bytes < 0 || pos + bytes > seg.byteSize()) {
                throw new ModelLoadException(file + " is truncated: its GGUF header runs past the end of the file ("
                        + seg.byteSize() + " bytes)");
            }
        }

        byte u8() {
            need(1);
            return seg.get(ValueLayout.JAVA_BYTE, pos++);
        }

        short u16() {
            need(2);
            short v = seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, pos);
            pos += 2;
            return v;
        }

        int u32() {
            need(4);
            int v = seg.get(ValueLayout.JAVA_INT_UNALIGNED, pos);
            pos += 4;
            return v;
        }

        long u64() {
            need(8);
            long v = seg.get(ValueLayout.JAVA_LONG_UNALIGNED, pos);
            pos += 8;
            return v;
        }

        /** A u64 count that must be plausible for the bytes left (guards against garbage headers). */
        long count(String what) {
            long n = u64();
            if (n < 0 || n > seg.byteSize()) {
                throw new ModelLoadException("bad GGUF header in " + file + ": " + what + " " + Long.toUnsignedString(n));
            }
            return n;
        }

        String string() {
            long n = count("string length");
            need(n);
            String s = new String(seg.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            pos += n;
            return s;
        }

        Object value(int type) {
            return switch (type) {
                case 0 -> u8() & 0xff;
                case 1 -> (int) u8();
                case 2 -> u16() & 0xffff;
                case 3 -> (int) u16();
                case 4 -> u32() & 0xffffffffL;
                case 5 -> u32();
                case 6 -> Float.intBitsToFloat(u32());
                case 7 -> u8() != 0;
                case 8 -> string();
                case 9 -> array();
                case 10, 11 -> u64();
                case 12 -> Double.longBitsToDouble(u64());
                default -> throw new ModelLoadException("bad GGUF header in " + file + ": unknown value type " + type);
            };
        }

        private Object array() {
            int type = u32();
            int n = Math.toIntExact(count("array length"));
            switch (type) {
                case 0, 1 -> {
                    byte[] a = new byte[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = u8();
                    }
                    return a;
                }
                case 2, 3 -> {
                    short[] a = new short[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = u16();
                    }
                    return a;
                }
                case 4, 5 -> {
                    int[] a = new int[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = u32();
                    }
                    return a;
                }
                case 6 -> {
                    float[] a = new float[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = Float.intBitsToFloat(u32());
                    }
                    return a;
                }
                case 7 -> {
                    boolean[] a = new boolean[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = u8() != 0;
                    }
                    return a;
                }
                case 8 -> {
                    String[] a = new String[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = string();
                    }
                    return a;
                }
                case 10, 11 -> {
                    long[] a = new long[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = u64();
                    }
                    return a;
                }
                case 12 -> {
                    double[] a = new double[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = Double.longBitsToDouble(u64());
                    }
                    return a;
                }
                case 9 -> {
                    Object[] a = new Object[n];
                    for (int i = 0; i < n; i++) {
                        a[i] = array();
                    }
                    return a;
                }
                default -> throw new ModelLoadException("bad GGUF header in " + file + ": unknown array element type " + type);
            }
        }
    }
}
