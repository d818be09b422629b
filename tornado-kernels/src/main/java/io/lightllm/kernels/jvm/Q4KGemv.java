package io.lightllm.kernels.jvm;

import io.lightllm.kernels.QuantBlocks;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decode-sized (m < 4) products of GGUF's Q4_K rows (and Q5_K's: {@link #dot4FiveBits}) on the JVM with int8
 * activations, as llama.cpp's {@code ggml_vec_dot_q4_K_q8_K} does: each 256-element super-block of an activation row is rounded to int8 with its own
 * scale (max |x| / 127, half to even: llama.cpp's Q8_K blocks), and a super-block's codes meet it as exact integer
 * products, two to a 32-bit multiply ({@link Int4Gemv}'s planes), summed per sub-block of 32, times the sub-block's
 * 6-bit scale as integers, and scaled once a super-block (d times the activations' scale); the minimums come off as
 * dmin times the sum over sub-blocks of m times the activations' codes' sum. The float path it replaces
 * ({@link VectorQuantMatmul}) decoded every nibble to f32 and took 16-lane vectors; on 8-lane (AVX2) machines it
 * decoded whole rows first and ran 17x slower than the int4 GEMV (8,192 x 2,048: 9.9 ms against 0.59, docs/benchmarks.md).
 *
 * <p>The result is the exact product with activations x^ within scale / 2 of x per element, scale = max |x| / 127 of
 * each super-block, the bound {@code QuantMatmulTest} checks ({@link #GROUP}).
 *
 * <p>Layout (ggml-common.h's block_q4_K, 144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales and minimums of the 8
 * sub-blocks, 128 bytes of codes; chunk c (bytes 16 + 32c ..) holds sub-block 2c in its low nibbles and 2c + 1 in its
 * high ones, byte l elements 64c + l and 64c + 32 + l. A chunk is one 256-bit vector of 8 ints; lane i (bytes 4i..4i+3)
 * shifted by 0, 4, 8, 12 and masked with 0x000F000F gives planes 0-3: the low nibbles of bytes 4i and 4i + 2 (plane 0),
 * their high nibbles (1), the low nibbles of bytes 4i + 1 and 4i + 3 (2), their high nibbles (3). Planes 0 and 2 belong
 * to sub-block 2c, 1 and 3 to 2c + 1; the activations are laid out to match ({@link #quantize}).
 */
final class Q4KGemv {
    static final boolean ENABLED = Boolean.parseBoolean(System.getProperty("lightllm.jvm.q4k.q8", "true"));
    /** Elements of a super-block, and of the activations' rounding groups. */
    static final int GROUP = 256;
    static final int BLOCK_BYTES = QuantBlocks.blockBytes(QuantBlocks.Q4_K);
    /** A Q5_K block: Q4_K's, with the codes' fifth bits (qh[32]) between the scales and the codes. */
    static final int Q5K_BLOCK_BYTES = QuantBlocks.blockBytes(QuantBlocks.Q5_K);
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    /** Bit 4 of each 16-bit half: where a Q5_K code's fifth bit goes. */
    private static final int FIFTH = 0x00100010;
    // layouts as constants: one made in a loop is a new object whose accessor the segment looks up in a map every time
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Q4KGemv() {
    }

    /** Whether this path runs here: 256-bit vectors or wider (AVX2, AVX-512). */
    static boolean available() {
        return ENABLED && FloatVector.SPECIES_PREFERRED.length() >= 8;
    }

    /**
     * The int8 activations of rows [m, k] (k a multiple of 256) as the pairs a chunk's planes multiply (super-block s,
     * chunk c, plane p, lane i at int 128 s + 32 c + 8 p + i: two codes as b + 65536 a, a meeting the plane's low short),
     * their scales [m k / 256] and the sums of each sub-block's codes [m k / 32].
     */
    record Activations(int[] pairs, float[] scales, int[] subSums) {
    }

    static Activations quantize(float[] x, int m, int k) {
        int blocks = m * k / GROUP;
        int[] pairs = new int[m * k / 2], subSums = new int[m * k / 32], q = new int[GROUP];
        float[] scales = new float[blocks];
        for (int s = 0; s < blocks; s++) {
            scales[s] = Int4Gemv.round(x, GROUP * s, GROUP, q);
            for (int j = 0; j < GROUP; j++) {
                subSums[8 * s + j / 32] += q[j];
            }
            for (int c = 0; c < 4; c++) {
                for (int i = 0; i < 8; i++) {
                    int e = 64 * c + 4 * i, at = 128 * s + 32 * c + i;
                    pairs[at] = q[e + 2] + 65536 * q[e];
                    pairs[at + 8] = q[e + 34] + 65536 * q[e + 32];
                    pairs[at + 16] = q[e + 3] + 65536 * q[e + 1];
                    pairs[at + 24] = q[e + 35] + 65536 * q[e + 33];
                }
            }
        }
        return new Activations(pairs, scales, subSums);
    }

    /** out[i, j] = x[i] . w[j] (+ bias) for m < 4 rows of x, w rows of k / 256 Q4_K blocks (Q5_K blocks where {@code fiveBits}). */
    static void multiply(JvmDevice device, FloatArray out, float[] x, MemorySegment w, FloatArray bias, int m, int n, int k, boolean fiveBits) {
        int blocks = k / GROUP;
        Activations a = quantize(x, m, k);
        RowRuns.multiplyByQuads(device, out, bias, m, n, (long) (fiveBits ? Q5K_BLOCK_BYTES : BLOCK_BYTES) * blocks, (b, at0, at1, at2, at3, dots) -> {
            if (fiveBits) {
                dot4FiveBits(a, b * blocks, w, at0, at1, at2, at3, blocks, dots);
            } else {
                dot4(a, b * blocks, w, at0, at1, at2, at3, blocks, dots);
            }
        });
    }

    /** Each thread's four rows' f32 sums and a super-block's integer sums (8 lanes a row), and the rows' scales. */
    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[4 * 8]);
    private static final ThreadLocal<int[]> SUMS = ThreadLocal.withInitial(() -> new int[4 * 8]);
    private static final ThreadLocal<int[]> SCALES = ThreadLocal.withInitial(() -> new int[4 * 16]);

    /**
     * Four rows at once (the quarters of a run, as {@link Int4Gemv#dot4}: four streams, each activation load serving the
     * four), written out row by row for the reasons given there. A chunk's planes 0 + 2 (and 1 + 3) are four products a
     * lane, each pair product's high half n_a a + n_b b (|.| <= 2 x 15 x 127), the low halves summing to at most 2 x 1,905
     * either way: adding 2^15 and shifting right by 16 leaves the sub-block's exact lane sum (|.| <= 7,620), which the
     * sub-block's scale (<= 63) multiplies; a lane's super-block sum stays below 2^22, exact as an f32.
     */
    private static void dot4(Activations a, int s0, MemorySegment w, long r0, long r1, long r2, long r3, int blocks, float[] result) {
        float[] acc = ACCUMULATORS.get();
        int[] sums = SUMS.get(), sc = SCALES.get();
        java.util.Arrays.fill(acc, 0f);
        int[] xp = a.pairs();
        for (int s = 0; s < blocks; s++) {
            long sb = (long) BLOCK_BYTES * s;
            startBlock(w, r0 + sb, r1 + sb, r2 + sb, r3 + sb, sc, sums);
            for (int c = 0; c < 4; c++) {
                int x0 = 128 * (s0 + s) + 32 * c;
                IntVector p0 = IntVector.fromArray(I, xp, x0), p1 = IntVector.fromArray(I, xp, x0 + 8);
                IntVector p2 = IntVector.fromArray(I, xp, x0 + 16), p3 = IntVector.fromArray(I, xp, x0 + 24);
                long qa = sb + 16 + 32L * c;
                IntVector v, low, high;
                v = IntVector.fromMemorySegment(I, w, r0 + qa, ByteOrder.LITTLE_ENDIAN);
                low = v.and(0x000F000F).mul(p0).add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(p1).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[2 * c + 1]))
                        .add(IntVector.fromArray(I, sums, 0)).intoArray(sums, 0);
                v = IntVector.fromMemorySegment(I, w, r1 + qa, ByteOrder.LITTLE_ENDIAN);
                low = v.and(0x000F000F).mul(p0).add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(p1).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[16 + 2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[17 + 2 * c]))
                        .add(IntVector.fromArray(I, sums, 8)).intoArray(sums, 8);
                v = IntVector.fromMemorySegment(I, w, r2 + qa, ByteOrder.LITTLE_ENDIAN);
                low = v.and(0x000F000F).mul(p0).add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(p1).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[32 + 2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[33 + 2 * c]))
                        .add(IntVector.fromArray(I, sums, 16)).intoArray(sums, 16);
                v = IntVector.fromMemorySegment(I, w, r3 + qa, ByteOrder.LITTLE_ENDIAN);
                low = v.and(0x000F000F).mul(p0).add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(p1).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[48 + 2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[49 + 2 * c]))
                        .add(IntVector.fromArray(I, sums, 24)).intoArray(sums, 24);
            }
            endBlock(acc, sums, sc, a, s0 + s, w, r0 + sb, r1 + sb, r2 + sb, r3 + sb);
        }
        LaneSums.sum4(F, acc, 0, result, 0);
    }

    /**
     * {@link #dot4} over Q5_K blocks: a code's fifth bit is bit 2c (low sub-block) or 2c + 1 (high) of qh[l] for byte l
     * of chunk c; qh's 32 bytes are one vector with the chunk's lanes, shifted right by 2c and each plane's bits moved to
     * bit 4 of its halves ({@link #FIFTH}). Codes up to 31: a lane's sub-block sum at most 4 x 31 x 127 (the low halves
     * 2 x 3,937), times a scale up to 63, a super-block's lane below 2^23. A separate method, not a flag in dot4's loop,
     * for the reasons {@link Int4Gemv#dot4} gives for writing its rows out (vectors chosen by a flag are boxed).
     */
    private static void dot4FiveBits(Activations a, int s0, MemorySegment w, long r0, long r1, long r2, long r3, int blocks, float[] result) {
        float[] acc = ACCUMULATORS.get();
        int[] sums = SUMS.get(), sc = SCALES.get();
        java.util.Arrays.fill(acc, 0f);
        int[] xp = a.pairs();
        for (int s = 0; s < blocks; s++) {
            long sb = (long) Q5K_BLOCK_BYTES * s;
            startBlock(w, r0 + sb, r1 + sb, r2 + sb, r3 + sb, sc, sums);
            for (int c = 0; c < 4; c++) {
                int x0 = 128 * (s0 + s) + 32 * c;
                IntVector p0 = IntVector.fromArray(I, xp, x0), p1 = IntVector.fromArray(I, xp, x0 + 8);
                IntVector p2 = IntVector.fromArray(I, xp, x0 + 16), p3 = IntVector.fromArray(I, xp, x0 + 24);
                long qa = sb + 48 + 32L * c, qh = sb + 16;
                IntVector v, u, low, high;
                v = IntVector.fromMemorySegment(I, w, r0 + qa, ByteOrder.LITTLE_ENDIAN);
                u = IntVector.fromMemorySegment(I, w, r0 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 2 * c);
                low = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(FIFTH)).mul(p0)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(FIFTH)).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 3).and(FIFTH)).mul(p1)
                        .add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 5).and(FIFTH)).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[2 * c + 1]))
                        .add(IntVector.fromArray(I, sums, 0)).intoArray(sums, 0);
                v = IntVector.fromMemorySegment(I, w, r1 + qa, ByteOrder.LITTLE_ENDIAN);
                u = IntVector.fromMemorySegment(I, w, r1 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 2 * c);
                low = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(FIFTH)).mul(p0)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(FIFTH)).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 3).and(FIFTH)).mul(p1)
                        .add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 5).and(FIFTH)).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[16 + 2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[17 + 2 * c]))
                        .add(IntVector.fromArray(I, sums, 8)).intoArray(sums, 8);
                v = IntVector.fromMemorySegment(I, w, r2 + qa, ByteOrder.LITTLE_ENDIAN);
                u = IntVector.fromMemorySegment(I, w, r2 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 2 * c);
                low = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(FIFTH)).mul(p0)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(FIFTH)).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 3).and(FIFTH)).mul(p1)
                        .add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 5).and(FIFTH)).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[32 + 2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[33 + 2 * c]))
                        .add(IntVector.fromArray(I, sums, 16)).intoArray(sums, 16);
                v = IntVector.fromMemorySegment(I, w, r3 + qa, ByteOrder.LITTLE_ENDIAN);
                u = IntVector.fromMemorySegment(I, w, r3 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 2 * c);
                low = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(FIFTH)).mul(p0)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(FIFTH)).mul(p2));
                high = v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 3).and(FIFTH)).mul(p1)
                        .add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 5).and(FIFTH)).mul(p3));
                low.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[48 + 2 * c]).add(high.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(sc[49 + 2 * c]))
                        .add(IntVector.fromArray(I, sums, 24)).intoArray(sums, 24);
            }
            endBlock(acc, sums, sc, a, s0 + s, w, r0 + sb, r1 + sb, r2 + sb, r3 + sb);
        }
        LaneSums.sum4(F, acc, 0, result, 0);
    }

    /** Before a super-block of the four rows' blocks at b0..b3: their scales and minimums into sc, the lane sums zeroed. */
    private static void startBlock(MemorySegment w, long b0, long b1, long b2, long b3, int[] sc, int[] sums) {
        java.util.Arrays.fill(sums, 0);
        scalesAndMins(w, b0, sc, 0);
        scalesAndMins(w, b1, sc, 16);
        scalesAndMins(w, b2, sc, 32);
        scalesAndMins(w, b3, sc, 48);
    }

    /** After it: each row's lane sums scaled into acc, less its minimums' part ({@link #scaleInto}), for super-block s. */
    private static void endBlock(float[] acc, int[] sums, int[] sc, Activations a, int s, MemorySegment w, long b0, long b1, long b2, long b3) {
        float xs = a.scales()[s];
        int sub = 8 * s;
        scaleInto(acc, 0, sums, sc, 0, a.subSums(), sub, f16(w, b0) * xs, f16(w, b0 + 2) * xs);
        scaleInto(acc, 8, sums, sc, 16, a.subSums(), sub, f16(w, b1) * xs, f16(w, b1 + 2) * xs);
        scaleInto(acc, 16, sums, sc, 32, a.subSums(), sub, f16(w, b2) * xs, f16(w, b2 + 2) * xs);
        scaleInto(acc, 24, sums, sc, 48, a.subSums(), sub, f16(w, b3) * xs, f16(w, b3 + 2) * xs);
    }

    /**
     * acc[at, at + 8) += a row's super-block: its integer lane sums (sums at {@code at}) times {@code scale} (d times the
     * activations' scale), less its 8 sub-blocks' minimums (sc[mins + 8 ..]) times the activations' codes' sums (subSums[sub ..]),
     * times {@code minScale} (dmin times the activations' scale); lane by lane, as the row's lanes are summed at the end.
     * It takes arrays, not vectors: a vector argument of a call C2 does not inline is boxed (the GEMV 20 % slower).
     */
    private static void scaleInto(float[] acc, int at, int[] sums, int[] sc, int mins, int[] subSums, int sub, float scale, float minScale) {
        FloatVector lanes = (FloatVector) IntVector.fromArray(I, sums, at).convert(VectorOperators.I2F, 0);
        FloatVector minimums = (FloatVector) IntVector.fromArray(I, sc, mins + 8).mul(IntVector.fromArray(I, subSums, sub))
                .convert(VectorOperators.I2F, 0);
        minimums.fma(FloatVector.broadcast(F, -minScale), lanes.fma(FloatVector.broadcast(F, scale), FloatVector.fromArray(F, acc, at)))
                .intoArray(acc, at);
    }

    /**
     * The 8 sub-blocks' 6-bit scales into sc[to, to + 8) and minimums into sc[to + 8, to + 16), from the block at
     * {@code at} (get_scale_min_k4: sub-blocks 0-3 in the low 6 bits of bytes 0-3 and 4-7, 4-7 in the nibbles of bytes
     * 8-11 with their top two bits in the top bits of bytes 0-7). {@link VectorQuantMatmul}'s float path for Q4_K and Q5_K
     * reads them here too.
     */
    static void scalesAndMins(MemorySegment w, long at, int[] sc, int to) {
        long bytes = w.get(I64_LE, at + 4);
        int high = w.get(I32_LE, at + 12);
        int low4 = (int) bytes, min4 = (int) (bytes >>> 32);
        // four 6-bit fields a word at once: the low 6 bits of bytes 0-3 (4-7); sub-blocks 4-7 take a nibble of bytes
        // 8-11 and, as bits 4-5, the top two bits of bytes 0-3 (4-7)
        int scales = low4 & 0x3F3F3F3F, mins = min4 & 0x3F3F3F3F;
        int highScales = high & 0x0F0F0F0F | low4 >>> 2 & 0x30303030;
        int highMins = high >>> 4 & 0x0F0F0F0F | min4 >>> 2 & 0x30303030;
        for (int j = 0; j < 4; j++) {
            sc[to + j] = scales >>> 8 * j & 0xFF;
            sc[to + 4 + j] = highScales >>> 8 * j & 0xFF;
            sc[to + 8 + j] = mins >>> 8 * j & 0xFF;
            sc[to + 12 + j] = highMins >>> 8 * j & 0xFF;
        }
    }

    private static float f16(MemorySegment w, long at) {
        return Float.float16ToFloat(w.get(F16_LE, at));
    }
}
