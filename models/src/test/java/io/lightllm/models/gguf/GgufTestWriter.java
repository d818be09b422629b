package io.lightllm.models.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Writes small GGUF v3 files for tests, following the format description byte by byte. */
final class GgufTestWriter {
    private final ByteArrayOutputStream kv = new ByteArrayOutputStream();
    private int kvCount;
    private final List<Object[]> tensors = new ArrayList<>();
    private int alignment = 32;

    GgufTestWriter alignment(int a) {
        this.alignment = a;
        return u32("general.alignment", a);
    }

    private GgufTestWriter key(String k, int type) {
        kvCount++;
        str(kv, k);
        le(kv, type, 4);
        return this;
    }

    GgufTestWriter u8(String k, int v) {
        key(k, 0);
        le(kv, v, 1);
        return this;
    }

    GgufTestWriter i16(String k, int v) {
        key(k, 3);
        le(kv, v, 2);
        return this;
    }

    GgufTestWriter u32(String k, long v) {
        key(k, 4);
        le(kv, v, 4);
        return this;
    }

    GgufTestWriter i32(String k, int v) {
        key(k, 5);
        le(kv, v, 4);
        return this;
    }

    GgufTestWriter f32(String k, float v) {
        key(k, 6);
        le(kv, Float.floatToRawIntBits(v), 4);
        return this;
    }

    GgufTestWriter bool(String k, boolean v) {
        key(k, 7);
        le(kv, v ? 1 : 0, 1);
        return this;
    }

    GgufTestWriter string(String k, String v) {
        key(k, 8);
        str(kv, v);
        return this;
    }

    GgufTestWriter u64(String k, long v) {
        key(k, 10);
        le(kv, v, 8);
        return this;
    }

    GgufTestWriter f64(String k, double v) {
        key(k, 12);
        le(kv, Double.doubleToRawLongBits(v), 8);
        return this;
    }

    GgufTestWriter stringArray(String k, String... v) {
        key(k, 9);
        le(kv, 8, 4);
        le(kv, v.length, 8);
        for (String s : v) {
            str(kv, s);
        }
        return this;
    }

    GgufTestWriter floatArray(String k, float... v) {
        key(k, 9);
        le(kv, 6, 4);
        le(kv, v.length, 8);
        for (float f : v) {
            le(kv, Float.floatToRawIntBits(f), 4);
        }
        return this;
    }

    GgufTestWriter intArray(String k, int... v) {
        key(k, 9);
        le(kv, 5, 4);
        le(kv, v.length, 8);
        for (int x : v) {
            le(kv, x, 4);
        }
        return this;
    }

    /** An array of two u8 arrays: [[1, 2], [3]]. */
    GgufTestWriter nestedArray(String k) {
        key(k, 9);
        le(kv, 9, 4);
        le(kv, 2, 8);
        le(kv, 0, 4);
        le(kv, 2, 8);
        le(kv, 1, 1);
        le(kv, 2, 1);
        le(kv, 0, 4);
        le(kv, 1, 8);
        le(kv, 3, 1);
        return this;
    }

    /** A tensor with GGUF-order dims and raw data bytes. */
    GgufTestWriter tensor(String name, int ggmlType, long[] dims, byte[] data) {
        tensors.add(new Object[] {name, ggmlType, dims, data});
        return this;
    }

    void write(Path file) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes("GGUF".getBytes(StandardCharsets.US_ASCII));
        le(out, 3, 4);
        le(out, tensors.size(), 8);
        le(out, kvCount, 8);
        out.writeBytes(kv.toByteArray());
        long offset = 0;
        List<Long> offsets = new ArrayList<>();
        for (Object[] t : tensors) {
            str(out, (String) t[0]);
            long[] dims = (long[]) t[2];
            le(out, dims.length, 4);
            for (long d : dims) {
                le(out, d, 8);
            }
            le(out, (Integer) t[1], 4);
            le(out, offset, 8);
            offsets.add(offset);
            offset = align(offset + ((byte[]) t[3]).length);
        }
        pad(out);
        for (Object[] t : tensors) {
            out.writeBytes((byte[]) t[3]);
            pad(out);
        }
        Files.write(file, out.toByteArray());
    }

    private long align(long n) {
        return (n + alignment - 1) / alignment * alignment;
    }

    private void pad(ByteArrayOutputStream out) {
        while (out.size() % alignment != 0) {
            out.write(0);
        }
    }

    private static void str(ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        le(out, b.length, 8);
        out.writeBytes(b);
    }

    private static void le(ByteArrayOutputStream out, long v, int bytes) {
        for (int i = 0; i < bytes; i++) {
            out.write((int) (v >>> (8 * i)) & 0xff);
        }
    }

    static byte[] floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }

    static byte[] shorts(short... v) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (short s : v) {
            b.putShort(s);
        }
        return b.array();
    }
}
