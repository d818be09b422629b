package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.LOCAL_SIZES;
import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.Float8Array;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class KvCacheTest {
    private static final int SLOTS = 11;
    private static final int HEADS = 3;
    private static final int HEAD_DIM = 20;
    private static final int ROW = HEADS * HEAD_DIM;
    private static final IntArray DEST = IntArray.fromArray(7, 0, 10, 3);
    private static final int TOKENS = DEST.getSize();

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void copyToPoolWritesTheDestinationSlotsOnlyAndReadsBack(String id) {
        Device dev = device(id);
        FloatArray src = random(TOKENS * ROW, 3f, 1);
        for (NativeArray initial : new NativeArray[] {fill(FloatArray.allocate(SLOTS * ROW), 1f, 2), fill(HalfArray.allocate(SLOTS * ROW), 1f, 2),
            fill(BFloat16Array.allocate(SLOTS * ROW), 1f, 2)}) {
            // expected: the initial pool with each destination row stored through the pool type's own rounding
            NativeArray expected = NativeArray.allocate(initial.dtype(), initial.getSize());
            expected.copyFrom(initial);
            for (int t = 0; t < TOKENS; t++) {
                for (int j = 0; j < ROW; j++) {
                    expected.setFloat(DEST.get(t) * ROW + j, src.get(t * ROW + j));
                }
            }
            DeviceBuffer pool = copyOf(dev, initial);
            KvCache.launchCopyToPool(dev, pool, copyOf(dev, src), copyOf(dev, DEST), TOKENS, HEADS, HEAD_DIM);
            NativeArray got = dev.download(pool);
            // a store rounds to nearest even on every backend: bit-exact
            assertClose(expected, got, 0f, 0f, "pool " + initial.dtype());

            DeviceBuffer back = dev.allocate(DType.F32, TOKENS * ROW);
            KvCache.launchGatherFromPool(dev, back, pool, copyOf(dev, DEST), TOKENS, HEADS, HEAD_DIM);
            FloatArray expectedBack = FloatArray.allocate(TOKENS * ROW);
            for (int i = 0; i < TOKENS * ROW; i++) {
                expectedBack.set(i, expected.getFloat(DEST.get(i / ROW) * ROW + i % ROW));
            }
            assertClose(expectedBack, dev.download(back), 0f, 0f, "gather from " + initial.dtype());
        }
    }

    /**
     * The fused q/k/v epilogue leaves q, k, v and both pools as the rotary kernel followed by two pool
     * copies do on the same device (themselves checked against independent references in RotaryTest
     * and above) over the three parts of a fused projection's rows: GQA heads, full and partial rotary
     * dims, both pairings, an f16 pool, a token whose slot is out of range (skipped, the pool untouched
     * there); and without rotary or pool, q, k and v are the rows' parts as they are. Bit for bit on the
     * JVM; a GPU compiler may contract x0 cos - x1 sin into an fma in one kernel and not the other
     * (1 ulp seen on an H100), so there q and k get RotaryTest's bound and the f16 pools one f16 ulp
     * at |x| < 2 (2^-10) on top of it.
     */
    /**
     * The JVM's override of the fused q/k/v epilogue (JvmSplitQkv: each token's cos and sin once for all heads) writes the
     * portable kernel's bits: q, k, v and a bf16 pool pair, one token (the decode step's serial path) and four (a task a
     * token), half-split and interleaved rotary over part of the head.
     */
    @Test
    void splitQkvOverrideOnTheJvmEqualsThePortableKernel() {
        try (io.lightllm.tornado.jvm.JvmDevice jvm = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(jvm);
            assertTrue(jvm.hasOverride(KvCache.SPLIT_QKV));
            splitQkvOverrideEqualsThePortableKernel(jvm);
        }
    }

    private static void splitQkvOverrideEqualsThePortableKernel(Device jvm) {
        int qHeads = 6, qRow = qHeads * HEAD_DIM, width = qRow + 2 * ROW;
        Attention.Heads heads = Attention.Heads.of(qHeads, HEADS, HEAD_DIM);
        for (int tokens : new int[] {1, TOKENS}) {
            for (boolean interleaved : new boolean[] {false, true}) {
                DeviceBuffer qkv = copyOf(jvm, random(tokens * width, 1f, 21)), positions = copyOf(jvm, IntArray.fromArray(3, 70, 512, 9));
                DeviceBuffer invFreq = copyOf(jvm, RopeScaling.none(10000).inverseFrequencies(12, 0));
                DeviceBuffer[][] out = new DeviceBuffer[2][];
                for (int run = 0; run < 2; run++) {
                    out[run] = new DeviceBuffer[] {jvm.allocate(DType.F32, tokens * qRow), jvm.allocate(DType.F32, tokens * ROW),
                            jvm.allocate(DType.F32, tokens * ROW), copyOf(jvm, fill(BFloat16Array.allocate(SLOTS * ROW), 1f, 2)),
                            copyOf(jvm, fill(BFloat16Array.allocate(SLOTS * ROW), 1f, 3))};
                    KvCache.QkvSplit split = new KvCache.QkvSplit(out[run][0], out[run][1], out[run][2], positions,
                            new Rotary.Rope(invFreq, 12, interleaved, 1.25f), out[run][3], out[run][4], copyOf(jvm, DEST), heads);
                    if (run == 0) {
                        jvm.launchPortable(KvCache.SPLIT_QKV, Grid.of(tokens, qHeads + 2 * HEADS, HEAD_DIM / 2), split.kernelArguments(qkv, tokens));
                    } else {
                        KvCache.launchSplitQkv(jvm, qkv, split, tokens);
                    }
                }
                for (int i = 0; i < out[0].length; i++) {
                    assertClose(jvm.download(out[0][i]), jvm.download(out[1][i]), 0f, 0f, "output " + i + ", tokens " + tokens
                            + (interleaved ? ", interleaved" : ", half-split"));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void splitQkvEqualsTheSlicesRotatedThenCopied(String id) {
        Device dev = device(id);
        int qHeads = 6, kvHeads = HEADS, qRow = qHeads * HEAD_DIM, width = qRow + 2 * ROW;
        IntArray dest = IntArray.fromArray(7, -1, 10, 3);
        IntArray positions = IntArray.fromArray(0, 5, 99, 4000);
        FloatArray q = random(TOKENS * qRow, 1f, 11), k = random(TOKENS * ROW, 1f, 12), v = random(TOKENS * ROW, 1f, 13);
        FloatArray qkv = FloatArray.allocate(TOKENS * width);
        for (int t = 0; t < TOKENS; t++) {
            for (int j = 0; j < qRow; j++) {
                qkv.set(t * width + j, q.get(t * qRow + j));
            }
            for (int j = 0; j < ROW; j++) {
                qkv.set(t * width + qRow + j, k.get(t * ROW + j));
                qkv.set(t * width + qRow + ROW + j, v.get(t * ROW + j));
            }
        }
        Attention.Heads heads = Attention.Heads.of(qHeads, kvHeads, HEAD_DIM);
        DeviceBuffer q0 = dev.allocate(DType.F32, TOKENS * qRow), k0 = dev.allocate(DType.F32, TOKENS * ROW), v0 = dev.allocate(DType.F32, TOKENS * ROW);
        KvCache.launchSplitQkv(dev, copyOf(dev, qkv), new KvCache.QkvSplit(q0, k0, v0, copyOf(dev, positions), null, null, null, copyOf(dev, dest),
                heads), TOKENS);
        assertClose(q, dev.download(q0), 0f, 0f, "q, no rotary");
        assertClose(k, dev.download(k0), 0f, 0f, "k, no rotary");
        assertClose(v, dev.download(v0), 0f, 0f, "v, no rotary");
        for (int rotaryDim : new int[] {HEAD_DIM, 8}) {
            for (boolean interleaved : new boolean[] {false, true}) {
                DeviceBuffer invFreq = copyOf(dev, RopeScaling.none(10000).inverseFrequencies(rotaryDim, 0));
                String what = "rotaryDim " + rotaryDim + (interleaved ? " interleaved" : " half-split");
                DeviceBuffer q1 = copyOf(dev, q), k1 = copyOf(dev, k), keys1 = copyOf(dev, fill(HalfArray.allocate(SLOTS * ROW), 1f, 2));
                DeviceBuffer values1 = copyOf(dev, fill(HalfArray.allocate(SLOTS * ROW), 1f, 3));
                Rotary.launchRotary(dev, q1, k1, copyOf(dev, positions), new Rotary.Rope(invFreq, rotaryDim, interleaved, 1.25f), TOKENS, qHeads, kvHeads,
                        HEAD_DIM);
                KvCache.launchCopyToPool(dev, keys1, k1, copyOf(dev, dest), TOKENS, kvHeads, HEAD_DIM);
                KvCache.launchCopyToPool(dev, values1, copyOf(dev, v), copyOf(dev, dest), TOKENS, kvHeads, HEAD_DIM);
                DeviceBuffer q2 = dev.allocate(DType.F32, TOKENS * qRow), k2 = dev.allocate(DType.F32, TOKENS * ROW), v2 = dev.allocate(DType.F32, TOKENS * ROW);
                DeviceBuffer keys2 = copyOf(dev, fill(HalfArray.allocate(SLOTS * ROW), 1f, 2));
                DeviceBuffer values2 = copyOf(dev, fill(HalfArray.allocate(SLOTS * ROW), 1f, 3));
                KvCache.launchSplitQkv(dev, copyOf(dev, qkv), new KvCache.QkvSplit(q2, k2, v2, copyOf(dev, positions),
                        new Rotary.Rope(invFreq, rotaryDim, interleaved, 1.25f), keys2, values2, copyOf(dev, dest), heads), TOKENS);
                float rotated = isJvm(dev) ? 0f : 1e-6f, pooled = isJvm(dev) ? 0f : 1e-6f + 0x1p-10f;
                assertClose(dev.download(q1), dev.download(q2), rotated, 0f, "q, " + what);
                assertClose(dev.download(k1), dev.download(k2), rotated, 0f, "k, " + what);
                assertClose(v, dev.download(v2), 0f, 0f, "v, " + what);
                assertClose(dev.download(keys1), dev.download(keys2), pooled, 0f, "key pool, " + what);
                assertClose(dev.download(values1), dev.download(values2), 0f, 0f, "value pool, " + what);
                // q as prefill attention's f16 operand: the f32 rows times its scale, rounded once (on a GPU the two
                // launches' rotations may differ by the contraction above: one f16 step at |x| < 1 on top)
                DeviceBuffer q3 = dev.allocate(DType.F16, TOKENS * qRow);
                KvCache.launchSplitQkv(dev, copyOf(dev, qkv), new KvCache.QkvSplit(q3, dev.allocate(DType.F32, TOKENS * ROW),
                        dev.allocate(DType.F32, TOKENS * ROW), copyOf(dev, positions), new Rotary.Rope(invFreq, rotaryDim, interleaved, 1.25f), null, null,
                        copyOf(dev, dest), heads), TOKENS);
                FloatArray rows = (FloatArray) dev.download(q2);
                HalfArray operand = HalfArray.allocate(TOKENS * qRow);
                for (int i = 0; i < operand.getSize(); i++) {
                    operand.setFloat(i, rows.get(i) * Attention.queryOperandScale(heads));
                }
                assertClose(operand, dev.download(q3), isJvm(dev) ? 0f : 1e-6f + 0x1p-11f, 0f, "q operand, " + what);
            }
        }
        DeviceBuffer bf16 = dev.allocate(DType.BF16, TOKENS * qRow);
        assertThrows(IllegalArgumentException.class, () -> new KvCache.QkvSplit(bf16, k0, v0, copyOf(dev, positions), null, null, null,
                copyOf(dev, dest), heads), "bf16 queries are no operand");
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void int8PoolQuantisesPerTokenAndHead(String id) {
        Device dev = device(id);
        FloatArray src = random(TOKENS * ROW, 3f, 5);
        for (int d = 0; d < HEAD_DIM; d++) {
            src.set(ROW + HEAD_DIM + d, 0f); // token 1, head 1: all zero, so scale 0
        }
        for (int local : LOCAL_SIZES) {
            Quantised q = quantise(dev, Grid.groups((long) TOKENS * HEADS, local), src);
            checkQuantisation(src, q, "local " + local);
        }
        Quantised launched = quantise(dev, null, src);
        checkQuantisation(src, launched, "launcher");
        checkDequantisation(dev, src, launched);
        if (!isJvm(dev)) {
            Quantised jvm = quantise(TestDevices.jvm(), null, src);
            // scales: one division by 127, correctly rounded on the JVM, within 2.5 ulps under OpenCL
            assertClose(jvm.scales, launched.scales, 0f, 3e-7f, "scales " + id + " vs jvm");
            // codes: equal except where x / scale sits on a rounding boundary, where they may differ by 1
            assertClose(jvm.codes, launched.codes, 1f, 0f, "codes " + id + " vs jvm");
        }
    }

    /**
     * fp8 e4m3 pools: scale = max|x| / 448 per token and head, and every element read back (its
     * code's value times the scale, through KvCache.dequantizeFp8) within half an e4m3 step of the
     * original at its magnitude, times the scale: the bound of rounding to nearest, from the format's
     * spacing alone. One head spans 1e-4 to 100, so most of its codes are subnormal or zero.
     */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void fp8PoolQuantisesPerTokenAndHeadWithinHalfAStep(String id) {
        Device dev = device(id);
        FloatArray src = random(TOKENS * ROW, 3f, 5);
        for (int d = 0; d < HEAD_DIM; d++) {
            src.set(ROW + HEAD_DIM + d, 0f); // token 1, head 1: all zero, so scale 0
            // token 2, head 0: magnitudes 1e-4 .. 100, alternating signs
            src.set(2 * ROW + d, (float) (Math.pow(10, -4 + 6.0 * d / (HEAD_DIM - 1)) * (d % 2 == 0 ? 1 : -1)));
        }
        for (int local : LOCAL_SIZES) {
            checkFp8(src, quantiseFp8(dev, Grid.groups((long) TOKENS * HEADS, local), src), "local " + local);
        }
        Fp8Quantised launched = quantiseFp8(dev, null, src);
        checkFp8(src, launched, "launcher");
        DeviceBuffer out = dev.allocate(DType.F32, TOKENS * ROW);
        KvCache.launchDequantize(dev, out, launched.codesBuffer, launched.scalesBuffer, copyOf(dev, DEST), TOKENS, HEADS, HEAD_DIM);
        FloatArray got = (FloatArray) dev.download(out);
        for (int i = 0; i < TOKENS * ROW; i++) {
            int slot = DEST.get(i / ROW), h = (i % ROW) / HEAD_DIM;
            float value = launched.codes.get(slot * ROW + i % ROW) * launched.scales.get(slot * HEADS + h);
            assertEquals(value, got.get(i), 0f, "dequantised element " + i); // one float product: exact
        }
        if (!isJvm(dev)) {
            Fp8Quantised jvm = quantiseFp8(TestDevices.jvm(), null, src);
            assertClose(jvm.scales, launched.scales, 0f, 3e-7f, "scales " + id + " vs jvm");
            // codes: equal except where x / scale sits on a rounding boundary, where they may be neighbours
            for (int i = 0; i < SLOTS * ROW; i++) {
                int a = jvm.codes.getBits(i) & 0xff, b = launched.codes.getBits(i) & 0xff;
                assertTrue((a & 0x80) == (b & 0x80) && Math.abs(a - b) <= 1, "code " + i + " on " + id + ": " + b + ", jvm " + a);
            }
        }
    }

    private record Fp8Quantised(Float8Array codes, FloatArray scales, DeviceBuffer codesBuffer, DeviceBuffer scalesBuffer) {
    }

    private static Fp8Quantised quantiseFp8(Device dev, Grid grid, FloatArray src) {
        DeviceBuffer pool = copyOf(dev, Float8Array.allocate(SLOTS * ROW)), scales = copyOf(dev, FloatArray.allocate(SLOTS * HEADS));
        DeviceBuffer sb = copyOf(dev, src), db = copyOf(dev, DEST);
        if (grid == null) {
            KvCache.launchCopyToPoolScaled(dev, pool, scales, sb, db, TOKENS, HEADS, HEAD_DIM);
        } else {
            dev.launch(KvCache.COPY_TO_POOL_FP8, grid, pool, scales, sb, db, HEADS, HEAD_DIM, SLOTS);
        }
        return new Fp8Quantised((Float8Array) dev.download(pool), (FloatArray) dev.download(scales), pool, scales);
    }

    /**
     * Half the spacing of e4m3 values around magnitude r: 2^(e-3) apart in [2^e, 2^(e+1)) for
     * e >= -6, 2^-9 apart below 2^-6 (subnormals).
     */
    private static double halfE4m3Step(double r) {
        return r < 0x1p-6 ? 0x1p-10 : Math.scalb(1.0, Math.getExponent(r) - 4);
    }

    private static void checkFp8(FloatArray src, Fp8Quantised q, String what) {
        for (int t = 0; t < TOKENS; t++) {
            for (int h = 0; h < HEADS; h++) {
                double max = 0;
                for (int d = 0; d < HEAD_DIM; d++) {
                    max = Math.max(max, Math.abs(src.get((t * HEADS + h) * HEAD_DIM + d)));
                }
                float scale = (float) max / 448f;
                int slot = DEST.get(t);
                float got = q.scales.get(slot * HEADS + h);
                assertEquals(scale, got, 3e-7f * scale, what + ": scale of token " + t + " head " + h);
                boolean largestSeen = max == 0;
                for (int d = 0; d < HEAD_DIM; d++) {
                    double x = src.get((t * HEADS + h) * HEAD_DIM + d);
                    float code = q.codes.get((slot * HEADS + h) * HEAD_DIM + d);
                    double back = (double) code * got;
                    // x / scale in float (2.5 ulps under OpenCL) may cross a rounding boundary: a relative 1e-4 of the half step covers it
                    double bound = got == 0 ? 0 : halfE4m3Step(Math.abs(x) / got) * got * (1 + 1e-4);
                    assertEquals(x, back, bound, what + ": token " + t + " head " + h + " element " + d + " (code value " + code + ")");
                    largestSeen |= Math.abs(x) == max && Math.abs(code) == 448f;
                }
                assertTrue(largestSeen, what + ": the largest element of token " + t + " head " + h + " takes code +-448");
            }
        }
    }

    @Test
    void fp8KernelsCompileToCuda() {
        assertCompilesToCuda(KvCache.COPY_TO_POOL_FP8);
        assertCompilesToCuda(KvCache.DEQUANTIZE_FP8);
    }

    @Test
    void scaledLaunchersRefuseOtherPools() {
        Device dev = TestDevices.jvm();
        DeviceBuffer floats = dev.allocate(DType.F32, SLOTS * ROW), scales = dev.allocate(DType.F32, SLOTS * HEADS);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> KvCache.launchCopyToPoolScaled(dev, floats, scales, copyOf(dev, random(ROW, 1f, 3)), copyOf(dev, DEST), 1, HEADS, HEAD_DIM));
        assertEquals("a KV pool with scales holds I8 or F8_E4M3 codes, not F32", e.getMessage());
        DeviceBuffer out = dev.allocate(DType.F32, ROW);
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> KvCache.launchDequantize(dev, out, floats, scales, copyOf(dev, DEST), 1, HEADS, HEAD_DIM));
        assertEquals("a KV pool with scales holds I8 or F8_E4M3 codes, not F32", e.getMessage());
    }

    @Test
    void slotsOutsideThePoolAreSkipped() {
        Device dev = TestDevices.jvm();
        FloatArray initial = random(SLOTS * ROW, 1f, 8);
        DeviceBuffer pool = copyOf(dev, initial);
        KvCache.launchCopyToPool(dev, pool, copyOf(dev, random(2 * ROW, 1f, 9)), copyOf(dev, IntArray.fromArray(-1, SLOTS)), 2, HEADS,
                HEAD_DIM);
        assertClose(initial, dev.download(pool), 0f, 0f, "pool after out-of-range writes");
    }

    private record Quantised(ByteArray codes, FloatArray scales, DeviceBuffer codesBuffer, DeviceBuffer scalesBuffer) {
    }

    @Test
    void compilesToCuda() {
        for (DType pool : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            assertCompilesToCuda(KvCache.COPY_TO_POOL, pool, DType.F32, DType.I32, null, null, null);
            assertCompilesToCuda(KvCache.GATHER_FROM_POOL, DType.F32, pool, DType.I32, null, null, null);
        }
        assertCompilesToCuda(KvCache.COPY_TO_POOL_INT8);
        assertCompilesToCuda(KvCache.DEQUANTIZE_INT8);
        for (DType pool : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            assertCompilesToCuda(KvCache.SPLIT_QKV, DType.F32, DType.F32, DType.F32, DType.F32, pool, pool, null, DType.I32, DType.I32, DType.F32,
                    null, null, null, null, null, null, null, null);
        }
    }

    private static Quantised quantise(Device dev, Grid grid, FloatArray src) {
        DeviceBuffer pool = copyOf(dev, ByteArray.allocate(SLOTS * ROW)), scales = copyOf(dev, FloatArray.allocate(SLOTS * HEADS));
        DeviceBuffer sb = copyOf(dev, src), db = copyOf(dev, DEST);
        if (grid == null) {
            KvCache.launchCopyToPoolScaled(dev, pool, scales, sb, db, TOKENS, HEADS, HEAD_DIM);
        } else {
            dev.launch(KvCache.COPY_TO_POOL_INT8, grid, pool, scales, sb, db, HEADS, HEAD_DIM, SLOTS);
        }
        return new Quantised((ByteArray) dev.download(pool), (FloatArray) dev.download(scales), pool, scales);
    }

    /** Against the definition: scale = max|x| / 127, q = round half away from zero of x / scale (in double), clamped. */
    private static void checkQuantisation(FloatArray src, Quantised q, String what) {
        for (int t = 0; t < TOKENS; t++) {
            for (int h = 0; h < HEADS; h++) {
                double max = 0;
                for (int d = 0; d < HEAD_DIM; d++) {
                    max = Math.max(max, Math.abs(src.get((t * HEADS + h) * HEAD_DIM + d)));
                }
                float scale = (float) max / 127f;
                int slot = DEST.get(t);
                // max is exact; the one float division is within 2.5 ulps on every backend
                assertEquals(scale, q.scales.get(slot * HEADS + h), 3e-7f * scale, what + ": scale of token " + t + " head " + h);
                for (int d = 0; d < HEAD_DIM; d++) {
                    double x = src.get((t * HEADS + h) * HEAD_DIM + d);
                    double ratio = scale == 0 ? 0 : x / scale;
                    long expected = Math.max(-127, Math.min(127, ratio < 0 ? -Math.round(-ratio) : Math.round(ratio)));
                    int got = q.codes.get((slot * HEADS + h) * HEAD_DIM + d);
                    // the kernel divides in float: only a ratio within float error of a half-integer may round the other way
                    boolean nearTie = Math.abs(Math.abs(ratio) % 1 - 0.5) < 1e-5;
                    assertTrue(got == expected || nearTie && Math.abs(got - expected) == 1,
                            what + ": code of token " + t + " head " + h + " element " + d + " is " + got + ", expected " + expected);
                }
            }
        }
    }

    /** Dequantised values are code * scale, and within half a quantisation step (scale / 2) of the original. */
    private static void checkDequantisation(Device dev, FloatArray src, Quantised q) {
        DeviceBuffer out = dev.allocate(DType.F32, TOKENS * ROW);
        KvCache.launchDequantize(dev, out, q.codesBuffer, q.scalesBuffer, copyOf(dev, DEST), TOKENS, HEADS, HEAD_DIM);
        FloatArray got = (FloatArray) dev.download(out);
        for (int i = 0; i < TOKENS * ROW; i++) {
            int slot = DEST.get(i / ROW), h = (i % ROW) / HEAD_DIM;
            float scale = q.scales.get(slot * HEADS + h);
            float code = q.codes.get(slot * ROW + i % ROW);
            assertEquals(code * scale, got.get(i), 0f, "dequantised element " + i); // one float product: exact
            // half a step, plus the float rounding of x / scale and of code * scale (a few ulps of |x| <= 3)
            assertEquals(src.get(i), got.get(i), scale / 2 * (1 + 1e-5) + 1e-6, "round trip of element " + i);
        }
    }
}
