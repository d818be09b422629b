package io.lightllm.kernels.jvm;

import io.lightllm.kernels.QuantBlocks;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decode-sized (m < 4) products of int4 rows (INT4 and INT4_ZP blocks of 128) on the JVM with int8 activations, as
 * llama.cpp's Q4 x Q8 and Jlama's Q4 paths do: each 128-element group of an activation row is quantised to int8 with
 * its own scale (max |x| / 127, round half to even), and a group's 128 codes meet its activations as exact integer
 * products, two to a 32-bit multiply (see {@link #dot4}), summed per group and scaled once into the row's f32
 * accumulator. Against the float path (decode each nibble to f32, then an FMA) this halves the vector operations per
 * code: on the AVX-512 machine the int4 GEMV ran 1.3x faster from cache.
 * Rows go to the threads in runs, four rows a quarter of a run apart at a time ({@link RowRuns#forEachQuad}, {@link #dot4}).
 *
 * <p>The price is the activations' rounding: the result is the exact product with activations x^ where
 * |x - x^| <= scale / 2 per element, so it differs from the f32 product by at most sum over groups of
 * scale_g / 2 * sum |w| (the bound {@code QuantMatmulTest} checks). {@code -Dlightllm.jvm.int4.q8=false} keeps f32
 * activations (the float path of {@link VectorQuantMatmul}).
 *
 * <p>Layout: a group's 64 code bytes read as 16 little-endian ints are 32 shorts, short s holding the codes of
 * elements 2s (bits 0-3) and 64 + 2s (4-7), 2s + 1 (8-11) and 65 + 2s (12-15) (byte b: element b low, 64 + b high).
 * An int lane shifted by 4p and masked with 0x000F000F leaves nibble p of both its shorts (plane p), and the activations
 * are laid out to match ({@link #quantize}): plane p's int j holds the codes its two nibbles meet as one int.
 */
final class Int4Gemv {
    static final boolean ENABLED = Boolean.parseBoolean(System.getProperty("lightllm.jvm.int4.q8", "true"));
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_512;
    /** The 256-bit shapes of {@link #dot4Halves}. */
    private static final VectorSpecies<Float> HALF_F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> HALF_I = IntVector.SPECIES_256;
    /** Whether the JIT compiles 512-bit vectors here (AVX-512); else the 256-bit forms run (AVX2). */
    private static final boolean WIDE = FloatVector.SPECIES_PREFERRED.length() == 16;
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Int4Gemv() {
    }

    /** Whether this path runs here: 512-bit vectors (16 floats, 32 shorts), or 256-bit ones ({@link #dot4Halves}). */
    static boolean available() {
        return ENABLED && (WIDE || FloatVector.SPECIES_PREFERRED.length() == 8);
    }

    /**
     * The int8 activations of rows [m, k] (k a multiple of 128) as the pairs {@link #dot4} multiplies (per group, plane p's
     * int j: the codes of the two nibbles p of weight int j, as b + 65536 a), their scales [m, k / 128] and code sums.
     */
    record Activations(int[] pairs, float[] scales, float[] codeSums) {
    }

    /** Adding and subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to an integer, half to even (as Math.rint). */
    private static final float ROUNDER = 0x1.8p23f;
    /** Lanes 0, 2, .., 30 (and 1, 3, .., 31) of two vectors: indexes past the first name the second. */
    private static final VectorShuffle<Float> EVENS = VectorShuffle.fromOp(F, i -> 2 * i), ODDS = VectorShuffle.fromOp(F, i -> 2 * i + 1);
    private static final VectorSpecies<Short> HALF_SHORTS = ShortVector.SPECIES_256;

    static Activations quantize(float[] x, int m, int k) {
        return WIDE ? quantizeVector(x, m, k) : quantizeScalar(x, m, k);
    }

    /** {@link #quantize} in 512-bit vectors. */
    static Activations quantizeVector(float[] x, int m, int k) {
        int groups = m * k / 128;
        short[] codes = new short[m * k];
        float[] scales = new float[groups], sums = new float[groups];
        for (int g = 0; g < groups; g++) {
            int base = 128 * g;
            FloatVector max = FloatVector.zero(F);
            for (int j = 0; j < 128; j += F.length()) {
                max = max.max(FloatVector.fromArray(F, x, base + j).abs());
            }
            float largest = max.reduceLanes(VectorOperators.MAX);
            float scale = largest / 127, inverse = largest == 0 ? 0 : 127 / largest;
            FloatVector sum = FloatVector.zero(F);
            // into nibble order (see the class comment): short 32p + s holds element (p odd ? 64 : 0) + 2s + p / 2,
            // i.e. plane p takes the even (p < 2) or odd elements of the first (p even) or second half
            for (int half = 0; half < 2; half++) {
                int from = base + 64 * half;
                FloatVector v0 = FloatVector.fromArray(F, x, from).mul(inverse).add(ROUNDER).sub(ROUNDER);
                FloatVector v1 = FloatVector.fromArray(F, x, from + 16).mul(inverse).add(ROUNDER).sub(ROUNDER);
                FloatVector v2 = FloatVector.fromArray(F, x, from + 32).mul(inverse).add(ROUNDER).sub(ROUNDER);
                FloatVector v3 = FloatVector.fromArray(F, x, from + 48).mul(inverse).add(ROUNDER).sub(ROUNDER);
                sum = sum.add(v0).add(v1).add(v2).add(v3);
                int even = base + 32 * half, odd = even + 64;
                v0.rearrange(EVENS, v1).convertShape(VectorOperators.F2S, HALF_SHORTS, 0).reinterpretAsShorts().intoArray(codes, even);
                v2.rearrange(EVENS, v3).convertShape(VectorOperators.F2S, HALF_SHORTS, 0).reinterpretAsShorts().intoArray(codes, even + 16);
                v0.rearrange(ODDS, v1).convertShape(VectorOperators.F2S, HALF_SHORTS, 0).reinterpretAsShorts().intoArray(codes, odd);
                v2.rearrange(ODDS, v3).convertShape(VectorOperators.F2S, HALF_SHORTS, 0).reinterpretAsShorts().intoArray(codes, odd + 16);
            }
            scales[g] = scale;
            sums[g] = LaneSums.sum(sum);
        }
        // each int of shorts (a, b) as the int b + 65536 a, the pair of activations a plane's int meets (dot4)
        int[] pairs = new int[m * k / 2];
        for (int i = 0; i < pairs.length; i += I.length()) {
            IntVector v = ShortVector.fromArray(S, codes, 2 * i).reinterpretAsInts();
            v.lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.LSHL, 16)).intoArray(pairs, i);
        }
        return new Activations(pairs, scales, sums);
    }

    /**
     * {@link #quantize} a lane at a time, for machines without 512-bit vectors (where the Vector API would emulate the
     * 512-bit shapes it uses): the same codes, scales and sums (whole numbers, exact in any order), the same layout. In
     * a group, short 32h + t holds element 64h + 2t and short 64 + 32h + t element 64h + 2t + 1.
     */
    static Activations quantizeScalar(float[] x, int m, int k) {
        int groups = m * k / 128;
        short[] codes = new short[m * k];
        float[] scales = new float[groups], sums = new float[groups];
        int[] q = new int[128];
        for (int g = 0; g < groups; g++) {
            int base = 128 * g;
            scales[g] = round(x, base, 128, q);
            int sum = 0;
            for (int half = 0; half < 2; half++) {
                for (int t = 0; t < 32; t++) {
                    int even = q[64 * half + 2 * t], odd = q[64 * half + 2 * t + 1];
                    codes[base + 32 * half + t] = (short) even;
                    codes[base + 64 + 32 * half + t] = (short) odd;
                    sum += even + odd;
                }
            }
            sums[g] = sum;
        }
        int[] pairs = new int[m * k / 2];
        for (int i = 0; i < pairs.length; i++) {
            pairs[i] = codes[2 * i + 1] + 65536 * codes[2 * i];
        }
        return new Activations(pairs, scales, sums);
    }

    /**
     * Rounds x[base, base + size) to int8 codes q[0, size) with one scale (max |x| / 127, half to even), which it
     * returns: a group's rounding here and in the K-quant GEMVs ({@link Q4KGemv}, {@link Q6KGemv}: llama.cpp's Q8_K).
     */
    static float round(float[] x, int base, int size, int[] q) {
        float largest = 0;
        for (int j = 0; j < size; j++) {
            largest = Math.max(largest, Math.abs(x[base + j]));
        }
        float inverse = largest == 0 ? 0 : 127 / largest;
        for (int j = 0; j < size; j++) {
            q[j] = (int) (x[base + j] * inverse + ROUNDER - ROUNDER);
        }
        return largest / 127;
    }

    /**
     * out[i, j] = x[i] . w[j] (+ bias) for m < 4 rows of x, w rows of {@code rowBytes} holding k / 128 groups in
     * {@link QuantBlocks}' int4 layout (the codes, then the scales or scale and offset pairs).
     */
    static void multiply(JvmDevice device, FloatArray out, float[] x, MemorySegment w, boolean zeroPoint, FloatArray bias, int m, int n, int k,
            long rowBytes) {
        int termBytes = QuantBlocks.int4TermBytes(zeroPoint ? QuantBlocks.INT4_ZP : QuantBlocks.INT4), groups = k / 128;
        Activations a = quantize(x, m, k);
        RowRuns.multiplyByQuads(device, out, bias, m, n, rowBytes, (b, at0, at1, at2, at3, dots) -> {
            if (WIDE) {
                dot4(a, b * groups, w, at0, at1, at2, at3, groups, termBytes, zeroPoint, dots);
            } else {
                dot4Halves(a, b * groups, w, at0, at1, at2, at3, groups, termBytes, zeroPoint, dots);
            }
        });
    }

    /** Each thread's four rows' sums of {@link #dot4}, as lanes. */
    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[4 * 16]);

    /**
     * Four rows at once (rows far apart: the quarters of a run), each row's result the sum over groups of scale_w
     * scale_x (sum of code x q) minus the offset part (8 s, or INT4_ZP's offset) times scale_x sum q. Each activation
     * load serves the four, and four sequential streams of weights are in flight. With one stream a thread, the loop, bound by its vector
     * operations, issued its loads too slowly for the hardware prefetchers to hide DRAM's latency (12 GB/s of int4
     * weights a step where the same loop reads 24 from the L3); four rows of one run side by side, 1 KB apart, were
     * slower still (the prefetchers saw no stream). A 1B model's int4 decode: 19.3 -> 22.4 tok/s (docs/benchmarks.md).
     *
     * <p>How C2 compiles it matters as much (docs/kernels.md, "What C2 makes of a Vector API loop"): the four rows' sums
     * live in an array, loaded and stored each group, because as FloatVector variables carried around the loop C2 boxed
     * each one into a fresh 64-byte array every group (hsdis showed the allocations in the loop): the GEMV ran 1.4x
     * faster without them (8,192 x 2,048: 433 -> 303 us, {@code bench/jvm-ab/KernelAb.java}, session 22); the array is the
     * thread's own, zeroed per call (a new one each call: 280-286 -> 266-267 us). The four rows stay written out: a helper
     * taking the activation vectors as arguments ran 3x slower (not inlined, so they were boxed), and a loop over the rows
     * (their offsets in an array) 1.5x slower (324 -> 489-533 us).
     */
    private static void dot4(Activations a, int g0, MemorySegment w, long rowAt, long r1, long r2, long r3, int groups, int termBytes,
            boolean zeroPoint, float[] result) {
        float[] acc = ACCUMULATORS.get();
        java.util.Arrays.fill(acc, 0f);
        float off0 = 0, off1 = 0, off2 = 0, off3 = 0;
        int[] xp = a.pairs();
        for (int g = 0; g < groups; g++) {
            long off = (long) QuantBlocks.INT4_CODE_BYTES * g, termsAt = (long) QuantBlocks.INT4_CODE_BYTES * groups + (long) termBytes * g;
            int x0 = 64 * (g0 + g);
            IntVector q0 = IntVector.fromArray(I, xp, x0), q1 = IntVector.fromArray(I, xp, x0 + 16);
            IntVector q2 = IntVector.fromArray(I, xp, x0 + 32), q3 = IntVector.fromArray(I, xp, x0 + 48);
            float xs = a.scales()[g0 + g], cs = a.codeSums()[g0 + g];
            // A plane's int holds two codes n_a + 65536 n_b; times its activation pair b + 65536 a, the high half is
            // n_a a + n_b b and the low half n_a b (|.| <= 15 x 127): the four planes' products add up (high halves to a
            // lane's 8 products, |.| <= 15,240; low halves to at most 7,620 either way), and adding 2^15 before the
            // arithmetic shift drops the low halves exactly. Against 16-bit products (vpmullw) summed and then widened
            // to ints, two operations fewer a row and group: the GEMV 2-8 % faster (docs/benchmarks.md, session 21)
            IntVector v, p;
            FloatVector products;
            float ws;
            v = IntVector.fromMemorySegment(I, w, rowAt + off, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)));
            ws = w.get(F32_LE, rowAt + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(F, ws * xs), FloatVector.fromArray(F, acc, 0)).intoArray(acc, 0);
            off0 += (zeroPoint ? w.get(F32_LE, rowAt + termsAt + 4) : 8 * ws) * xs * cs;
            v = IntVector.fromMemorySegment(I, w, r1 + off, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)));
            ws = w.get(F32_LE, r1 + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(F, ws * xs), FloatVector.fromArray(F, acc, 16)).intoArray(acc, 16);
            off1 += (zeroPoint ? w.get(F32_LE, r1 + termsAt + 4) : 8 * ws) * xs * cs;
            v = IntVector.fromMemorySegment(I, w, r2 + off, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)));
            ws = w.get(F32_LE, r2 + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(F, ws * xs), FloatVector.fromArray(F, acc, 32)).intoArray(acc, 32);
            off2 += (zeroPoint ? w.get(F32_LE, r2 + termsAt + 4) : 8 * ws) * xs * cs;
            v = IntVector.fromMemorySegment(I, w, r3 + off, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)));
            ws = w.get(F32_LE, r3 + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(F, ws * xs), FloatVector.fromArray(F, acc, 48)).intoArray(acc, 48);
            off3 += (zeroPoint ? w.get(F32_LE, r3 + termsAt + 4) : 8 * ws) * xs * cs;
        }
        LaneSums.sum4(F, acc, 0, result, 0);
        result[0] -= off0;
        result[1] -= off1;
        result[2] -= off2;
        result[3] -= off3;
    }
    /**
     * {@link #dot4} in 256-bit vectors (AVX2): a group's 16 code ints are two vectors of 8, each meeting its half of the
     * four planes' activation pairs, and both halves' products are added before the shift that drops the low halves (8
     * low halves of at most 15 x 127: 15,240, still below 2^15; the high halves' sum at most 30,480). Written out row by
     * row for the reasons dot4 gives.
     */
    private static void dot4Halves(Activations a, int g0, MemorySegment w, long rowAt, long r1, long r2, long r3, int groups, int termBytes,
            boolean zeroPoint, float[] result) {
        float[] acc = ACCUMULATORS.get();
        java.util.Arrays.fill(acc, 0f);
        float off0 = 0, off1 = 0, off2 = 0, off3 = 0;
        int[] xp = a.pairs();
        for (int g = 0; g < groups; g++) {
            long off = (long) QuantBlocks.INT4_CODE_BYTES * g, termsAt = (long) QuantBlocks.INT4_CODE_BYTES * groups + (long) termBytes * g;
            int x0 = 64 * (g0 + g);
            IntVector q0 = IntVector.fromArray(HALF_I, xp, x0), q0h = IntVector.fromArray(HALF_I, xp, x0 + 8);
            IntVector q1 = IntVector.fromArray(HALF_I, xp, x0 + 16), q1h = IntVector.fromArray(HALF_I, xp, x0 + 24);
            IntVector q2 = IntVector.fromArray(HALF_I, xp, x0 + 32), q2h = IntVector.fromArray(HALF_I, xp, x0 + 40);
            IntVector q3 = IntVector.fromArray(HALF_I, xp, x0 + 48), q3h = IntVector.fromArray(HALF_I, xp, x0 + 56);
            float xs = a.scales()[g0 + g], cs = a.codeSums()[g0 + g];
            IntVector v, u, p;
            FloatVector products;
            float ws;
            v = IntVector.fromMemorySegment(HALF_I, w, rowAt + off, ByteOrder.LITTLE_ENDIAN);
            u = IntVector.fromMemorySegment(HALF_I, w, rowAt + off + 32, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)))
                    .add(u.and(0x000F000F).mul(q0h).add(u.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1h))
                    .add(u.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2h).add(u.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3h))));
            ws = w.get(F32_LE, rowAt + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(HALF_F, ws * xs), FloatVector.fromArray(HALF_F, acc, 0)).intoArray(acc, 0);
            off0 += (zeroPoint ? w.get(F32_LE, rowAt + termsAt + 4) : 8 * ws) * xs * cs;
            v = IntVector.fromMemorySegment(HALF_I, w, r1 + off, ByteOrder.LITTLE_ENDIAN);
            u = IntVector.fromMemorySegment(HALF_I, w, r1 + off + 32, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)))
                    .add(u.and(0x000F000F).mul(q0h).add(u.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1h))
                    .add(u.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2h).add(u.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3h))));
            ws = w.get(F32_LE, r1 + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(HALF_F, ws * xs), FloatVector.fromArray(HALF_F, acc, 8)).intoArray(acc, 8);
            off1 += (zeroPoint ? w.get(F32_LE, r1 + termsAt + 4) : 8 * ws) * xs * cs;
            v = IntVector.fromMemorySegment(HALF_I, w, r2 + off, ByteOrder.LITTLE_ENDIAN);
            u = IntVector.fromMemorySegment(HALF_I, w, r2 + off + 32, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)))
                    .add(u.and(0x000F000F).mul(q0h).add(u.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1h))
                    .add(u.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2h).add(u.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3h))));
            ws = w.get(F32_LE, r2 + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(HALF_F, ws * xs), FloatVector.fromArray(HALF_F, acc, 16)).intoArray(acc, 16);
            off2 += (zeroPoint ? w.get(F32_LE, r2 + termsAt + 4) : 8 * ws) * xs * cs;
            v = IntVector.fromMemorySegment(HALF_I, w, r3 + off, ByteOrder.LITTLE_ENDIAN);
            u = IntVector.fromMemorySegment(HALF_I, w, r3 + off + 32, ByteOrder.LITTLE_ENDIAN);
            p = v.and(0x000F000F).mul(q0).add(v.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2).add(v.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3)))
                    .add(u.and(0x000F000F).mul(q0h).add(u.lanewise(VectorOperators.LSHR, 4).and(0x000F000F).mul(q1h))
                    .add(u.lanewise(VectorOperators.LSHR, 8).and(0x000F000F).mul(q2h).add(u.lanewise(VectorOperators.LSHR, 12).and(0x000F000F).mul(q3h))));
            ws = w.get(F32_LE, r3 + termsAt);
            products = p.add(0x8000).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
            products.fma(FloatVector.broadcast(HALF_F, ws * xs), FloatVector.fromArray(HALF_F, acc, 24)).intoArray(acc, 24);
            off3 += (zeroPoint ? w.get(F32_LE, r3 + termsAt + 4) : 8 * ws) * xs * cs;
        }
        LaneSums.sum4(HALF_F, acc, 0, result, 0);
        result[0] -= off0;
        result[1] -= off1;
        result[2] -= off2;
        result[3] -= off3;
    }
}
