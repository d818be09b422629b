package io.lightllm.kernels.jvm;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's matmul, {@code out[m, n] = a[m, k] · w[n, k]ᵀ (* scales[n]) (+ bias[n])}, with the
 * Vector API: the same contract as the portable Matmul kernels, much faster. Each task
 * widens a block of {@link #ROW_BLOCK} weight rows (f32, f16, bf16 or int8) to f32 once and
 * multiplies every activation row with them, four activation rows at a time, so each
 * weight element is read from memory once per call whatever {@code m} is.
 *
 * <p>Decode-sized products ({@code m < 4}) of bf16 and int8 weights skip that staging copy:
 * the weights stream from memory straight into the FMAs ({@link #streams}), which is what
 * lets a batch-1 step read its weights near the memory's bandwidth rather than at the speed
 * of the widening loop. bf16 pairs are widened without a conversion instruction: a 32-bit load
 * holds two bf16 values, the low one becomes a float by a shift and the high one by a mask, and
 * the activations are laid out to match (the even elements of each block, then the odd ones).
 */
public final class VectorMatmul {
    /** Weight rows a block (a task of the staged path; decode streams runs of blocks, {@link RowRuns}): four rows times four activation rows keep 16 accumulators in registers. */
    static final int ROW_BLOCK = 4;

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = F.length();
    /** Species with one lane per float lane, for widening 16-bit and 8-bit weights (none below 256-bit vectors). */
    private static final boolean WIDEN_VECTORS = LANES >= 8;
    private static final VectorSpecies<Short> SHORTS = WIDEN_VECTORS ? VectorSpecies.of(short.class, VectorShape.forBitSize(LANES * 16)) : null;
    private static final VectorSpecies<Byte> BYTES = WIDEN_VECTORS ? VectorSpecies.of(byte.class, VectorShape.forBitSize(LANES * 8)) : null;
    private static final VectorSpecies<Integer> INTS = F.withLanes(int.class);
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** The high bf16 of a little-endian 32-bit pair, as the bits of a float. */
    private static final int HIGH_HALF = 0xFFFF0000;

    /** Each pool thread reuses its buffer of widened weight rows. */
    private static final ThreadLocal<float[]> ROWS = ThreadLocal.withInitial(() -> new float[0]);

    private VectorMatmul() {
    }

    /**
     * Computes the product on {@code device}'s threads. {@code scales} (int8 weights) and
     * {@code bias} may be null.
     */
    public static void multiply(JvmDevice device, FloatArray out, FloatArray a, NativeArray w, FloatArray scales, FloatArray bias,
            int m, int n, int k) {
        float[] act = activations(a, m, k);
        if (streams(w, m)) {
            float[] x = w.dtype() == DType.I8 ? act : evenOddBlocks(act, m, k);
            // four rows a quarter of a run apart: four sequential streams for the prefetchers, where four neighbouring
            // rows (2 KB apart for int8 at k = 2,048) were not seen as streams (1B decode: int8 14 -> 18.3 tok/s, bf16 +5 %)
            RowRuns.forEachQuad(device, n, (long) k * w.dtype().bytes(),
                    (first, count, step) -> streamRows(out, x, w, scales, bias, m, n, k, first, count, step));
            return;
        }
        staged(device, out, act, (row, dst, at) -> widen(w, (long) row * k, k, dst, at), scales, bias, m, n, k);
    }

    /** Writes weight row {@code row} (k floats) into {@code dst} from {@code at}. */
    @FunctionalInterface
    interface RowSource {
        void widen(int row, float[] dst, int at);
    }

    /**
     * The product with weight rows widened to f32 by {@code rows}, a block of {@link #ROW_BLOCK} rows per
     * task into a per-thread buffer, each row read from memory once whatever {@code m} is.
     */
    static void staged(JvmDevice device, FloatArray out, float[] act, RowSource rows, FloatArray scales, FloatArray bias,
            int m, int n, int k) {
        if (OuterProductGemm.applies(m)) {
            OuterProductGemm.multiply(device, out, act, rows, scales, bias, m, n, k);
            return;
        }
        device.parallelFor((n + ROW_BLOCK - 1) / ROW_BLOCK, t -> {
            int j0 = t * ROW_BLOCK;
            multiplyRows(out, act, rows, scales, bias, m, n, k, j0, Math.min(ROW_BLOCK, n - j0));
        });
    }

    private static void multiplyRows(FloatArray out, float[] act, RowSource source, FloatArray scales, FloatArray bias,
            int m, int n, int k, int j0, int rows) {
        float[] wRows = ROWS.get();
        if (wRows.length < ROW_BLOCK * k) {
            wRows = new float[ROW_BLOCK * k];
            ROWS.set(wRows);
        }
        for (int r = 0; r < rows; r++) {
            source.widen(j0 + r, wRows, r * k);
        }
        float[] sums = new float[ROW_BLOCK * 4];
        if (rows == ROW_BLOCK) {
            int i = 0;
            for (; i + 4 <= m; i += 4) {
                dot4x4(act, i * k, wRows, k, sums);
                for (int ii = 0; ii < 4; ii++) {
                    for (int r = 0; r < ROW_BLOCK; r++) {
                        store(out, scales, bias, n, i + ii, j0 + r, sums[ii * ROW_BLOCK + r]);
                    }
                }
            }
            for (; i < m; i++) {
                dot1x4(act, i * k, wRows, k, sums);
                for (int r = 0; r < ROW_BLOCK; r++) {
                    store(out, scales, bias, n, i, j0 + r, sums[r]);
                }
            }
        } else {
            for (int i = 0; i < m; i++) {
                for (int r = 0; r < rows; r++) {
                    store(out, scales, bias, n, i, j0 + r, dot(act, i * k, wRows, r * k, k));
                }
            }
        }
    }

    /** The activations [m, k] as a heap array, which the loops index fastest. */
    static float[] activations(FloatArray a, int m, int k) {
        float[] act = new float[m * k];
        MemorySegment.copy(a.segment(), ValueLayout.JAVA_FLOAT_UNALIGNED, 0, act, 0, m * k);
        return act;
    }

    // ---- streaming weights (m < 4) ---------------------------------------------------------

    /** Whether the weights go straight into the FMAs: small m, a vector width that widens, bf16 (pairs as above) or int8. */
    static boolean streams(NativeArray w, int m) {
        return WIDEN_VECTORS && m < 4
                && ((w.dtype() == DType.BF16 || w.dtype() == DType.F16) && ORDER == ByteOrder.LITTLE_ENDIAN || w.dtype() == DType.I8);
    }

    /**
     * The activations in the order {@link #dotBf16} and {@link #dotF16} read them: in each block of two vectors'
     * length, the even elements then the odd ones. The tail after the last block stays in order.
     */
    static float[] evenOddBlocks(float[] act, int m, int k) {
        float[] x = act.clone();
        int block = 2 * LANES;
        for (int row = 0; row < m; row++) {
            for (int b = row * k, end = b + k - k % block; b < end; b += block) {
                for (int i = 0; i < LANES; i++) {
                    x[b + i] = act[b + 2 * i];
                    x[b + LANES + i] = act[b + 2 * i + 1];
                }
            }
        }
        return x;
    }

    /** Weight rows j0, j0 + step, .. ({@code rows} of them, at most four) times each activation row. */
    private static void streamRows(FloatArray out, float[] x, NativeArray w, FloatArray scales, FloatArray bias,
            int m, int n, int k, int j0, int rows, int step) {
        MemorySegment seg = w.segment();
        DType type = w.dtype();
        float[] sums = new float[ROW_BLOCK];
        for (int i = 0; i < m; i++) {
            if (rows == ROW_BLOCK) {
                switch (type) {
                    case BF16 -> dotBf16x4(x, i * k, seg, (long) j0 * k, (long) step * k, k, sums);
                    case F16 -> dotF16x4(x, i * k, seg, (long) j0 * k, (long) step * k, k, sums);
                    default -> dotI8x4(x, i * k, seg, (long) j0 * k, (long) step * k, k, sums);
                }
            } else {
                for (int r = 0; r < rows; r++) {
                    long w0 = (long) (j0 + r * step) * k;
                    sums[r] = switch (type) {
                        case BF16 -> dotBf16(x, i * k, seg, w0, k);
                        case F16 -> dotF16(x, i * k, seg, w0, k);
                        default -> dotI8(x, i * k, seg, w0, k);
                    };
                }
            }
            for (int r = 0; r < rows; r++) {
                store(out, scales, bias, n, i, j0 + r * step, sums[r]);
            }
        }
    }

    /** bf16 weights from element {@code w0}: the low half of a 32-bit word shifted up is a float, the high half masked is one. */
    private static float dotBf16(float[] x, int xOff, MemorySegment w, long w0, int k) {
        FloatVector even = FloatVector.zero(F), odd = even;
        int block = 2 * LANES, i = 0;
        for (; i + block <= k; i += block) {
            IntVector pairs = IntVector.fromMemorySegment(INTS, w, 2 * (w0 + i), ORDER);
            even = FloatVector.fromArray(F, x, xOff + i).fma(pairs.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), even);
            odd = FloatVector.fromArray(F, x, xOff + i + LANES).fma(pairs.and(HIGH_HALF).reinterpretAsFloats(), odd);
        }
        return LaneSums.sum(even.add(odd)) + tailBf16(x, xOff, w, w0, i, k);
    }

    private static float tailBf16(float[] x, int xOff, MemorySegment w, long w0, int from, int k) {
        float s = 0;
        for (int i = from; i < k; i++) {
            s += x[xOff + i] * Float.intBitsToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * (w0 + i)) << 16);
        }
        return s;
    }

    /** Four bf16 weight rows from element {@code w0} ({@code stride} elements apart) times one activation row: sums[r]. */
    private static void dotBf16x4(float[] x, int xOff, MemorySegment w, long w0, long stride, int k, float[] sums) {
        FloatVector e0 = FloatVector.zero(F), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        long b0 = 2 * w0, b1 = b0 + 2 * stride, b2 = b1 + 2 * stride, b3 = b2 + 2 * stride;
        int block = 2 * LANES, i = 0;
        for (; i + block <= k; i += block) {
            FloatVector xe = FloatVector.fromArray(F, x, xOff + i);
            FloatVector xo = FloatVector.fromArray(F, x, xOff + i + LANES);
            IntVector p0 = IntVector.fromMemorySegment(INTS, w, b0 + 2L * i, ORDER);
            IntVector p1 = IntVector.fromMemorySegment(INTS, w, b1 + 2L * i, ORDER);
            IntVector p2 = IntVector.fromMemorySegment(INTS, w, b2 + 2L * i, ORDER);
            IntVector p3 = IntVector.fromMemorySegment(INTS, w, b3 + 2L * i, ORDER);
            e0 = xe.fma(p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), e0);
            o0 = xo.fma(p0.and(HIGH_HALF).reinterpretAsFloats(), o0);
            e1 = xe.fma(p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), e1);
            o1 = xo.fma(p1.and(HIGH_HALF).reinterpretAsFloats(), o1);
            e2 = xe.fma(p2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), e2);
            o2 = xo.fma(p2.and(HIGH_HALF).reinterpretAsFloats(), o2);
            e3 = xe.fma(p3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), e3);
            o3 = xo.fma(p3.and(HIGH_HALF).reinterpretAsFloats(), o3);
        }
        LaneSums.sum4(e0.add(o0), e1.add(o1), e2.add(o2), e3.add(o3), sums, 0);
        sums[0] += tailBf16(x, xOff, w, w0, i, k);
        sums[1] += tailBf16(x, xOff, w, w0 + stride, i, k);
        sums[2] += tailBf16(x, xOff, w, w0 + 2 * stride, i, k);
        sums[3] += tailBf16(x, xOff, w, w0 + 3 * stride, i, k);
    }

    /** 2^112: an f16's exponent and mantissa moved into an f32's place read as the value times 2^-112. */
    private static final float F16_REBIAS = 0x1p112f;
    /** An f32's sign and the bits an f16's exponent and mantissa take in it (shifted right by 3 from the f16's place). */
    private static final int F16_IN_F32 = 0x8FFFE000;

    /**
     * f16 weights from element {@code w0}, streamed as {@link #dotBf16} streams bf16: a 32-bit word holds an even and
     * an odd element. Each half moved to the top of the word (the low one shifted up 16) and shifted right by 3,
     * arithmetically, puts its sign in the f32's sign and its exponent and mantissa in the f32's, the smeared sign
     * copies masked off ({@link #F16_IN_F32}): the value times 2^-112, exact for normals, subnormals and zeros, which
     * a multiply by 2^112 puts right (per element: scaling the sum instead would leave products of small activations
     * in f32's subnormal range). Four operations a vector where the staged path's widening took eight and a store, so
     * batch-1 decode of f16 weights streams nearly like bf16. Every finite f16 comes out exact; an infinity or NaN (exponent
     * 31) reads as a finite value of magnitude 65,536 to 131,008, which no valid checkpoint holds (the staged path and
     * the portable kernels keep them).
     */
    private static float dotF16(float[] x, int xOff, MemorySegment w, long w0, int k) {
        FloatVector even = FloatVector.zero(F), odd = even, rebias = FloatVector.broadcast(F, F16_REBIAS);
        int block = 2 * LANES, i = 0;
        // kept in expressions, not helper methods: a helper left the JIT on the Vector API's Java fallback (2x slower)
        for (; i + block <= k; i += block) {
            IntVector pairs = IntVector.fromMemorySegment(INTS, w, 2 * (w0 + i), ORDER);
            FloatVector low = pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats();
            FloatVector high = pairs.lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats();
            even = FloatVector.fromArray(F, x, xOff + i).fma(low.mul(rebias), even);
            odd = FloatVector.fromArray(F, x, xOff + i + LANES).fma(high.mul(rebias), odd);
        }
        return LaneSums.sum(even.add(odd)) + tailF16(x, xOff, w, w0, i, k);
    }

    private static float tailF16(float[] x, int xOff, MemorySegment w, long w0, int from, int k) {
        float s = 0;
        for (int i = from; i < k; i++) {
            s += x[xOff + i] * Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * (w0 + i)));
        }
        return s;
    }

    /**
     * Four f16 weight rows from element {@code w0} ({@code stride} elements apart) times one activation row: sums[r]. The loop
     * of {@link #dotBf16x4} with f16's conversion written out, not shared through a conversion helper: a helper
     * returning a vector left the JIT on the Vector API's Java fallback (half the speed).
     */
    private static void dotF16x4(float[] x, int xOff, MemorySegment w, long w0, long stride, int k, float[] sums) {
        FloatVector e0 = FloatVector.zero(F), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        FloatVector rebias = FloatVector.broadcast(F, F16_REBIAS);
        long b0 = 2 * w0, b1 = b0 + 2 * stride, b2 = b1 + 2 * stride, b3 = b2 + 2 * stride;
        int block = 2 * LANES, i = 0;
        for (; i + block <= k; i += block) {
            FloatVector xe = FloatVector.fromArray(F, x, xOff + i);
            FloatVector xo = FloatVector.fromArray(F, x, xOff + i + LANES);
            IntVector p0 = IntVector.fromMemorySegment(INTS, w, b0 + 2L * i, ORDER);
            IntVector p1 = IntVector.fromMemorySegment(INTS, w, b1 + 2L * i, ORDER);
            IntVector p2 = IntVector.fromMemorySegment(INTS, w, b2 + 2L * i, ORDER);
            IntVector p3 = IntVector.fromMemorySegment(INTS, w, b3 + 2L * i, ORDER);
            e0 = xe.fma(p0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), e0);
            o0 = xo.fma(p0.lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), o0);
            e1 = xe.fma(p1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), e1);
            o1 = xo.fma(p1.lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), o1);
            e2 = xe.fma(p2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), e2);
            o2 = xo.fma(p2.lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), o2);
            e3 = xe.fma(p3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), e3);
            o3 = xo.fma(p3.lanewise(VectorOperators.ASHR, 3).and(F16_IN_F32).reinterpretAsFloats().mul(rebias), o3);
        }
        LaneSums.sum4(e0.add(o0), e1.add(o1), e2.add(o2), e3.add(o3), sums, 0);
        sums[0] += tailF16(x, xOff, w, w0, i, k);
        sums[1] += tailF16(x, xOff, w, w0 + stride, i, k);
        sums[2] += tailF16(x, xOff, w, w0 + 2 * stride, i, k);
        sums[3] += tailF16(x, xOff, w, w0 + 3 * stride, i, k);
    }

    private static float dotI8(float[] x, int xOff, MemorySegment w, long w0, int k) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(k); i < bound; i += LANES) {
            FloatVector v = (FloatVector) ByteVector.fromMemorySegment(BYTES, w, w0 + i, ORDER).convertShape(VectorOperators.B2F, F, 0);
            acc = FloatVector.fromArray(F, x, xOff + i).fma(v, acc);
        }
        return LaneSums.sum(acc) + tailI8(x, xOff, w, w0, i, k);
    }

    private static float tailI8(float[] x, int xOff, MemorySegment w, long w0, int from, int k) {
        float s = 0;
        for (int i = from; i < k; i++) {
            s += x[xOff + i] * w.get(ValueLayout.JAVA_BYTE, w0 + i);
        }
        return s;
    }

    /** Four int8 weight rows (unscaled: {@link #store} applies the scales) times one activation row. */
    private static void dotI8x4(float[] x, int xOff, MemorySegment w, long w0, long stride, int k, float[] sums) {
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0;
        long b1 = w0 + stride, b2 = b1 + stride, b3 = b2 + stride;
        int i = 0;
        for (int bound = F.loopBound(k); i < bound; i += LANES) {
            FloatVector v = FloatVector.fromArray(F, x, xOff + i);
            c0 = v.fma((FloatVector) ByteVector.fromMemorySegment(BYTES, w, w0 + i, ORDER).convertShape(VectorOperators.B2F, F, 0), c0);
            c1 = v.fma((FloatVector) ByteVector.fromMemorySegment(BYTES, w, b1 + i, ORDER).convertShape(VectorOperators.B2F, F, 0), c1);
            c2 = v.fma((FloatVector) ByteVector.fromMemorySegment(BYTES, w, b2 + i, ORDER).convertShape(VectorOperators.B2F, F, 0), c2);
            c3 = v.fma((FloatVector) ByteVector.fromMemorySegment(BYTES, w, b3 + i, ORDER).convertShape(VectorOperators.B2F, F, 0), c3);
        }
        LaneSums.sum4(c0, c1, c2, c3, sums, 0);
        sums[0] += tailI8(x, xOff, w, w0, i, k);
        sums[1] += tailI8(x, xOff, w, b1, i, k);
        sums[2] += tailI8(x, xOff, w, b2, i, k);
        sums[3] += tailI8(x, xOff, w, b3, i, k);
    }

    private static void store(FloatArray out, FloatArray scales, FloatArray bias, int n, int i, int j, float sum) {
        float v = scales == null ? sum : sum * scales.get(j);
        out.set(i * n + j, bias == null ? v : v + bias.get(j));
    }

    // ---- widening weights to f32 ----------------------------------------------------------

    /** Copies {@code count} elements of {@code w} from element {@code from} into {@code dst} as floats. */
    static void widen(NativeArray w, long from, int count, float[] dst, int dstOffset) {
        MemorySegment seg = w.segment();
        switch (w.dtype()) {
            case F32 -> MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT_UNALIGNED, from * 4, dst, dstOffset, count);
            case BF16 -> widenBf16(seg, from * 2, count, dst, dstOffset);
            case F16 -> widenF16(seg, from * 2, count, dst, dstOffset);
            case I8 -> widenI8(seg, from, count, dst, dstOffset);
            case F8_E4M3 -> widenE4m3(seg, from, count, dst, dstOffset);
            default -> throw new IllegalArgumentException("matmul weights cannot be " + w.dtype());
        }
    }

    /** Every e4m3 code's value (KMath.e4m3ToFloat, the format's one definition), indexed by the code as an unsigned byte. */
    private static final float[] E4M3_VALUES = new float[256];

    static {
        for (int c = 0; c < 256; c++) {
            E4M3_VALUES[c] = KMath.e4m3ToFloat((byte) c);
        }
    }

    /** fp8 e4m3 (an fp8 KV pool's rows) by table: the Vector API has no fp8 conversion. */
    private static void widenE4m3(MemorySegment seg, long byteOffset, int count, float[] dst, int dstOffset) {
        for (int i = 0; i < count; i++) {
            dst[dstOffset + i] = E4M3_VALUES[seg.get(ValueLayout.JAVA_BYTE, byteOffset + i) & 0xff];
        }
    }

    /** bf16 is the high half of an f32: widen to int, shift left by 16, reinterpret. */
    private static void widenBf16(MemorySegment seg, long byteOffset, int count, float[] dst, int dstOffset) {
        int i = 0;
        if (WIDEN_VECTORS) {
            for (int bound = F.loopBound(count); i < bound; i += LANES) {
                ShortVector s = ShortVector.fromMemorySegment(SHORTS, seg, byteOffset + 2L * i, ORDER);
                IntVector bits = (IntVector) s.convertShape(VectorOperators.S2I, INTS, 0);
                bits.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstOffset + i);
            }
        }
        for (; i < count; i++) {
            dst[dstOffset + i] = Float.intBitsToFloat(seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, byteOffset + 2L * i) << 16);
        }
    }

    /**
     * f16 in vectors (the Vector API has no half-float conversion): the exponent and mantissa
     * shifted into an f32's place and multiplied by 2^112 (the exponent bias difference) gives
     * normal and subnormal values exactly; infinities and NaNs get the all-ones exponent (NaNs made
     * quiet); the sign is put back. The tail goes through Float.float16ToFloat.
     */
    private static void widenF16(MemorySegment seg, long byteOffset, int count, float[] dst, int dstOffset) {
        int i = 0;
        if (WIDEN_VECTORS) {
            FloatVector bias = FloatVector.broadcast(F, 0x1p112f);
            for (int bound = F.loopBound(count); i < bound; i += LANES) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(SHORTS, seg, byteOffset + 2L * i, ORDER)
                        .convertShape(VectorOperators.ZERO_EXTEND_S2I, INTS, 0);
                IntVector magnitude = h.and(0x7fff);
                FloatVector value = magnitude.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(bias);
                // infinities keep a zero mantissa; NaNs come out quiet, as Float.float16ToFloat gives them
                IntVector special = magnitude.lanewise(VectorOperators.LSHL, 13).or(0x7f800000)
                        .or(IntVector.zero(INTS).blend(0x00400000, magnitude.compare(VectorOperators.GT, 0x7c00)));
                IntVector bits = value.reinterpretAsInts().blend(special, magnitude.compare(VectorOperators.GE, 0x7c00))
                        .or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16));
                bits.reinterpretAsFloats().intoArray(dst, dstOffset + i);
            }
        }
        for (; i < count; i++) {
            dst[dstOffset + i] = Float.float16ToFloat(seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, byteOffset + 2L * i));
        }
    }

    private static void widenI8(MemorySegment seg, long byteOffset, int count, float[] dst, int dstOffset) {
        int i = 0;
        if (WIDEN_VECTORS) {
            for (int bound = F.loopBound(count); i < bound; i += LANES) {
                ByteVector b = ByteVector.fromMemorySegment(BYTES, seg, byteOffset + i, ORDER);
                ((FloatVector) b.convertShape(VectorOperators.B2F, F, 0)).intoArray(dst, dstOffset + i);
            }
        }
        for (; i < count; i++) {
            dst[dstOffset + i] = seg.get(ValueLayout.JAVA_BYTE, byteOffset + i);
        }
    }

    // ---- dot products --------------------------------------------------------------------

    /** x[xOff..] · w[wOff..] over k elements (also VectorAttention's q · k). */
    static float dot(float[] x, int xOff, float[] w, int wOff, int k) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(k); i < bound; i += LANES) {
            acc = FloatVector.fromArray(F, x, xOff + i).fma(FloatVector.fromArray(F, w, wOff + i), acc);
        }
        float s = LaneSums.sum(acc);
        for (; i < k; i++) {
            s += x[xOff + i] * w[wOff + i];
        }
        return s;
    }

    /** Each thread's 16 accumulators of {@link #dot4x4}, as lanes. */
    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[16 * LANES]);

    /**
     * sums[4 row + r] = the lane sum of accumulator 4 row + r (lanes[(4 row + r) * LANES ..]), lane 0 first, one add at a
     * time: the same order in every JIT tier (Java's float adds are not reordered). Through LaneSums.sum4, C2 boxed the
     * 16 vectors handed to it (not inlined here: JFR showed 15 GB of 64-byte arrays in a 1B batch-8 run), and the 256
     * scalar adds cost less: 8 x 2048 x 2048 bf16 on 2 cores 530 -> 424 us and 490 -> 435, 8 x 8192 x 2048 2986 -> 2157
     * (KernelAb, session 22); inside the 1B model's batch-8 step the GEMVs went only 157.7 -> 152.3 ms a step.
     */
    private static void sum4x4(float[] lanes, float[] sums) {
        for (int c = 0; c < 16; c++) {
            float sum = 0f;
            for (int l = 0; l < LANES; l++) {
                sum += lanes[c * LANES + l];
            }
            sums[c] = sum;
        }
    }

    /** One activation row times the four weight rows of {@code w}: sums[r]. */
    private static void dot1x4(float[] x, int xOff, float[] w, int k, float[] sums) {
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0;
        int i = 0;
        for (int bound = F.loopBound(k); i < bound; i += LANES) {
            FloatVector v = FloatVector.fromArray(F, x, xOff + i);
            c0 = v.fma(FloatVector.fromArray(F, w, i), c0);
            c1 = v.fma(FloatVector.fromArray(F, w, k + i), c1);
            c2 = v.fma(FloatVector.fromArray(F, w, 2 * k + i), c2);
            c3 = v.fma(FloatVector.fromArray(F, w, 3 * k + i), c3);
        }
        LaneSums.sum4(c0, c1, c2, c3, sums, 0);
        for (; i < k; i++) {
            for (int r = 0; r < 4; r++) {
                sums[r] += x[xOff + i] * w[r * k + i];
            }
        }
    }

    /** Four activation rows from {@code xOff} times the four weight rows of {@code w}: sums[row * 4 + r]. */
    private static void dot4x4(float[] x, int xOff, float[] w, int k, float[] sums) {
        FloatVector c00 = FloatVector.zero(F), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int x1 = xOff + k, x2 = x1 + k, x3 = x2 + k;
        int i = 0;
        for (int bound = F.loopBound(k); i < bound; i += LANES) {
            FloatVector w0 = FloatVector.fromArray(F, w, i);
            FloatVector w1 = FloatVector.fromArray(F, w, k + i);
            FloatVector w2 = FloatVector.fromArray(F, w, 2 * k + i);
            FloatVector w3 = FloatVector.fromArray(F, w, 3 * k + i);
            FloatVector v = FloatVector.fromArray(F, x, xOff + i);
            c00 = v.fma(w0, c00);
            c01 = v.fma(w1, c01);
            c02 = v.fma(w2, c02);
            c03 = v.fma(w3, c03);
            v = FloatVector.fromArray(F, x, x1 + i);
            c10 = v.fma(w0, c10);
            c11 = v.fma(w1, c11);
            c12 = v.fma(w2, c12);
            c13 = v.fma(w3, c13);
            v = FloatVector.fromArray(F, x, x2 + i);
            c20 = v.fma(w0, c20);
            c21 = v.fma(w1, c21);
            c22 = v.fma(w2, c22);
            c23 = v.fma(w3, c23);
            v = FloatVector.fromArray(F, x, x3 + i);
            c30 = v.fma(w0, c30);
            c31 = v.fma(w1, c31);
            c32 = v.fma(w2, c32);
            c33 = v.fma(w3, c33);
        }
        // no array of vectors here: it would box them, and C2 would no longer keep them in registers. The lane sums go
        // through memory: with LaneSums' four sum4 inlined here (32 two-vector shuffles after the loop), C2's loop ran
        // 8x slower (8 x 4096 x 4096 bf16 on 2 cores: 2.2 ms with reduceLanes, 16-18 ms after; session 18)
        float[] lanes = ACCUMULATORS.get();
        c00.intoArray(lanes, 0);
        c01.intoArray(lanes, LANES);
        c02.intoArray(lanes, 2 * LANES);
        c03.intoArray(lanes, 3 * LANES);
        c10.intoArray(lanes, 4 * LANES);
        c11.intoArray(lanes, 5 * LANES);
        c12.intoArray(lanes, 6 * LANES);
        c13.intoArray(lanes, 7 * LANES);
        c20.intoArray(lanes, 8 * LANES);
        c21.intoArray(lanes, 9 * LANES);
        c22.intoArray(lanes, 10 * LANES);
        c23.intoArray(lanes, 11 * LANES);
        c30.intoArray(lanes, 12 * LANES);
        c31.intoArray(lanes, 13 * LANES);
        c32.intoArray(lanes, 14 * LANES);
        c33.intoArray(lanes, 15 * LANES);
        sum4x4(lanes, sums);
        for (; i < k; i++) {
            for (int row = 0; row < 4; row++) {
                for (int r = 0; r < 4; r++) {
                    sums[row * 4 + r] += x[xOff + row * k + i] * w[r * k + i];
                }
            }
        }
    }
}
