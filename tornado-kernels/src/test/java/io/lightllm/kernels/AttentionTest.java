package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Decode and prefill attention on the JVM against the naive softmax attention of
 * {@link KvFixture} (double precision, explicit causal range, error bound derived there), for
 * GQA, MQA and plain multi-head, f32 and f16 pools, with and without ALiBi, and several
 * work-group sizes. Shapes are small: the JVM runs a group with barriers as virtual threads.
 */
class AttentionTest {
    /** Decode batch: one token, an odd length, a length over several splits of SPLIT_LEN. */
    private static final int[] DECODE_LENS = {1, 7, 23};
    private static final int SPLIT_LEN = 5;
    /**
     * Prefill batch: (cached prefix, new tokens) per request: a single token; 37 new tokens, three
     * query blocks and three key blocks; 12 new tokens after 21 cached ones, three key blocks.
     */
    private static final int[] PREFIXES = {0, 0, 21};
    private static final int[] NEW_TOKENS = {1, 37, 12};
    /** (qHeads, kvHeads, headDim): GQA, MQA, multi-head. */
    private static final int[][] HEADS = {{4, 2, 16}, {4, 1, 8}, {2, 2, 12}};

    private final Device jvm = TestDevices.jvm();

    @ParameterizedTest
    @ValueSource(ints = {1, 4, 64})
    void decodeMatchesNaiveAttention(int local) {
        for (int[] heads : HEADS) {
            for (DType pool : new DType[] {DType.F32, DType.F16}) {
                for (boolean alibi : new boolean[] {false, true}) {
                    String what = "decode local " + local + " heads " + heads[0] + "/" + heads[1] + " D " + heads[2] + " " + pool
                            + (alibi ? " alibi" : "");
                    checkDecode(jvm, new KvFixture(DECODE_LENS, heads[0], heads[1], heads[2], pool, alibi, 31), SPLIT_LEN, local, what);
                }
            }
        }
    }

    @Test
    void decodeHandlesTheLargestHeadDimension() {
        checkDecode(jvm, new KvFixture(new int[] {3, 9}, 2, 1, Attention.MAX_HEAD_DIM, DType.F16, false, 32), 4, 4, "decode D 256");
    }

    @Test
    void decodeHandlesSeveralBlocksPerSplitInLargeGroups() {
        // groups of 64 items walk 150-token splits in three blocks: the online rescaling runs within a split
        checkDecode(jvm, new KvFixture(new int[] {130, 200}, 2, 1, 8, DType.F32, true, 39), 150, 64, "decode 64 x 150");
    }

    @Test
    void decodeLauncherSplitsLongContextsAndReusesScratch() {
        // 300 tokens: two splits of the default 256 on the JVM
        KvFixture kv = new KvFixture(new int[] {300, 1, 40}, 2, 1, 8, DType.F32, true, 33);
        FloatArray q = TensorAssert.random(kv.batch * kv.qHeads * kv.headDim, 1f, 34);
        FloatArray expected = FloatArray.allocate(q.getSize());
        double bound = 0;
        for (int b = 0; b < kv.batch; b++) {
            for (int h = 0; h < kv.qHeads; h++) {
                bound = Math.max(bound, kv.attend(q, b, b, h, kv.tokens[b] - 1, 2, expected));
            }
        }
        assertEquals(256, Attention.decodeSplitLen(jvm, 300));
        try (Attention.DecodeScratch scratch = Attention.DecodeScratch.allocateFor(jvm, kv.batch, kv.qHeads, kv.headDim, 300)) {
            for (int run = 0; run < 2; run++) {
                DeviceBuffer out = jvm.allocate(DType.F32, q.getSize());
                Attention.launchDecodeAttention(jvm, out, jvm.upload(q), jvm.upload(kv.kPool), jvm.upload(kv.vPool), null, null,
                        jvm.upload(kv.reqToToken), jvm.upload(kv.reqRows), jvm.upload(IntArray.fromArray(kv.tokens)), jvm.upload(kv.slopes), scratch,
                        kv.batch, kv.qHeads, kv.kvHeads, kv.headDim, kv.maxLen, 300, kv.scale);
                assertClose(expected, jvm.download(out), (float) bound, 0f, "decode launcher, run " + run);
            }
        }
    }

    /** A kernel's output, checked against the reference, and the error bound it was checked with. */
    private record Checked(FloatArray out, float bound) {
    }

    private static Checked checkDecode(Device device, KvFixture kv, int splitLen, int local, String what) {
        FloatArray q = TensorAssert.random(kv.batch * kv.qHeads * kv.headDim, 1f, 35);
        int maxSeqLen = 0;
        for (int t : kv.tokens) {
            maxSeqLen = Math.max(maxSeqLen, t);
        }
        int splits = (maxSeqLen + splitLen - 1) / splitLen;
        FloatArray expected = FloatArray.allocate(q.getSize());
        double bound = 0;
        for (int b = 0; b < kv.batch; b++) {
            for (int h = 0; h < kv.qHeads; h++) {
                bound = Math.max(bound, kv.attend(q, b, b, h, kv.tokens[b] - 1, splits, expected));
            }
        }
        DeviceBuffer out = device.allocate(DType.F32, q.getSize());
        Attention.launchDecodeAttentionSplit(device, out, device.upload(q), device.upload(kv.kPool), device.upload(kv.vPool), null, null,
                device.upload(kv.reqToToken), device.upload(kv.reqRows), device.upload(IntArray.fromArray(kv.tokens)),
                kv.slopes == null ? null : device.upload(kv.slopes), null, kv.batch, kv.qHeads, kv.kvHeads, kv.headDim,
                kv.maxLen, maxSeqLen, kv.scale, splitLen, local);
        FloatArray actual = (FloatArray) device.download(out);
        assertClose(expected, actual, (float) bound, 0f, what);
        return new Checked(actual, (float) bound);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 4, 64})
    void prefillMatchesNaiveCausalAttention(int local) {
        for (int[] heads : HEADS) {
            for (DType pool : new DType[] {DType.F32, DType.F16}) {
                for (boolean alibi : new boolean[] {false, true}) {
                    String what = "prefill local " + local + " heads " + heads[0] + "/" + heads[1] + " D " + heads[2] + " " + pool
                            + (alibi ? " alibi" : "");
                    checkPrefill(jvm, PREFIXES, NEW_TOKENS, heads[0], heads[1], heads[2], pool, alibi, local, what);
                }
            }
        }
    }

    @Test
    void prefillHandlesTheLargestHeadDimension() {
        checkPrefill(jvm, new int[] {2}, new int[] {17}, 2, 1, Attention.MAX_HEAD_DIM, DType.F32, true, 4, "prefill D 256");
    }

    @Test
    void prefillLauncherUsesTheDeviceTuning() {
        checkPrefill(jvm, PREFIXES, NEW_TOKENS, 4, 2, 16, DType.F16, true, 0, "prefill launcher");
    }

    /** Runs prefill (local 0: through the tuned launcher) and compares with the naive attention. */
    private static Checked checkPrefill(Device device, int[] prefixes, int[] newTokens, int qHeads, int kvHeads, int headDim,
            DType pool, boolean alibi, int local, String what) {
        int batch = prefixes.length;
        int[] total = new int[batch], start = new int[batch];
        int rows = 0, maxNew = 0;
        for (int b = 0; b < batch; b++) {
            total[b] = prefixes[b] + newTokens[b];
            start[b] = rows;
            rows += newTokens[b];
            maxNew = Math.max(maxNew, newTokens[b]);
        }
        KvFixture kv = new KvFixture(total, qHeads, kvHeads, headDim, pool, alibi, 36);
        FloatArray q = TensorAssert.random(rows * qHeads * headDim, 1f, 37);
        FloatArray expected = FloatArray.allocate(q.getSize());
        double bound = 0;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < newTokens[b]; i++) {
                for (int h = 0; h < qHeads; h++) {
                    bound = Math.max(bound, kv.attend(q, start[b] + i, b, h, prefixes[b] + i, 0, expected));
                }
            }
        }
        DeviceBuffer out = device.allocate(DType.F32, q.getSize());
        Object[] buffers = {out, device.upload(q), device.upload(kv.kPool), device.upload(kv.vPool), device.upload(kv.reqToToken),
            device.upload(kv.reqRows), device.upload(IntArray.fromArray(start)), device.upload(IntArray.fromArray(newTokens)),
            device.upload(IntArray.fromArray(prefixes)), alibi ? device.upload(kv.slopes) : null};
        DeviceBuffer[] b = java.util.Arrays.copyOf(buffers, buffers.length, DeviceBuffer[].class);
        if (local == 0) {
            Attention.launchPrefillAttention(device, b[0], b[1], b[2], b[3], null, null, b[4], b[5], b[6], b[7], b[8], b[9], batch, rows, qHeads,
                    kvHeads, headDim, kv.maxLen, maxNew, kv.scale);
        } else {
            Attention.launchPrefillAttentionLocal(device, b[0], b[1], b[2], b[3], null, null, b[4], b[5], b[6], b[7], b[8], b[9], batch, rows, qHeads,
                    kvHeads, headDim, kv.maxLen, maxNew, kv.scale, local);
        }
        FloatArray actual = (FloatArray) device.download(out);
        assertClose(expected, actual, (float) bound, 0f, what);
        return new Checked(actual, (float) bound);
    }

    @Test
    void alibiSlopesFollowBloom() {
        // powers of two: 2^(-8i/n)
        float[] eight = new float[8];
        for (int i = 0; i < 8; i++) {
            eight[i] = (float) Math.pow(2, -(i + 1));
        }
        assertArrayEquals(eight, Attention.alibiSlopes(8));
        // 12 heads: the 8-head slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 (odd powers of the 16-head base)
        float[] twelve = java.util.Arrays.copyOf(eight, 12);
        for (int j = 0; j < 4; j++) {
            twelve[8 + j] = (float) Math.pow(2, -(j + 0.5));
        }
        assertArrayEquals(twelve, Attention.alibiSlopes(12), 1e-7f);
        assertArrayEquals(new float[] {(float) Math.pow(2, -8)}, Attention.alibiSlopes(1));
    }

    @Test
    void launchersRefuseInconsistentHeads() {
        DeviceBuffer any = jvm.allocate(DType.F32, 64), ints = jvm.allocate(DType.I32, 64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Attention.launchDecodeAttention(jvm, any,
                any, any, any, null, null, ints, ints, ints, null, null, 1, 3, 2, 4, 8, 8, 1f));
        assertEquals("qHeads 3 is not a multiple of kvHeads 2", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.launchPrefillAttention(jvm, any, any, any, any, null, null, ints,
                ints, ints, ints, ints, null, 1, 1, 2, 2, 300, 8, 8, 1f));
        assertEquals("headDim must be 1 to 256, got 300", e.getMessage());
    }

    /**
     * Every accelerator passes the reference checks with every local size, and computes what
     * the JVM computes.
     */
    @Test
    void acceleratorsMatchTheJvm() {
        for (String id : TestDevices.accelerators()) {
            Device device = Devices.get(id);
            for (int[] heads : HEADS) {
                for (DType pool : new DType[] {DType.F32, DType.F16}) {
                    KvFixture kv = new KvFixture(DECODE_LENS, heads[0], heads[1], heads[2], pool, true, 38);
                    Checked onJvm = checkDecode(jvm, kv, SPLIT_LEN, 1, "jvm decode");
                    Checked prefillJvm = checkPrefill(jvm, PREFIXES, NEW_TOKENS, heads[0], heads[1], heads[2], pool, true, 1, "jvm");
                    for (int local : new int[] {1, 4, 64}) {
                        String what = id + " local " + local + " heads " + heads[0] + "/" + heads[1] + " " + pool;
                        Checked onDevice = checkDecode(device, kv, SPLIT_LEN, local, what + " decode");
                        // both are within the reference's bound (checked inside), so within twice it of each other
                        assertClose(onJvm.out(), onDevice.out(), 2 * onJvm.bound(), 0f, what + " decode vs jvm");
                        Checked prefillDevice = checkPrefill(device, PREFIXES, NEW_TOKENS, heads[0], heads[1], heads[2], pool, true,
                                local, what + " prefill");
                        assertClose(prefillJvm.out(), prefillDevice.out(), 2 * prefillJvm.bound(), 0f, what + " prefill vs jvm");
                    }
                }
            }
            checkDecode(device, new KvFixture(new int[] {130, 200}, 2, 1, 8, DType.F32, true, 39), 150, 64, id + " decode 64 x 150");
            checkPrefill(device, new int[] {2}, new int[] {17}, 2, 1, Attention.MAX_HEAD_DIM, DType.F16, true, 64, id + " prefill D 256");
        }
    }

    /**
     * An int8 pool (codes plus one scale per token and head, as KvCache.copyToPoolInt8 writes)
     * gives the attention of the f32 pool holding the dequantised values: the kernels apply the
     * scale to the dot product and to the value weights instead of to every element, which
     * changes only float rounding (relative 1e-5 at these sizes, far below int8's own error).
     */
    @Test
    void int8PoolsMatchTheirDequantisedValues() {
        List<String> ids = new java.util.ArrayList<>(List.of("jvm"));
        ids.addAll(TestDevices.accelerators());
        KvFixture kv = new KvFixture(new int[] {37, 5, 80}, 4, 2, 16, DType.F32, false, 71);
        int slots = kv.kPool.getSize() / (kv.kvHeads * kv.headDim);
        io.lightllm.tornado.api.ByteArray kq = io.lightllm.tornado.api.ByteArray.allocate(kv.kPool.getSize());
        io.lightllm.tornado.api.ByteArray vq = io.lightllm.tornado.api.ByteArray.allocate(kv.kPool.getSize());
        FloatArray ks = FloatArray.allocate(slots * kv.kvHeads), vs = FloatArray.allocate(slots * kv.kvHeads);
        FloatArray kd = FloatArray.allocate(kv.kPool.getSize()), vd = FloatArray.allocate(kv.kPool.getSize());
        quantise(kv.kPool, kq, ks, kd, kv.headDim);
        quantise(kv.vPool, vq, vs, vd, kv.headDim);
        FloatArray q = TensorAssert.random(kv.batch * kv.qHeads * kv.headDim, 1f, 72);
        int maxSeqLen = 80;
        for (String id : ids) {
            Device device = Devices.get(id);
            DeviceBuffer table = device.upload(kv.reqToToken), rows = device.upload(kv.reqRows);
            DeviceBuffer lens = device.upload(IntArray.fromArray(kv.tokens)), qb = device.upload(q);
            DeviceBuffer expected = device.allocate(DType.F32, q.getSize()), actual = device.allocate(DType.F32, q.getSize());
            Attention.launchDecodeAttentionSplit(device, expected, qb, device.upload(kd), device.upload(vd), null, null, table, rows, lens,
                    null, null, kv.batch, kv.qHeads, kv.kvHeads, kv.headDim, kv.maxLen, maxSeqLen, kv.scale, 32, 4);
            Attention.launchDecodeAttentionSplit(device, actual, qb, device.upload(kq), device.upload(vq), device.upload(ks),
                    device.upload(vs), table, rows, lens, null, null, kv.batch, kv.qHeads, kv.kvHeads, kv.headDim, kv.maxLen, maxSeqLen,
                    kv.scale, 32, 4);
            assertClose(device.download(expected), device.download(actual), 1e-5f, 1e-4f, "int8 decode on " + id);
            // prefill: every token of each request is new
            int[] start = new int[kv.batch];
            int total = 0;
            for (int b = 0; b < kv.batch; b++) {
                start[b] = total;
                total += kv.tokens[b];
            }
            FloatArray pq = TensorAssert.random(total * kv.qHeads * kv.headDim, 1f, 73);
            DeviceBuffer pqb = device.upload(pq), starts = device.upload(IntArray.fromArray(start));
            DeviceBuffer zeros = device.upload(IntArray.allocate(kv.batch));
            DeviceBuffer pe = device.allocate(DType.F32, pq.getSize()), pa = device.allocate(DType.F32, pq.getSize());
            Attention.launchPrefillAttentionLocal(device, pe, pqb, device.upload(kd), device.upload(vd), null, null, table, rows, starts,
                    lens, zeros, null, kv.batch, total, kv.qHeads, kv.kvHeads, kv.headDim, kv.maxLen, maxSeqLen, kv.scale, 4);
            Attention.launchPrefillAttentionLocal(device, pa, pqb, device.upload(kq), device.upload(vq), device.upload(ks), device.upload(vs),
                    table, rows, starts, lens, zeros, null, kv.batch, total, kv.qHeads, kv.kvHeads, kv.headDim, kv.maxLen, maxSeqLen,
                    kv.scale, 4);
            assertClose(device.download(pe), device.download(pa), 1e-5f, 1e-4f, "int8 prefill on " + id);
        }
    }

    /** Symmetric int8 per (slot, head) row of {@code dim} values: codes, scales and the dequantised values. */
    private static void quantise(io.lightllm.tornado.api.NativeArray pool, io.lightllm.tornado.api.ByteArray codes, FloatArray scales,
            FloatArray dequantised, int dim) {
        for (int row = 0; row < scales.getSize(); row++) {
            float max = 0f;
            for (int d = 0; d < dim; d++) {
                float v = pool.getFloat(row * dim + d);
                max = Float.isNaN(v) ? max : Math.max(max, Math.abs(v));
            }
            float scale = max / 127f;
            scales.set(row, scale);
            for (int d = 0; d < dim; d++) {
                float v = pool.getFloat(row * dim + d);
                // unused slots hold NaN in the fixture: keep them NaN so stray reads still show
                byte c = Float.isNaN(v) || scale == 0f ? 0 : (byte) Math.round(v / scale);
                codes.set(row * dim + d, c);
                dequantised.set(row * dim + d, Float.isNaN(v) ? Float.NaN : c * scale);
            }
        }
    }
}
