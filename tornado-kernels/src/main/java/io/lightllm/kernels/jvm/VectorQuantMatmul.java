package io.lightllm.kernels.jvm;

import io.lightllm.kernels.QuantBlocks;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's matmul over packed block-quantised weights ({@link io.lightllm.kernels.QuantMatmul}'s
 * contract), with the Vector API: each task decodes {@link VectorMatmul#ROW_BLOCK} weight rows into
 * f32 in its cache-resident buffer, 16 codes at a time (one 16-byte load, nibble masks and shifts,
 * a widening conversion, the unit's scale and offset), and multiplies them with every activation
 * row ({@link VectorMatmul#staged}). Memory sees only the packed bytes. The decoded values are the
 * floats {@link QuantBlocks} defines (scale * code - offset, the same operations).
 */
public final class VectorQuantMatmul {
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Float vectors per 16 codes; vectors wider than 16 floats take the scalar decoder. */
    private static final int PARTS = F.length() <= 16 ? 16 / F.length() : 0;
    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;
    private static final ThreadLocal<float[]> BLOCK = ThreadLocal.withInitial(() -> new float[256]);

    private VectorQuantMatmul() {
    }

    /** out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias, or null), w rows of {@code format} blocks. */
    public static void multiply(JvmDevice device, FloatArray out, FloatArray a, ByteArray w, QuantFormat format, FloatArray bias,
            int m, int n, int k) {
        long rowBytes = format.rowBytes(k);
        MemorySegment seg = w.segment();
        VectorMatmul.staged(device, out, VectorMatmul.activations(a, m, k), (row, dst, at) -> decodeRow(w, seg, format, row * rowBytes, k, dst, at),
                null, bias, m, n, k);
    }

    /** Row of k elements whose blocks start at byte {@code rowAt}, into dst[at, at + k). */
    static void decodeRow(ByteArray w, MemorySegment seg, QuantFormat format, long rowAt, int k, float[] dst, int at) {
        int size = format.blockSize(), bytes = format.blockBytes();
        for (int j0 = 0; j0 < k; j0 += size) {
            int block = Math.toIntExact(rowAt + (long) j0 / size * bytes);
            if (j0 + size <= k) {
                decodeBlock(w, seg, format, block, dst, at + j0);
            } else { // an int4 row's partial last group: decode aside, keep the row's part
                float[] tmp = BLOCK.get();
                decodeBlock(w, seg, format, block, tmp, 0);
                System.arraycopy(tmp, 0, dst, at + j0, k - j0);
            }
        }
    }

    private static void decodeBlock(ByteArray w, MemorySegment seg, QuantFormat format, int b, float[] dst, int at) {
        if (PARTS == 0) {
            float[] block = new float[format.blockSize()];
            format.decodeBlock(w, b, block);
            System.arraycopy(block, 0, dst, at, block.length);
            return;
        }
        int f = format.code();
        switch (format) {
            case INT4 -> {
                float s = QuantBlocks.scale(w, f, b, 0);
                for (int c = 0; c < 64; c += 16) {
                    ByteVector q = load(seg, b + 4 + c);
                    store(low(q).sub((byte) 8), s, 0f, dst, at + c);
                    store(high(q).sub((byte) 8), s, 0f, dst, at + 64 + c);
                }
            }
            case Q4_0 -> {
                float s = QuantBlocks.scale(w, f, b, 0);
                ByteVector q = load(seg, b + 2);
                store(low(q).sub((byte) 8), s, 0f, dst, at);
                store(high(q).sub((byte) 8), s, 0f, dst, at + 16);
            }
            case Q8_0 -> {
                float s = QuantBlocks.scale(w, f, b, 0);
                store(load(seg, b + 2), s, 0f, dst, at);
                store(load(seg, b + 18), s, 0f, dst, at + 16);
            }
            case Q4_K, Q5_K -> {
                boolean five = format == QuantFormat.Q5_K;
                int qs = b + (five ? 48 : 16);
                for (int chunk = 0; chunk < 4; chunk++) {
                    int j = 64 * chunk; // low nibbles: elements j to j + 31 (one scale), high: j + 32 to j + 63
                    float sLow = QuantBlocks.scale(w, f, b, j), oLow = QuantBlocks.offset(w, f, b, j);
                    float sHigh = QuantBlocks.scale(w, f, b, j + 32), oHigh = QuantBlocks.offset(w, f, b, j + 32);
                    for (int h = 0; h < 32; h += 16) {
                        ByteVector q = load(seg, qs + 32 * chunk + h);
                        ByteVector lo = low(q), hi = high(q);
                        if (five) { // fifth bits: bit 2 chunk (low) and 2 chunk + 1 (high) of qh[l]
                            ByteVector qh = load(seg, b + 16 + h);
                            lo = lo.or(bit(qh, 2 * chunk));
                            hi = hi.or(bit(qh, 2 * chunk + 1));
                        }
                        store(lo, sLow, oLow, dst, at + j + h);
                        store(hi, sHigh, oHigh, dst, at + j + 32 + h);
                    }
                }
            }
            case Q6_K -> {
                for (int half = 0; half < 2; half++) {
                    for (int l = 0; l < 32; l += 16) {
                        ByteVector qlA = load(seg, b + 64 * half + l), qlB = load(seg, b + 64 * half + 32 + l);
                        ByteVector qh = load(seg, b + 128 + 32 * half + l);
                        for (int run = 0; run < 4; run++) { // runs of 32: low nibbles of qlA, of qlB, high of qlA, of qlB
                            int j = 128 * half + 32 * run + l;
                            ByteVector ql = run % 2 == 0 ? qlA : qlB;
                            ByteVector code = run < 2 ? low(ql) : high(ql);
                            ByteVector hi2 = qh.lanewise(VectorOperators.LSHR, 2 * run).and((byte) 3).lanewise(VectorOperators.LSHL, 4);
                            store(code.or(hi2).sub((byte) 32), QuantBlocks.scale(w, f, b, j), 0f, dst, at + j);
                        }
                    }
                }
            }
        }
    }

    private static ByteVector load(MemorySegment seg, long at) {
        return ByteVector.fromMemorySegment(B16, seg, at, ORDER);
    }

    private static ByteVector low(ByteVector q) {
        return q.and((byte) 15);
    }

    private static ByteVector high(ByteVector q) {
        return q.lanewise(VectorOperators.LSHR, 4).and((byte) 15);
    }

    /** Bit {@code b} of each byte, moved to bit 4 (a fifth code bit). */
    private static ByteVector bit(ByteVector qh, int b) {
        return qh.lanewise(VectorOperators.LSHR, b).and((byte) 1).lanewise(VectorOperators.LSHL, 4);
    }

    /** 16 codes as scale * code - offset into dst[at, at + 16). */
    private static void store(ByteVector codes, float scale, float offset, float[] dst, int at) {
        for (int p = 0; p < PARTS; p++) {
            ((FloatVector) codes.convertShape(VectorOperators.B2F, F, p)).mul(scale).sub(offset).intoArray(dst, at + p * F.length());
        }
    }
}
