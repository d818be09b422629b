package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The batch-1 q/k/v GEMV that splits its own output ({@link Matmul#matmulGemvQkv}) against the GEMV followed by
 * {@link KvCache#splitQkv} on the same device (that kernel is checked against the rotary kernel and pool copies in
 * {@code KvCacheTest}): q, k, v and both f16 pools, over GQA heads, full and partial rotary dims, both pairings, with
 * and without bias, rows of 64 and 200 bf16 weights. The two add each row's products in different orders, each within
 * {@link MatmulReference}'s bound e of the exact sum, so their x0 and x1 differ by at most 2e; the rotation takes
 * |cos| + |sin| <= 1.25 sqrt 2 < 2 of that to each of q and k (5e, plus 1e-6 for the rotation's own rounding, which
 * a GPU compiler may contract differently in the two kernels), and a pool's f16 rounding of two such values adds one
 * f16 step of their magnitude (rtol 2^-10).
 */
class QkvGemvTest {
    private static final int Q_HEADS = 4, KV_HEADS = 2, HEAD_DIM = 16, SLOTS = 8;
    private static final int WIDTH = (Q_HEADS + 2 * KV_HEADS) * HEAD_DIM, KV_ROW = KV_HEADS * HEAD_DIM;

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void splitsItsOutputAsTheGemvThenTheSplitKernel(String id) {
        Device dev = device(id);
        TestProperties.with(tunings(id), () -> {
            Attention.Heads heads = Attention.Heads.of(Q_HEADS, KV_HEADS, HEAD_DIM);
            for (int k : new int[] {64, 200}) {
                assertTrue(Matmul.qkvGemvApplies(dev, DType.BF16, 1, k), id + ": the q/k/v GEMV applies");
                FloatArray a = random(k, 1f, 21);
                BFloat16Array w = fill(BFloat16Array.allocate(WIDTH * k), 1f, 22);
                for (FloatArray bias : new FloatArray[] {null, random(WIDTH, 1f, 23)}) {
                    float bound = MatmulReference.of(a, w, null, bias, 1, WIDTH, k).errorBound();
                    for (int rotaryDim : new int[] {HEAD_DIM, 8}) {
                        for (boolean interleaved : new boolean[] {false, true}) {
                            String what = id + " k " + k + (bias == null ? "" : " bias") + " rotaryDim " + rotaryDim + (interleaved ? " interleaved" : "");
                            Rotary.Rope rope = new Rotary.Rope(copyOf(dev, RopeScaling.none(10000).inverseFrequencies(rotaryDim, 0)), rotaryDim,
                                    interleaved, 1.25f);
                            DeviceBuffer wb = copyOf(dev, w), ab = copyOf(dev, a), bb = bias == null ? null : copyOf(dev, bias);
                            Split split = new Split(dev, rope, heads), fused = new Split(dev, rope, heads);
                            DeviceBuffer qkv = dev.allocate(DType.F32, WIDTH);
                            Matmul.launchMatmul(dev, qkv, ab, wb, bb, 1, WIDTH, k);
                            KvCache.launchSplitQkv(dev, qkv, split.split, 1);
                            Matmul.launchGemvQkv(dev, ab, wb, bb, k, fused.split);
                            split.assertCloseTo(dev, fused, 5 * bound + 1e-6f, what);
                        }
                    }
                }
            }
        });
    }

    /** The q/k/v GEMV on, in work-groups of an even number of rows (the JVM and PoCL take one by default). */
    static Map<String, String> tunings(String id) {
        String backend = "lightllm.tuning." + Devices.backendName(id) + ".";
        return id.startsWith("cuda") ? Map.of(backend + "matmul.gemv_qkv", "1")
                : Map.of(backend + "matmul.gemv_qkv", "1", backend + "matmul.gemv_columns", "2", backend + "reduce.local", "64");
    }

    /** One token's outputs: q, k, v and f16 pools (random where nothing is written), position 37 into slot 5. */
    private record Split(KvCache.QkvSplit split) {
        Split(Device dev, Rotary.Rope rope, Attention.Heads heads) {
            this(new KvCache.QkvSplit(dev.allocate(DType.F32, Q_HEADS * HEAD_DIM), dev.allocate(DType.F32, KV_ROW), dev.allocate(DType.F32, KV_ROW),
                    copyOf(dev, IntArray.fromArray(37)), rope, copyOf(dev, fill(HalfArray.allocate(SLOTS * KV_ROW), 1f, 31)),
                    copyOf(dev, fill(HalfArray.allocate(SLOTS * KV_ROW), 1f, 32)), copyOf(dev, IntArray.fromArray(5)), heads));
        }

        void assertCloseTo(Device dev, Split other, float atol, String what) {
            assertClose(dev.download(split.q()), dev.download(other.split.q()), atol, 0f, what + ": q");
            assertClose(dev.download(split.k()), dev.download(other.split.k()), atol, 0f, what + ": k");
            assertClose(dev.download(split.v()), dev.download(other.split.v()), atol, 0f, what + ": v");
            NativeArray keys = dev.download(split.keys()), values = dev.download(split.values());
            assertClose(keys, dev.download(other.split.keys()), atol, 0x1p-10f, what + ": key pool");
            assertClose(values, dev.download(other.split.values()), atol, 0x1p-10f, what + ": value pool");
            // the other slots are as they were
            NativeArray untouched = fill(HalfArray.allocate(SLOTS * KV_ROW), 1f, 31);
            for (int i = 0; i < SLOTS * KV_ROW; i++) {
                if (i / KV_ROW != 5) {
                    assertTrue(untouched.getFloat(i) == keys.getFloat(i), what + ": key slot " + i / KV_ROW + " untouched");
                }
            }
        }
    }

    @Test
    void appliesOnlyWhereTunedAndRefusesOtherwise() {
        Device jvm = KernelTestSupport.device("jvm");
        assertFalse(Matmul.qkvGemvApplies(jvm, DType.BF16, 1, 64), "off unless matmul.gemv_qkv is 1");
        assertFalse(TestProperties.supply(Map.of("lightllm.tuning.jvm.matmul.gemv_qkv", "1"), () -> Matmul.qkvGemvApplies(jvm, DType.BF16, 1, 64)),
                "work-groups of one row have no pairs");
        TestProperties.with(tunings("jvm"), () -> {
            assertFalse(Matmul.qkvGemvApplies(jvm, DType.BF16, 2, 64), "one token only");
            assertFalse(Matmul.qkvGemvApplies(jvm, DType.I8, 1, 64), "float rows only");
            assertFalse(Matmul.qkvGemvApplies(jvm, DType.BF16, 1, 60), "k a multiple of 8");
        });
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Matmul.launchGemvQkv(jvm, jvm.allocate(DType.F32, 64),
                jvm.allocate(DType.BF16, WIDTH * 64), null, 64, new Split(jvm, null, Attention.Heads.of(Q_HEADS, KV_HEADS, HEAD_DIM)).split));
        assertTrue(e.getMessage().contains("no q/k/v GEMV"), e.getMessage());
    }

    @Test
    void compilesToCuda() {
        for (DType w : new DType[] {DType.F32, DType.BF16}) {
            for (DType pool : new DType[] {DType.F16, DType.BF16}) {
                KernelTestSupport.assertCompilesToCuda(Matmul.MATMUL_GEMV_QKV, DType.F32, w, DType.F32, null, null, null, DType.F32, DType.F32,
                        DType.F32, pool, pool, null, DType.I32, DType.I32, DType.F32, null, null, null, null, null, null, null, null);
            }
        }
        CudaCheck.assertCompiles(KernelCompiler.compile(KvCache.SPLIT_QKV, Dialect.CUDA, new DType[] {DType.F32, DType.F32, DType.F32, DType.F32,
            DType.F16, DType.F16, null, DType.I32, DType.I32, DType.F32, null, null, null, null, null, null, null, null}).source(), "splitQkv");
    }
}
