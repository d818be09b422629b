package io.lightllm.kernels.jvm;

import io.lightllm.kernels.QuantBlocks;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Set;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's matmul over packed block-quantised weights ({@link io.lightllm.kernels.QuantMatmul}'s
 * contract), with the Vector API: each task decodes {@link VectorMatmul#ROW_BLOCK} weight rows into
 * f32 in its cache-resident buffer, 16 codes at a time (one 16-byte load, nibble masks and shifts,
 * a widening conversion, the unit's scale and offset), and multiplies them with every activation
 * row ({@link VectorMatmul#staged}). Memory sees only the packed bytes. The decoded values are the
 * floats {@link QuantBlocks} defines (scale * code - offset, the same operations). Decode-sized
 * products (m < 4) of int4 and of GGUF's common formats skip the staging and stream the codes
 * straight into the FMAs ({@link #streamInt4}, {@link #streamGguf}).
 */
public final class VectorQuantMatmul {
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> INTS = F.withLanes(int.class);
    /** Float vectors per 16 codes; vectors wider than 16 floats take the scalar decoder. */
    private static final int PARTS = F.length() <= 16 ? 16 / F.length() : 0;
    /** Codes a step of the streamed GGUF products takes: a float vector's lanes (8 with AVX2, 16 with AVX-512). */
    private static final int W = F.length();
    /** As many bytes as {@link #W} (a 64-bit or 128-bit vector), widened to a float vector's lanes. */
    private static final VectorSpecies<Byte> LANE_BYTES = W == 8 || W == 16 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(8 * W)) : B16;
    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ORDER);
    private static final ThreadLocal<float[]> BLOCK = ThreadLocal.withInitial(() -> new float[256]);
    private static final Set<QuantFormat> STREAMED_GGUF =
            Set.of(QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K, QuantFormat.Q5_K, QuantFormat.Q6_K);

    private VectorQuantMatmul() {
    }

    /**
     * Whether the product of these shapes runs with int8 activations ({@link Int4Gemv}: int4 rows, m < 4, whole
     * groups; {@link Q4KGemv}, {@link Q6KGemv}: Q4_K, Q5_K and Q6_K rows, m < 4), so that it differs from the f32 product by the activations' rounding
     * (in groups of {@link #int8ActivationGroup}), not only by summation order.
     */
    public static boolean int8Activations(QuantFormat format, int m, int k) {
        return switch (format) {
            case INT4, INT4_ZP -> m < 4 && k % 128 == 0 && Int4Gemv.available();
            case Q4_K, Q5_K -> m < 4 && k % Q4KGemv.GROUP == 0 && Q4KGemv.available();
            case Q6_K -> m < 4 && k % Q6KGemv.GROUP == 0 && Q6KGemv.available();
            default -> false;
        };
    }

    /** The elements that share an activation scale where {@link #int8Activations}: an int4 block's, a K super-block's. */
    public static int int8ActivationGroup(QuantFormat format) {
        return format == QuantFormat.Q4_K || format == QuantFormat.Q5_K || format == QuantFormat.Q6_K ? Q4KGemv.GROUP : 128;
    }

    /** out[m, n] = a[m, k] · w[n, k]ᵀ (+ bias, or null), w rows of {@code format} blocks. */
    public static void multiply(JvmDevice device, FloatArray out, FloatArray a, ByteArray w, QuantFormat format, FloatArray bias,
            int m, int n, int k) {
        long rowBytes = format.rowBytes(k);
        MemorySegment seg = w.segment();
        float[] act = VectorMatmul.activations(a, m, k);
        if (int8Activations(format, m, k)) {
            switch (format) {
                case Q4_K, Q5_K -> Q4KGemv.multiply(device, out, act, seg, bias, m, n, k, format == QuantFormat.Q5_K);
                case Q6_K -> Q6KGemv.multiply(device, out, act, seg, bias, m, n, k);
                default -> Int4Gemv.multiply(device, out, act, seg, format == QuantFormat.INT4_ZP, bias, m, n, k, rowBytes);
            }
            return;
        }
        if ((format == QuantFormat.INT4 || format == QuantFormat.INT4_ZP) && m < 4 && PARTS == 1 && k % 128 == 0) {
            streamInt4(device, out, act, seg, format == QuantFormat.INT4_ZP, bias, m, n, k, rowBytes);
            return;
        }
        if (m < 4 && streamsGguf(format)) {
            streamGguf(device, out, act, seg, format, bias, m, n, k, rowBytes);
            return;
        }
        VectorMatmul.staged(device, out, act, (row, dst, at) -> decodeRow(w, seg, format, row * rowBytes, k, dst, at),
                null, bias, m, n, k);
    }

    // ---- GGUF's common formats, streamed (m < 4) ------------------------------------------------

    /** Whether {@link #streamGguf} serves {@code format} here: one of GGUF's common formats, and vectors of 8 or 16 lanes. */
    static boolean streamsGguf(QuantFormat format) {
        return STREAMED_GGUF.contains(format) && (W == 8 || W == 16);
    }

    /**
     * Decode-sized products of GGUF's Q8_0, Q4_0, Q4_K, Q5_K and Q6_K rows (Q4_K_M's and Q5_K_M's
     * matrices use Q4_K or Q5_K, and Q6_K for the head and half the down and v projections) multiply
     * each block's codes with the activations as they are read, a float vector's lanes at a time (8 or 16), and scale the block's
     * sum once; the formats' offsets (Q4_0's 8, Q4_K's minimums) come off
     * as a per-32 sum of the activations times the offset. The staged decoder, which writes every
     * row to f32 first, ran these at a tenth of int4's speed. Q4_K, Q5_K and Q6_K take this path only where
     * {@link Q4KGemv} / {@link Q6KGemv} do not run (vectors under 256 bits, as ARM's NEON, or their switches off), so the
     * tests call it directly ({@code Q4KGemvTest}, {@code Q6KGemvTest}) as well as through {@link #multiply}.
     */
    static void streamGguf(JvmDevice device, FloatArray out, float[] x, MemorySegment seg, QuantFormat format,
            FloatArray bias, int m, int n, int k, long rowBytes) {
        float[] sums32 = blockSums(x, 32);
        RowRuns.forEach(device, n, rowBytes, row -> {
            for (int i = 0; i < m; i++) {
                long at = row * rowBytes;
                float dot = switch (format) {
                    case Q8_0 -> dotQ8_0(x, i * k, seg, at, k);
                    case Q4_0 -> dotQ4_0(x, i * k, seg, at, k, sums32, i * k / 32);
                    case Q6_K -> dotQ6K(x, i * k, seg, at, k);
                    case Q4_K -> dotQK(x, i * k, seg, at, k, sums32, i * k / 32, false);
                    case Q5_K -> dotQK(x, i * k, seg, at, k, sums32, i * k / 32, true);
                    default -> throw new IllegalStateException(format + " is not streamed");
                };
                out.set(i * n + row, bias == null ? dot : dot + bias.get(row));
            }
        });
    }

    /**
     * The sums of x's runs of {@code size} elements: the per-block sums an offset is multiplied by.
     * Row i's block b is run i k / size + b, as k is a multiple of {@code size}.
     */
    private static float[] blockSums(float[] x, int size) {
        float[] sums = new float[x.length / size];
        for (int b = 0; b < sums.length; b++) {
            float s = 0;
            for (int j = 0; j < size; j++) {
                s += x[size * b + j];
            }
            sums[b] = s;
        }
        return sums;
    }

    /** Q8_0 blocks {f16 d, 32 int8}: d * sum(x q) per block. */
    private static float dotQ8_0(float[] x, int xOff, MemorySegment w, long rowAt, int k) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < k / 32; b++) {
            long at = rowAt + 34L * b;
            FloatVector t = FloatVector.zero(F);
            for (int j = 0; j < 32; j += W) {
                t = FloatVector.fromArray(F, x, xOff + 32 * b + j).fma(laneFloats(w, at + 2 + j), t);
            }
            acc = t.fma(FloatVector.broadcast(F, f16(w, at)), acc);
        }
        return LaneSums.sum(acc);
    }

    /** Q4_0 blocks {f16 d, 16 bytes: elements 0-15 low nibbles, 16-31 high}: d (sum(x q) - 8 sum(x)). */
    private static float dotQ4_0(float[] x, int xOff, MemorySegment seg, long rowAt, int k, float[] sums32, int sOff) {
        FloatVector acc = FloatVector.zero(F);
        float offset = 0;
        for (int b = 0; b < k / 32; b++) {
            long at = rowAt + 18L * b;
            FloatVector t = FloatVector.zero(F);
            for (int j = 0; j < 16; j += W) {
                IntVector q = laneInts(seg, at + 2 + j);
                t = FloatVector.fromArray(F, x, xOff + 32 * b + j).fma(lowNibbles(q), t);
                t = FloatVector.fromArray(F, x, xOff + 32 * b + 16 + j).fma(highNibbles(q), t);
            }
            float d = f16(seg, at);
            acc = t.fma(FloatVector.broadcast(F, d), acc);
            offset += 8 * d * sums32[sOff + b];
        }
        return LaneSums.sum(acc) - offset;
    }

    /**
     * Q4_K and Q5_K super-blocks of 256: per 64-element chunk 32 bytes whose low nibbles are one sub-block of 32
     * and high nibbles the next, each with its scale d sc and minimum dmin m (the 12 packed 6-bit values decoded
     * once a super-block); Q5_K adds a fifth bit per element from qh[32] (bit 2 chunk, or 2 chunk + 1, of qh[l]).
     */
    private static float dotQK(float[] x, int xOff, MemorySegment seg, long rowAt, int k, float[] sums32, int sOff, boolean five) {
        FloatVector acc = FloatVector.zero(F);
        float offset = 0;
        int[] sc = new int[16];
        int blockBytes = five ? 176 : 144, qs = five ? 48 : 16;
        for (int sb = 0; sb < k / 256; sb++) {
            long at = rowAt + (long) blockBytes * sb;
            float d = f16(seg, at), dmin = f16(seg, at + 2);
            Q4KGemv.scalesAndMins(seg, at, sc, 0); // the 8 sub-blocks' scales at sc[0, 8), minimums at sc[8, 16)
            for (int chunk = 0; chunk < 4; chunk++) {
                int j = 64 * chunk, xAt = xOff + 256 * sb + j;
                FloatVector lo = FloatVector.zero(F), hi = lo;
                for (int l = 0; l < 32; l += W) {
                    IntVector q = laneInts(seg, at + qs + 32 * chunk + l);
                    IntVector qLow = q.and(15), qHigh = q.lanewise(VectorOperators.ASHR, 4).and(15);
                    if (five) {
                        IntVector qh = laneInts(seg, at + 16 + l);
                        qLow = qLow.or(qh.lanewise(VectorOperators.ASHR, 2 * chunk).and(1).lanewise(VectorOperators.LSHL, 4));
                        qHigh = qHigh.or(qh.lanewise(VectorOperators.ASHR, 2 * chunk + 1).and(1).lanewise(VectorOperators.LSHL, 4));
                    }
                    lo = FloatVector.fromArray(F, x, xAt + l).fma((FloatVector) qLow.convert(VectorOperators.I2F, 0), lo);
                    hi = FloatVector.fromArray(F, x, xAt + 32 + l).fma((FloatVector) qHigh.convert(VectorOperators.I2F, 0), hi);
                }
                int s0 = 2 * chunk, s1 = s0 + 1; // the chunk's two sub-blocks
                acc = lo.fma(FloatVector.broadcast(F, d * sc[s0]), acc);
                acc = hi.fma(FloatVector.broadcast(F, d * sc[s1]), acc);
                int sub = sOff + 8 * sb + s0;
                offset += dmin * (sc[8 + s0] * sums32[sub] + sc[8 + s1] * sums32[sub + 1]);
            }
        }
        return LaneSums.sum(acc) - offset;
    }

    /**
     * Q6_K super-blocks of 256 {ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16], f16 d}: per half of
     * 128 and 16-element run l, ql[l] and ql[32 + l] give runs 0 and 1 (low nibbles) and 2 and 3 (high), qh[l]
     * their high bits two by two; each 16 elements have their own scale (dequantize_row_q6_K's order).
     */
    private static float dotQ6K(float[] x, int xOff, MemorySegment seg, long rowAt, int k) {
        FloatVector acc = FloatVector.zero(F);
        for (int sb = 0; sb < k / 256; sb++) {
            long at = rowAt + 210L * sb;
            float d = f16(seg, at + 208);
            for (int half = 0; half < 2; half++) {
                for (int l = 0; l < 32; l += W) { // a step of W <= 16 stays within one 16-element scale run
                    IntVector qlA = laneInts(seg, at + 64 * half + l);
                    IntVector qlB = laneInts(seg, at + 64 * half + 32 + l);
                    IntVector qh = laneInts(seg, at + 128 + 32 * half + l);
                    // runs 0-3 of 32: the low nibbles of qlA, of qlB, the high ones of qlA, of qlB, with qh's bits 0-1, 2-3,
                    // 4-5, 6-7 above them, written out: a loop choosing among the vectors ran 1.4x slower (C2 boxes such vectors)
                    int xAt = xOff + 256 * sb + 128 * half + l;
                    long scales = at + 192 + 8 * half + l / 16;
                    IntVector c0 = qlA.and(15).or(qh.lanewise(VectorOperators.LSHL, 4).and(0x30)).sub(32);
                    IntVector c1 = qlB.and(15).or(qh.lanewise(VectorOperators.LSHL, 2).and(0x30)).sub(32);
                    IntVector c2 = qlA.lanewise(VectorOperators.ASHR, 4).and(15).or(qh.and(0x30)).sub(32);
                    IntVector c3 = qlB.lanewise(VectorOperators.ASHR, 4).and(15).or(qh.lanewise(VectorOperators.ASHR, 2).and(0x30)).sub(32);
                    acc = FloatVector.fromArray(F, x, xAt).mul((FloatVector) c0.convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.broadcast(F, d * seg.get(ValueLayout.JAVA_BYTE, scales)), acc);
                    acc = FloatVector.fromArray(F, x, xAt + 32).mul((FloatVector) c1.convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.broadcast(F, d * seg.get(ValueLayout.JAVA_BYTE, scales + 2)), acc);
                    acc = FloatVector.fromArray(F, x, xAt + 64).mul((FloatVector) c2.convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.broadcast(F, d * seg.get(ValueLayout.JAVA_BYTE, scales + 4)), acc);
                    acc = FloatVector.fromArray(F, x, xAt + 96).mul((FloatVector) c3.convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.broadcast(F, d * seg.get(ValueLayout.JAVA_BYTE, scales + 6)), acc);
                }
            }
        }
        return LaneSums.sum(acc);
    }

    /** {@link #W} int8 codes at {@code at} as floats. */
    private static FloatVector laneFloats(MemorySegment w, long at) {
        return (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, w, at, ORDER).convertShape(VectorOperators.B2F, F, 0);
    }

    /** {@link #W} bytes at {@code at} as ints (sign-extended). */
    private static IntVector laneInts(MemorySegment w, long at) {
        return (IntVector) ByteVector.fromMemorySegment(LANE_BYTES, w, at, ORDER).convertShape(VectorOperators.B2I, INTS, 0);
    }

    private static FloatVector lowNibbles(IntVector q) {
        return (FloatVector) q.and(15).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector highNibbles(IntVector q) {
        return (FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(15).convert(VectorOperators.I2F, 0);
    }

    private static float f16(MemorySegment w, long at) {
        return Float.float16ToFloat(w.get(F16_LE, at));
    }

    /**
     * Decode-sized int4 products (m < 4, 16-float vectors, whole groups) stream the packed bytes
     * straight into the FMAs, four weight rows sharing each activation load. A group's 64 code bytes
     * are one load of 16 ints; nibble p of every int is 16 codes at once (a shift and a mask), for
     * the activations laid out to match ({@link #nibbleOrder}). The codes are multiplied unshifted
     * (the -8, or with a zero point the offset, comes off once per group as 8 s sum(x), or o sum(x)),
     * summed per group and scaled into the row's accumulator. No staging buffer, and a quarter fewer
     * operations a code than widening bytes. {@code zeroPoint}: INT4_ZP rows (a scale and an offset a group).
     */
    private static void streamInt4(JvmDevice device, FloatArray out, float[] x, MemorySegment seg, boolean zeroPoint, FloatArray bias,
            int m, int n, int k, long rowBytes) {
        Int4Blocks blocks = zeroPoint ? Int4Blocks.WITH_ZERO : Int4Blocks.SYMMETRIC;
        int groups = k / 128;
        float[] groupSums = blockSums(x, 128);
        float[] xn = nibbleOrder(x, m, k);
        device.parallelFor((n + 3) / 4, t -> {
            int j0 = 4 * t, rows = Math.min(4, n - j0);
            float[] sums = new float[4];
            for (int i = 0; i < m; i++) {
                if (rows == 4) {
                    dotInt4x4(blocks, xn, i * k, seg, j0 * rowBytes, rowBytes, groups, groupSums, i * groups, sums);
                } else {
                    for (int r = 0; r < rows; r++) {
                        sums[r] = dotInt4(blocks, xn, i * k, seg, (j0 + r) * rowBytes, groups, groupSums, i * groups);
                    }
                }
                for (int r = 0; r < rows; r++) {
                    out.set(i * n + j0 + r, bias == null ? sums[r] : sums[r] + bias.get(j0 + r));
                }
            }
        });
    }

    /**
     * The activations in the order of an int4 group's nibbles read as 16 little-endian ints: position
     * 16 p + l of a group is the element of int l's nibble p, which is byte 4 l + p / 2's low nibble
     * (element 4 l + p / 2) for even p and its high nibble (element 64 + 4 l + p / 2) for odd p.
     */
    static float[] nibbleOrder(float[] x, int m, int k) {
        float[] out = new float[m * k];
        for (int base = 0; base < m * k; base += 128) {
            for (int p = 0; p < 8; p++) {
                for (int l = 0; l < 16; l++) {
                    out[base + 16 * p + l] = x[base + (p % 2 == 0 ? 0 : 64) + 4 * l + p / 2];
                }
            }
        }
        return out;
    }

    /**
     * An int4 row's groups ({@link QuantBlocks}' layout: the codes, then each group's terms) and what a group's sum of
     * activations is multiplied by to come off.
     */
    private enum Int4Blocks {
        /** INT4: an f32 scale a group, codes q + 8: 8 s comes off. */
        SYMMETRIC(QuantBlocks.INT4),
        /** INT4_ZP: an f32 scale and offset a group, codes q: the offset comes off. */
        WITH_ZERO(QuantBlocks.INT4_ZP);

        final int termBytes;

        Int4Blocks(int format) {
            this.termBytes = QuantBlocks.int4TermBytes(format);
        }

        /** Group g's codes in the row at {@code rowAt}. */
        static long codesAt(long rowAt, int g) {
            return rowAt + (long) QuantBlocks.INT4_CODE_BYTES * g;
        }

        /** Group g's scale (its offset 4 bytes on) in the row at {@code rowAt} of {@code groups} groups. */
        long termsAt(long rowAt, int groups, int g) {
            return rowAt + (long) QuantBlocks.INT4_CODE_BYTES * groups + (long) termBytes * g;
        }

        float offset(MemorySegment w, long termsAt, float scale) {
            return this == WITH_ZERO ? w.get(F32_LE, termsAt + 4) : 8 * scale;
        }
    }

    private static float dotInt4(Int4Blocks blocks, float[] xn, int xOff, MemorySegment w, long rowAt, int groups, float[] groupSums, int gs) {
        FloatVector acc = FloatVector.zero(F);
        float offset = 0;
        for (int g = 0; g < groups; g++) {
            long at = blocks.termsAt(rowAt, groups, g);
            IntVector v = codes(w, Int4Blocks.codesAt(rowAt, g));
            FloatVector sum = FloatVector.zero(F);
            for (int p = 0; p < 8; p++) {
                sum = FloatVector.fromArray(F, xn, xOff + 128 * g + 16 * p).fma(nibble(v, p), sum);
            }
            float s = scaleOf(w, at);
            acc = sum.fma(FloatVector.broadcast(F, s), acc);
            offset += blocks.offset(w, at, s) * groupSums[gs + g];
        }
        return LaneSums.sum(acc) - offset;
    }

    /** Four int4 rows ({@code rowBytes} apart) times one activation row (in nibble order): sums[r]. */
    private static void dotInt4x4(Int4Blocks blocks, float[] xn, int xOff, MemorySegment w, long rowAt, long rowBytes, int groups,
            float[] groupSums, int gs, float[] sums) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float o0 = 0, o1 = 0, o2 = 0, o3 = 0;
        for (int g = 0; g < groups; g++) {
            long at0 = blocks.termsAt(rowAt, groups, g), at1 = at0 + rowBytes, at2 = at1 + rowBytes, at3 = at2 + rowBytes;
            long c0 = Int4Blocks.codesAt(rowAt, g);
            IntVector v0 = codes(w, c0), v1 = codes(w, c0 + rowBytes), v2 = codes(w, c0 + 2 * rowBytes), v3 = codes(w, c0 + 3 * rowBytes);
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
            for (int p = 0; p < 8; p++) {
                FloatVector xv = FloatVector.fromArray(F, xn, xOff + 128 * g + 16 * p);
                s0 = xv.fma(nibble(v0, p), s0);
                s1 = xv.fma(nibble(v1, p), s1);
                s2 = xv.fma(nibble(v2, p), s2);
                s3 = xv.fma(nibble(v3, p), s3);
            }
            float sum = groupSums[gs + g], d0 = scaleOf(w, at0), d1 = scaleOf(w, at1), d2 = scaleOf(w, at2), d3 = scaleOf(w, at3);
            a0 = s0.fma(FloatVector.broadcast(F, d0), a0);
            a1 = s1.fma(FloatVector.broadcast(F, d1), a1);
            a2 = s2.fma(FloatVector.broadcast(F, d2), a2);
            a3 = s3.fma(FloatVector.broadcast(F, d3), a3);
            o0 += blocks.offset(w, at0, d0) * sum;
            o1 += blocks.offset(w, at1, d1) * sum;
            o2 += blocks.offset(w, at2, d2) * sum;
            o3 += blocks.offset(w, at3, d3) * sum;
        }
        LaneSums.sum4(a0, a1, a2, a3, sums, 0);
        sums[0] -= o0;
        sums[1] -= o1;
        sums[2] -= o2;
        sums[3] -= o3;
    }

    /** The 64 code bytes at {@code at} (an int4 group's) as 16 ints. */
    private static IntVector codes(MemorySegment w, long at) {
        return IntVector.fromMemorySegment(INTS, w, at, ORDER);
    }

    /** Nibble p (0..7) of every int, as floats 0..15. */
    private static FloatVector nibble(IntVector v, int p) {
        return (FloatVector) v.lanewise(VectorOperators.LSHR, 4 * p).and(15).convert(VectorOperators.I2F, 0);
    }

    private static float scaleOf(MemorySegment w, long at) {
        return w.get(F32_LE, at);
    }

    /** Row of k elements at byte {@code rowAt}, into dst[at, at + k). */
    static void decodeRow(ByteArray w, MemorySegment seg, QuantFormat format, long rowAt, int k, float[] dst, int at) {
        int size = format.blockSize(), row = Math.toIntExact(rowAt);
        for (int j0 = 0; j0 < k; j0 += size) {
            if (j0 + size <= k) {
                decodeBlock(w, seg, format, row, k, j0 / size, dst, at + j0);
            } else { // an int4 row's partial last group: decode aside, keep the row's part
                float[] tmp = BLOCK.get();
                decodeBlock(w, seg, format, row, k, j0 / size, tmp, 0);
                System.arraycopy(tmp, 0, dst, at + j0, k - j0);
            }
        }
    }

    /**
     * Block (int4: group) {@code index} of the row of k at byte {@code rowAt} into dst[at, at + blockSize). A GGUF block,
     * its scales and codes together at b, reads through {@link QuantBlocks} as a row of one block at b.
     */
    private static void decodeBlock(ByteArray w, MemorySegment seg, QuantFormat format, int rowAt, int k, int index, float[] dst, int at) {
        if (PARTS == 0) {
            float[] block = new float[format.blockSize()];
            format.decodeBlock(w, rowAt, k, index, block);
            System.arraycopy(block, 0, dst, at, block.length);
            return;
        }
        int f = format.code();
        int size = format.blockSize();
        int b = rowAt + index * format.blockBytes();
        switch (format) {
            case INT4 -> {
                float s = QuantBlocks.scale(w, f, rowAt, k, size * index);
                for (int c = 0; c < 64; c += 16) {
                    ByteVector q = load(seg, QuantBlocks.int4CodesAt(rowAt, index) + c);
                    store(low(q).sub((byte) 8), s, 0f, dst, at + c);
                    store(high(q).sub((byte) 8), s, 0f, dst, at + 64 + c);
                }
            }
            case INT4_ZP -> {
                float s = QuantBlocks.scale(w, f, rowAt, k, size * index), o = QuantBlocks.offset(w, f, rowAt, k, size * index);
                for (int c = 0; c < 64; c += 16) {
                    ByteVector q = load(seg, QuantBlocks.int4CodesAt(rowAt, index) + c);
                    store(low(q), s, o, dst, at + c);
                    store(high(q), s, o, dst, at + 64 + c);
                }
            }
            case Q4_0 -> {
                float s = QuantBlocks.scale(w, f, b, size, 0);
                ByteVector q = load(seg, b + 2);
                store(low(q).sub((byte) 8), s, 0f, dst, at);
                store(high(q).sub((byte) 8), s, 0f, dst, at + 16);
            }
            case Q8_0 -> {
                float s = QuantBlocks.scale(w, f, b, size, 0);
                store(load(seg, b + 2), s, 0f, dst, at);
                store(load(seg, b + 18), s, 0f, dst, at + 16);
            }
            case Q4_K, Q5_K -> {
                boolean five = format == QuantFormat.Q5_K;
                int qs = b + (five ? 48 : 16);
                for (int chunk = 0; chunk < 4; chunk++) {
                    int j = 64 * chunk; // low nibbles: elements j to j + 31 (one scale), high: j + 32 to j + 63
                    float sLow = QuantBlocks.scale(w, f, b, size, j), oLow = QuantBlocks.offset(w, f, b, size, j);
                    float sHigh = QuantBlocks.scale(w, f, b, size, j + 32), oHigh = QuantBlocks.offset(w, f, b, size, j + 32);
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
                            store(code.or(hi2).sub((byte) 32), QuantBlocks.scale(w, f, b, size, j), 0f, dst, at + j);
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
