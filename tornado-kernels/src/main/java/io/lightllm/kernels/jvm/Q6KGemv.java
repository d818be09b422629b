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
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decode-sized (m < 4) products of GGUF's Q6_K rows on the JVM with int8 activations, as llama.cpp's
 * {@code ggml_vec_dot_q6_K_q8_K} does and as {@link Q4KGemv} does for Q4_K (the same super-blocks of 256 activations,
 * each rounded to int8 with its own scale): a Q4_K_M file keeps its head, v and down projections in Q6_K, which the
 * float path took 2.5x longer than Q4_K's integer one a weight.
 *
 * <p>Layout (block_q6_K, 210 bytes): ql[128], qh[64], int8 scales[16], f16 d. Half h (128 elements) and run r (32) hold
 * element 128h + 32r + l (l < 32) as the nibble r / 2 of ql[64h + 32 (r % 2) + l] with bits 2r, 2r + 1 of
 * qh[32h + l] above it, less 32, times scale 8h + 2r + l / 16. A run's 32 code bytes are one 256-bit vector of 8 ints
 * (lane i: l = 4i..4i+3), as are its 32 high-bit bytes: masked with 0x000F000F (0x00300030 for the high bits, moved
 * to bits 4-5) they give plane 0 (the codes of bytes 4i and 4i + 2 as two 16-bit halves) and, shifted by 8, plane 1
 * (bytes 4i + 1, 4i + 3), which meet their activation pairs two products to a 32-bit multiply ({@link Int4Gemv}'s
 * trick). Lanes 0-3 take the run's first scale and 4-7 its second: the run's lane sums are multiplied by the two
 * scales blended into one vector, as integers.
 */
final class Q6KGemv {
    static final boolean ENABLED = Boolean.parseBoolean(System.getProperty("lightllm.jvm.q6k.q8", "true"));
    static final int GROUP = Q4KGemv.GROUP;
    static final int BLOCK_BYTES = QuantBlocks.blockBytes(QuantBlocks.Q6_K);
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Lanes 4-7, which take a run's second scale (its elements 16-31). */
    private static final VectorMask<Integer> SECOND_SCALE = VectorMask.fromLong(I, 0xF0);

    private Q6KGemv() {
    }

    /** Whether this path runs here: 256-bit vectors or wider (AVX2, AVX-512). */
    static boolean available() {
        return ENABLED && FloatVector.SPECIES_PREFERRED.length() >= 8;
    }

    /**
     * The int8 activations of rows [m, k] (k a multiple of 256) as the pairs a run's planes multiply (super-block s, half
     * h, run r, plane p, lane i at int 128 s + 64 h + 16 r + 8 p + i: the codes of elements 128h + 32r + 4i + p and
     * + 2, as b + 65536 a) and their scales [m k / 256].
     */
    record Activations(int[] pairs, float[] scales) {
    }

    static Activations quantize(float[] x, int m, int k) {
        int blocks = m * k / GROUP;
        int[] pairs = new int[m * k / 2], q = new int[GROUP];
        float[] scales = new float[blocks];
        for (int s = 0; s < blocks; s++) {
            scales[s] = Int4Gemv.round(x, GROUP * s, GROUP, q);
            for (int h = 0; h < 2; h++) {
                for (int r = 0; r < 4; r++) {
                    for (int p = 0; p < 2; p++) {
                        for (int i = 0; i < 8; i++) {
                            int e = 128 * h + 32 * r + 4 * i + p;
                            pairs[128 * s + 64 * h + 16 * r + 8 * p + i] = q[e + 2] + 65536 * q[e];
                        }
                    }
                }
            }
        }
        return new Activations(pairs, scales);
    }

    /** out[i, j] = x[i] . w[j] (+ bias) for m < 4 rows of x, w rows of k / 256 Q6_K blocks. */
    static void multiply(JvmDevice device, FloatArray out, float[] x, MemorySegment w, FloatArray bias, int m, int n, int k) {
        int blocks = k / GROUP;
        Activations a = quantize(x, m, k);
        RowRuns.multiplyByQuads(device, out, bias, m, n, (long) BLOCK_BYTES * blocks, (b, at0, at1, at2, at3, dots) ->
                dot4(a, b * blocks, w, at0, at1, at2, at3, blocks, dots));
    }

    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[4 * 8]);
    private static final ThreadLocal<int[]> SUMS = ThreadLocal.withInitial(() -> new int[4 * 8]);

    /**
     * Four rows at once, written out row by row ({@link Int4Gemv#dot4} says why). A plane's codes less 32 are signed
     * (-32..31): subtracting 0x00200020 from the two 6-bit halves gives the int n_a + 65536 n_b, whose product with the
     * pair b + 65536 a is n_a b + 65536 (n_a a + n_b b) as before. A run's two planes are four products a lane: the two
     * low halves at most 2 x 32 x 127 either way, so adding 2^15 and shifting right by 16 leaves the lane's exact sum
     * (|.| <= 16,256), which its int8 scale multiplies; a lane's super-block sum stays below 2^24, exact as an f32.
     */
    private static void dot4(Activations a, int s0, MemorySegment w, long r0, long r1, long r2, long r3, int blocks, float[] result) {
        float[] acc = ACCUMULATORS.get();
        int[] sums = SUMS.get();
        java.util.Arrays.fill(acc, 0f);
        int[] xp = a.pairs();
        for (int s = 0; s < blocks; s++) {
            long sb = (long) BLOCK_BYTES * s;
            java.util.Arrays.fill(sums, 0);
            for (int h = 0; h < 2; h++) {
                for (int r = 0; r < 4; r++) {
                    int x0 = 128 * (s0 + s) + 64 * h + 16 * r;
                    IntVector p0 = IntVector.fromArray(I, xp, x0), p1 = IntVector.fromArray(I, xp, x0 + 8);
                    long ql = sb + 64L * h + 32L * (r % 2), qh = sb + 128 + 32L * h, scales = sb + 192 + 8L * h + 2 * r;
                    int nibble = 4 * (r / 2), bits = 2 * r;
                    IntVector v, u, t;
                    v = IntVector.fromMemorySegment(I, w, r0 + ql, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, nibble);
                    u = IntVector.fromMemorySegment(I, w, r0 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, bits);
                    t = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(0x00300030)).sub(0x00200020).mul(p0)
                            .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(0x00300030)).sub(0x00200020).mul(p1));
                    t.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(IntVector.broadcast(I, w.get(ValueLayout.JAVA_BYTE, r0 + scales))
                            .blend(w.get(ValueLayout.JAVA_BYTE, r0 + scales + 1), SECOND_SCALE))
                            .add(IntVector.fromArray(I, sums, 0)).intoArray(sums, 0);
                    v = IntVector.fromMemorySegment(I, w, r1 + ql, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, nibble);
                    u = IntVector.fromMemorySegment(I, w, r1 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, bits);
                    t = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(0x00300030)).sub(0x00200020).mul(p0)
                            .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(0x00300030)).sub(0x00200020).mul(p1));
                    t.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(IntVector.broadcast(I, w.get(ValueLayout.JAVA_BYTE, r1 + scales))
                            .blend(w.get(ValueLayout.JAVA_BYTE, r1 + scales + 1), SECOND_SCALE))
                            .add(IntVector.fromArray(I, sums, 8)).intoArray(sums, 8);
                    v = IntVector.fromMemorySegment(I, w, r2 + ql, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, nibble);
                    u = IntVector.fromMemorySegment(I, w, r2 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, bits);
                    t = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(0x00300030)).sub(0x00200020).mul(p0)
                            .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(0x00300030)).sub(0x00200020).mul(p1));
                    t.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(IntVector.broadcast(I, w.get(ValueLayout.JAVA_BYTE, r2 + scales))
                            .blend(w.get(ValueLayout.JAVA_BYTE, r2 + scales + 1), SECOND_SCALE))
                            .add(IntVector.fromArray(I, sums, 16)).intoArray(sums, 16);
                    v = IntVector.fromMemorySegment(I, w, r3 + ql, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, nibble);
                    u = IntVector.fromMemorySegment(I, w, r3 + qh, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, bits);
                    t = v.and(0x000F000F).or(u.lanewise(VectorOperators.LSHL, 4).and(0x00300030)).sub(0x00200020).mul(p0)
                            .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).or(u.lanewise(VectorOperators.LSHR, 4).and(0x00300030)).sub(0x00200020).mul(p1));
                    t.add(0x8000).lanewise(VectorOperators.ASHR, 16).mul(IntVector.broadcast(I, w.get(ValueLayout.JAVA_BYTE, r3 + scales))
                            .blend(w.get(ValueLayout.JAVA_BYTE, r3 + scales + 1), SECOND_SCALE))
                            .add(IntVector.fromArray(I, sums, 24)).intoArray(sums, 24);
                }
            }
            float xs = a.scales()[s0 + s];
            scaleInto(acc, 0, sums, w, r0 + sb, xs);
            scaleInto(acc, 8, sums, w, r1 + sb, xs);
            scaleInto(acc, 16, sums, w, r2 + sb, xs);
            scaleInto(acc, 24, sums, w, r3 + sb, xs);
        }
        LaneSums.sum4(F, acc, 0, result, 0);
    }

    /**
     * acc[at, at + 8) += a row's super-block (the block at {@code block}): its integer lane sums times d and the
     * activations' scale; lane by lane, as the row's lanes are summed at the end. Arrays, not vectors, as arguments: C2
     * boxes a vector argument of a call it does not inline.
     */
    private static void scaleInto(float[] acc, int at, int[] sums, MemorySegment w, long block, float xs) {
        FloatVector lanes = (FloatVector) IntVector.fromArray(I, sums, at).convert(VectorOperators.I2F, 0);
        float scale = Float.float16ToFloat(w.get(F16_LE, block + 208)) * xs;
        lanes.fma(FloatVector.broadcast(F, scale), FloatVector.fromArray(F, acc, at)).intoArray(acc, at);
    }
}
