package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
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

    static Attention.KvView view(Device device, KvFixture kv) {
        return Attention.KvView.of(device.upload(kv.kPool), device.upload(kv.vPool));
    }

    static Attention.TokenTableView table(Device device, KvFixture kv) {
        return new Attention.TokenTableView(device.upload(kv.reqToToken), device.upload(kv.reqRows), kv.maxLen);
    }

    static Attention.Heads heads(Device device, KvFixture kv) {
        Attention.Heads h = new Attention.Heads(kv.qHeads, kv.kvHeads, kv.headDim, kv.scale, null, kv.window);
        return kv.slopes == null ? h : h.withAlibi(device.upload(kv.slopes));
    }

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
        Attention.DecodeSplits splits = Attention.DecodeSplits.choose(jvm, kv.batch, heads(jvm, kv), 300);
        assertEquals(new Attention.DecodeSplits(2, 256), splits);
        assertEquals(160, splits.lengthFor(300)); // 300 tokens shared evenly by the two splits, in steps of 16
        try (Attention.DecodeScratch scratch = Attention.DecodeScratch.allocateFor(jvm, kv.batch, heads(jvm, kv), 300)) {
            for (int run = 0; run < 2; run++) {
                DeviceBuffer out = jvm.allocate(DType.F32, q.getSize());
                Attention.launchDecodeAttention(jvm, out, jvm.upload(q), view(jvm, kv), table(jvm, kv), heads(jvm, kv),
                        new Attention.DecodeBatch(jvm.upload(IntArray.fromArray(kv.tokens)), kv.batch, 300), scratch);
                assertClose(expected, jvm.download(out), (float) bound, 0f, "decode launcher, run " + run);
            }
        }
    }

    @Test
    void eachRequestIsSpreadOverTheSplitsByItsOwnLength() {
        // as in a recorded step: splits sized for a 512-token table row, requests far shorter
        Attention.DecodeSplits splits = new Attention.DecodeSplits(8, 16);
        assertEquals(48, splits.lengthFor(300)); // 300 / 8 = 37.5 -> whole units of 16
        assertEquals(16, splits.lengthFor(1));
        assertEquals(16, splits.lengthFor(128));
        assertEquals(32, splits.lengthFor(129));
        // the splits a request fills share its tokens evenly (the launch lasts as long as its longest split): 160 tokens in
        // two splits of a 128-token unit are 80 + 80, not 128 + 32; 65 in 64-token units 48 + 17, not 64 + 1
        assertEquals(80, new Attention.DecodeSplits(2, 128).lengthFor(160));
        assertEquals(48, new Attention.DecodeSplits(16, 64).lengthFor(65));
        assertEquals(2, Attention.usedSplits(65, 16, 64));
        assertEquals(64, new Attention.DecodeSplits(16, 64).lengthFor(1024));
        for (int len = 1; len <= 600; len++) { // a property: no split holds more than 16 tokens above an even share
            for (int n : new int[] {1, 2, 3, 8, 64}) {
                int used = Attention.usedSplits(len, n, 32);
                int splitLen = Attention.splitLength(len, n, 32);
                assertTrue(used <= n && (long) used * splitLen >= len && (used - 1) * splitLen < len, "len " + len + " splits " + n);
                assertTrue(splitLen < (len + used - 1) / used + 16, "len " + len + " splits " + n + ": " + splitLen);
            }
        }
        assertEquals(new Attention.DecodeSplits(3, 32), Attention.DecodeSplits.of(80, 32));
        KvFixture kv = new KvFixture(new int[] {300, 1, 40, 17}, 4, 2, 16, DType.F32, true, 41);
        checkDecode(jvm, kv, null, splits, 4, "portable decode, 8 splits by length");
        try (io.lightllm.tornado.jvm.JvmDevice device = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(device);
            checkDecode(device, kv, null, splits, 4, "vector decode, 8 splits by length");
            for (int[] h : new int[][] {{8, 2}, {10, 2}}) { // GQA groups of 4 and 5: a key meets four queries at once, then one
                KvFixture grouped = new KvFixture(new int[] {300, 1, 40, 17}, h[0], h[1], 16, DType.F32, true, 43);
                checkDecode(device, grouped, null, splits, 4, "vector decode, GQA group " + h[0] / h[1]);
            }
        }
        for (String id : TestDevices.accelerators()) {
            checkDecode(Devices.get(id), kv, null, splits, 4, id + " portable decode, 8 splits by length");
        }
    }

    @Test
    void smallLaunchesTakeShorterSplitsOnlyWhereTheTunedLengthLeavesComputeUnitsIdle() {
        Attention.Heads heads = Attention.Heads.of(8, 1, 16); // one unit per request
        String min = "lightllm.tuning.jvm.attention.min_split_len", len = "lightllm.tuning.jvm.attention.split_len";
        int cores = jvm.computeUnits();
        System.setProperty(min, "64");
        try {
            // judged at a 1k context, whatever the longest: halved while 1 request x 1024 / length < 2 warps a core
            for (int maxSeqLen : new int[] {256, 4096}) {
                Attention.DecodeSplits one = Attention.DecodeSplits.choose(jvm, 1, heads, maxSeqLen);
                assertTrue(one.splitUnit() == 64 || one.splitUnit() == 128 || one.splitUnit() == 256, one.toString());
                assertTrue(one.splitUnit() == 64 || 1024 / one.splitUnit() >= 2 * cores, one + " on " + cores + " compute units");
                assertEquals(Math.min(Attention.MAX_SPLITS, (maxSeqLen + one.splitUnit() - 1) / one.splitUnit()), one.splits());
            }
            // as many requests as compute units fill the device at the tuned length (4 splits of 256 in 1k each)
            assertEquals(new Attention.DecodeSplits(16, 256), Attention.DecodeSplits.choose(jvm, cores, heads, 4096));
            // tuned at 1024 a lone request always halves: one split of 1k is fewer than two warps for any core
            System.setProperty(len, "1024");
            assertTrue(Attention.DecodeSplits.choose(jvm, 1, heads, 4096).splitUnit() <= 512);
        } finally {
            System.clearProperty(min);
            System.clearProperty(len);
        }
        // without min_split_len the tuned length stands
        assertEquals(new Attention.DecodeSplits(1, 256), Attention.DecodeSplits.choose(jvm, 1, heads, 256));
    }

    @Test
    void theLauncherSplitsSmallBatchesWideAndLargeOnesNotAtAllWhereTheBackendTunesIt() {
        Attention.Heads heads = Attention.Heads.of(8, 2, 16); // one unit per (request, KV head)
        String key = "lightllm.tuning.jvm.attention.decode_units";
        // without decode_units: splits of the tuned length (256 on the JVM) up to the longest context
        assertEquals(new Attention.DecodeSplits(16, 256), Attention.DecodeSplits.choose(jvm, 64, heads, 4096));
        assertEquals(new Attention.DecodeSplits(Attention.MAX_SPLITS, 256), Attention.DecodeSplits.choose(jvm, 1, heads, 1 << 20));
        System.setProperty(key, "64");
        try {
            assertEquals(new Attention.DecodeSplits(16, 256), Attention.DecodeSplits.choose(jvm, 1, heads, 4096)); // wants 32
            assertEquals(new Attention.DecodeSplits(4, 256), Attention.DecodeSplits.choose(jvm, 8, heads, 4096));
            assertEquals(new Attention.DecodeSplits(1, 256), Attention.DecodeSplits.choose(jvm, 64, heads, 4096));
            // the scratch serves every batch up to the largest: 8 requests x 4 splits is the most here
            try (Attention.DecodeScratch scratch = Attention.DecodeScratch.allocateFor(jvm, 64, heads, 4096)) {
                assertEquals(64L * 8, scratch.max().elements());
            }
            // pools of codes take their own target where one is tuned: twice the warps here, and the scratch grows to fit
            System.setProperty(key + "_codes", "128");
            assertEquals(new Attention.DecodeSplits(8, 256), Attention.DecodeSplits.choose(jvm, 8, heads, 4096, DType.I8));
            assertEquals(new Attention.DecodeSplits(8, 256), Attention.DecodeSplits.choose(jvm, 8, heads, 4096, DType.F8_E4M3));
            assertEquals(new Attention.DecodeSplits(4, 256), Attention.DecodeSplits.choose(jvm, 8, heads, 4096, DType.F16));
            try (Attention.DecodeScratch scratch = Attention.DecodeScratch.allocateFor(jvm, 64, heads, 4096)) {
                assertEquals(63L * 2 * 8, scratch.max().elements()); // 63 requests x 2 splits x 8 query heads: the most here
            }
        } finally {
            System.clearProperty(key);
            System.clearProperty(key + "_codes");
        }
    }

    /** A kernel's output, checked against the reference, and the error bound it was checked with. */
    private record Checked(FloatArray out, float bound) {
    }

    /** Portable decode kernels with this split length and work-group size, checked against the naive attention. */
    private static Checked checkDecode(Device device, KvFixture kv, int splitLen, int local, String what) {
        return checkDecode(device, kv, null, splitLen, local, what);
    }

    /**
     * Decode attention checked against the naive attention: the portable kernels with {@code local}
     * items a group, or (local 0) the tensor-core kernel, over the fixture's pool or, given
     * {@code codes}, its int8 or fp8 codes (the fixture then holds their dequantised values).
     */
    private static Checked checkDecode(Device device, KvFixture kv, KvFixture.Codes codes, int splitLen, int local, String what) {
        int maxSeqLen = 0;
        for (int t : kv.tokens) {
            maxSeqLen = Math.max(maxSeqLen, t);
        }
        return checkDecode(device, kv, codes, Attention.DecodeSplits.of(maxSeqLen, splitLen), local, what);
    }

    private static Checked checkDecode(Device device, KvFixture kv, KvFixture.Codes codes, Attention.DecodeSplits decodeSplits, int local,
            String what) {
        FloatArray q = TensorAssert.random(kv.batch * kv.qHeads * kv.headDim, 1f, 35);
        int maxSeqLen = 0;
        for (int t : kv.tokens) {
            maxSeqLen = Math.max(maxSeqLen, t);
        }
        int splits = decodeSplits.splits();
        boolean tensorCores = local == 0;
        Attention.KvView pool = codes == null ? view(device, kv) : codes.upload(device);
        // a work-group of several warps merges as many partial results more
        int partials = splits * decodeSplits.warps();
        FloatArray expected = FloatArray.allocate(q.getSize());
        double bound = 0;
        for (int b = 0; b < kv.batch; b++) {
            for (int h = 0; h < kv.qHeads; h++) {
                bound = Math.max(bound, kv.attend(q, b, b, h, kv.tokens[b] - 1, partials, expected, tensorCores));
            }
        }
        DeviceBuffer out = device.allocate(DType.F32, q.getSize());
        Attention.DecodeBatch batch = new Attention.DecodeBatch(device.upload(IntArray.fromArray(kv.tokens)), kv.batch, maxSeqLen);
        if (tensorCores) {
            Attention.launchDecodeTensorCores(device, out, device.upload(q), pool, table(device, kv), heads(device, kv), batch, null,
                    decodeSplits);
        } else {
            Attention.launchDecodePortable(device, out, device.upload(q), pool, table(device, kv), heads(device, kv), batch, null,
                    decodeSplits, local);
        }
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
        return checkPrefill(device, prefixes, newTokens, qHeads, kvHeads, headDim, pool, alibi, 0, local, what);
    }

    /**
     * Prefill checked against the naive attention: the portable kernel with {@code local} items a
     * group (0: through the tuned launcher), or the tensor-core kernel ({@code local} -1), over a
     * pool of {@code pool}: f32 or f16 values, or int8 or fp8 e4m3 codes (an f32 fixture quantised).
     */
    private static Checked checkPrefill(Device device, int[] prefixes, int[] newTokens, int qHeads, int kvHeads, int headDim,
            DType pool, boolean alibi, int window, int local, String what) {
        boolean codes = pool == DType.I8 || pool == DType.F8_E4M3;
        int batch = prefixes.length;
        int[] total = new int[batch], start = new int[batch];
        int rows = 0, maxNew = 0;
        for (int b = 0; b < batch; b++) {
            total[b] = prefixes[b] + newTokens[b];
            start[b] = rows;
            rows += newTokens[b];
            maxNew = Math.max(maxNew, newTokens[b]);
        }
        KvFixture kv = new KvFixture(total, qHeads, kvHeads, headDim, codes ? DType.F32 : pool, alibi, 36);
        kv.window = window;
        KvFixture.Codes quantised = !codes ? null : pool == DType.I8 ? kv.quantise() : kv.quantiseFp8();
        Attention.KvView kvView = quantised == null ? view(device, kv) : quantised.upload(device);
        boolean tensorCores = local < 0 || (local == 0 && Attention.usesTensorCores(device, kvView, heads(device, kv)));
        FloatArray q = TensorAssert.random(rows * qHeads * headDim, 1f, 37);
        FloatArray expected = FloatArray.allocate(q.getSize());
        double bound = 0;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < newTokens[b]; i++) {
                for (int h = 0; h < qHeads; h++) {
                    bound = Math.max(bound, kv.attend(q, start[b] + i, b, h, prefixes[b] + i, 0, expected, tensorCores));
                }
            }
        }
        DeviceBuffer out = device.allocate(DType.F32, q.getSize());
        Attention.PrefillBatch prefill = new Attention.PrefillBatch(device.upload(IntArray.fromArray(start)),
                device.upload(IntArray.fromArray(newTokens)), device.upload(IntArray.fromArray(prefixes)), batch, rows, maxNew);
        if (tensorCores) {
            Attention.launchPrefillTensorCores(device, out, device.upload(q), kvView, table(device, kv), heads(device, kv), prefill);
        } else if (local == 0) {
            Attention.launchPrefillAttention(device, out, device.upload(q), kvView, table(device, kv), heads(device, kv), prefill);
        } else {
            Attention.launchPrefillPortable(device, out, device.upload(q), kvView, table(device, kv), heads(device, kv), prefill, local);
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
        Attention.KvView kv = Attention.KvView.of(any, any);
        Attention.TokenTableView table = new Attention.TokenTableView(ints, ints, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Attention.launchDecodeAttention(jvm, any,
                any, kv, table, Attention.Heads.of(3, 2, 4), new Attention.DecodeBatch(ints, 1, 8), null));
        assertEquals("qHeads 3 is not a multiple of kvHeads 2", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.launchPrefillAttention(jvm, any, any, kv, table,
                Attention.Heads.of(2, 2, 300), new Attention.PrefillBatch(ints, ints, ints, 1, 1, 8)));
        assertEquals("headDim must be 1 to 256, got 300", e.getMessage());
        // the tensor-core kernels serve f16, int8 and fp8 pools of head dimension 64 and 128
        e = assertThrows(IllegalArgumentException.class, () -> Attention.launchDecodeTensorCores(jvm, any, any, kv, table,
                Attention.Heads.of(2, 2, 64), new Attention.DecodeBatch(ints, 1, 8), null, new Attention.DecodeSplits(1, 16)));
        assertEquals("the tensor-core attention kernels read f16, int8 or fp8 e4m3 pools, not F32", e.getMessage());
        DeviceBuffer halves = jvm.allocate(DType.F16, 64);
        e = assertThrows(IllegalArgumentException.class, () -> Attention.launchPrefillTensorCores(jvm, any, any,
                Attention.KvView.of(halves, halves), table, Attention.Heads.of(1, 1, 32), new Attention.PrefillBatch(ints, ints, ints, 1, 1, 8)));
        assertEquals("the tensor-core attention kernels serve head dimensions 64 and 128, not 32", e.getMessage());
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
        KvFixture kv = new KvFixture(new int[] {37, 5, 80}, 4, 2, 16, DType.F32, false, 71);
        KvFixture.Int8Pool codes = kv.quantise();
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        for (Device device : devices) {
            assertScaledPoolMatchesItsValues(device, device.id(), kv, new Attention.KvView(device.upload(codes.keys()),
                    device.upload(codes.values()), device.upload(codes.keyScales()), device.upload(codes.valueScales())), false);
        }
        // the JVM's Vector API decode with one thread and four requests: a task takes both KV heads, whose rows and
        // scales it reads together
        KvFixture four = new KvFixture(new int[] {37, 5, 80, 12}, 4, 2, 16, DType.F32, false, 72);
        KvFixture.Int8Pool fourCodes = four.quantise();
        try (io.lightllm.tornado.jvm.JvmDevice vectors = new io.lightllm.tornado.jvm.JvmDevice(1)) {
            KernelLibrary.installOverrides(vectors);
            assertEquals(2, io.lightllm.kernels.jvm.VectorAttention.headsPerTask(four.batch, four.kvHeads, 1));
            assertScaledPoolMatchesItsValues(vectors, "jvm (vector overrides, one thread)", four, new Attention.KvView(
                    vectors.upload(fourCodes.keys()), vectors.upload(fourCodes.values()), vectors.upload(fourCodes.keyScales()),
                    vectors.upload(fourCodes.valueScales())), true);
        }
    }

    /**
     * An fp8 e4m3 pool (codes plus one scale per token and head, as KvCache.copyToPoolFp8 writes)
     * gives the attention of the f32 pool holding the dequantised values, with the int8 test's
     * tolerance: on the JVM, every accelerator and the JVM with its Vector API overrides (which widen
     * fp8 rows by table); at head dimension 16 the launchers keep the portable kernels everywhere.
     */
    @Test
    void fp8PoolsMatchTheirDequantisedValues() {
        KvFixture kv = new KvFixture(new int[] {37, 5, 80}, 4, 2, 16, DType.F32, false, 71);
        KvFixture.Fp8Pool codes = kv.quantiseFp8();
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        try (io.lightllm.tornado.jvm.JvmDevice vectors = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(vectors);
            devices.add(vectors);
            for (Device device : devices) {
                Attention.KvView fp8 = new Attention.KvView(device.upload(codes.keys()), device.upload(codes.values()),
                        device.upload(codes.keyScales()), device.upload(codes.valueScales()));
                assertTrue(fp8.scaled());
                assertScaledPoolMatchesItsValues(device, device.id() + (device == vectors ? " (vector overrides)" : ""), kv, fp8, true);
            }
        }
    }

    /**
     * Decode and prefill (every token of each request new) over {@code scaled} against the portable kernels over
     * {@code kv}'s f32 pool of the dequantised values; {@code launchers}: the scaled pool through the dispatching
     * launchers (which pick the device's kernels), else through the portable ones too.
     */
    private void assertScaledPoolMatchesItsValues(Device device, String what, KvFixture kv, Attention.KvView scaled, boolean launchers) {
        int maxSeqLen = 80;
        FloatArray q = TensorAssert.random(kv.batch * kv.qHeads * kv.headDim, 1f, 72);
        Attention.TokenTableView table = table(device, kv);
        Attention.Heads heads = heads(device, kv);
        Attention.KvView dequantised = view(device, kv);
        DeviceBuffer lens = device.upload(IntArray.fromArray(kv.tokens)), qb = device.upload(q);
        Attention.DecodeBatch batch = new Attention.DecodeBatch(lens, kv.batch, maxSeqLen);
        DeviceBuffer expected = device.allocate(DType.F32, q.getSize()), actual = device.allocate(DType.F32, q.getSize());
        Attention.launchDecodePortable(device, expected, qb, dequantised, table, heads, batch, null, Attention.DecodeSplits.of(maxSeqLen, 32), 4);
        if (launchers) {
            Attention.launchDecodeAttention(device, actual, qb, scaled, table, heads, batch, null);
        } else {
            Attention.launchDecodePortable(device, actual, qb, scaled, table, heads, batch, null, Attention.DecodeSplits.of(maxSeqLen, 32), 4);
        }
        assertClose(device.download(expected), device.download(actual), 1e-5f, 1e-4f, "decode on " + what);
        int[] start = new int[kv.batch];
        int total = 0;
        for (int b = 0; b < kv.batch; b++) {
            start[b] = total;
            total += kv.tokens[b];
        }
        FloatArray pq = TensorAssert.random(total * kv.qHeads * kv.headDim, 1f, 73);
        DeviceBuffer pqb = device.upload(pq);
        Attention.PrefillBatch prefill = new Attention.PrefillBatch(device.upload(IntArray.fromArray(start)), lens,
                device.upload(IntArray.allocate(kv.batch)), kv.batch, total, maxSeqLen);
        DeviceBuffer pe = device.allocate(DType.F32, pq.getSize()), pa = device.allocate(DType.F32, pq.getSize());
        Attention.launchPrefillPortable(device, pe, pqb, dequantised, table, heads, prefill, 4);
        if (launchers) {
            Attention.launchPrefillAttention(device, pa, pqb, scaled, table, heads, prefill);
        } else {
            Attention.launchPrefillPortable(device, pa, pqb, scaled, table, heads, prefill, 4);
        }
        assertClose(device.download(pe), device.download(pa), 1e-5f, 1e-4f, "prefill on " + what);
    }

    /** Where the tuning asks for tensor cores they serve fp8 pools too (tensorCoreDecodeMatchesNaiveAttention checks them), and a pool of codes needs its scales. */
    @Test
    void fp8PoolsTakeTensorCoresWhereTuned() {
        DeviceBuffer fp8 = jvm.allocate(DType.F8_E4M3, 64);
        Attention.KvView view = new Attention.KvView(fp8, fp8, fp8, fp8);
        assertEquals(false, Attention.usesTensorCores(jvm, view, Attention.Heads.of(2, 2, 64)));
        String key = "lightllm.tuning.jvm.attention.tensor_cores";
        System.setProperty(key, "1");
        try {
            assertEquals(true, Attention.usesTensorCores(jvm, view, Attention.Heads.of(2, 2, 64)));
        } finally {
            System.clearProperty(key);
        }
        DeviceBuffer ints = jvm.allocate(DType.I32, 64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Attention.launchDecodeAttention(jvm, ints, ints,
                Attention.KvView.of(fp8, fp8), new Attention.TokenTableView(ints, ints, 8), Attention.Heads.of(2, 2, 4),
                new Attention.DecodeBatch(ints, 1, 8), null));
        assertEquals("a F8_E4M3 KV pool needs its key and value scales", e.getMessage());
    }

    /**
     * The JVM's Vector API attention (kernels.jvm.VectorAttention, installed as overrides of the
     * portable decode and prefill kernels) against the naive attention, with the portable kernels'
     * bound: GQA, MQA and multi-head, f32 / f16 / int8 pools, ALiBi, sliding windows, cached prefixes,
     * several splits and key blocks.
     */
    @Test
    void jvmVectorOverridesMatchNaiveAttention() {
        try (io.lightllm.tornado.jvm.JvmDevice device = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(device);
            assertTrue(device.hasOverride(Attention.DECODE_PARTIAL) && device.hasOverride(Attention.PREFILL));
            for (int[] heads : HEADS) {
                for (DType pool : new DType[] {DType.F32, DType.F16}) {
                    for (boolean alibi : new boolean[] {false, true}) {
                        String what = "vector heads " + heads[0] + "/" + heads[1] + " D " + heads[2] + " " + pool + (alibi ? " alibi" : "");
                        checkDecode(device, new KvFixture(DECODE_LENS, heads[0], heads[1], heads[2], pool, alibi, 31), SPLIT_LEN, 4, what + " decode");
                        checkPrefill(device, PREFIXES, NEW_TOKENS, heads[0], heads[1], heads[2], pool, alibi, 4, what + " prefill");
                    }
                }
            }
            // 150 keys: several key blocks of the prefill; a window of 20 over splits of 16
            checkPrefill(device, new int[] {0, 30}, new int[] {150, 70}, 8, 2, 64, DType.F32, true, 4, "vector prefill, long");
            KvFixture windowed = new KvFixture(new int[] {1, 23, 70}, 4, 2, 16, DType.F16, true, 43);
            windowed.window = 20;
            checkDecode(device, windowed, null, 16, 4, "vector decode, window 20");
            checkDecode(device, windowed, null, new Attention.DecodeSplits(8, 16), 4, "vector decode, window 20, 8 splits by length");
            checkPrefill(device, new int[] {0, 0, 70}, new int[] {1, 75, 20}, 4, 2, 16, DType.F16, true, 20, 4, "vector prefill, window 20");
            KvFixture kv = new KvFixture(new int[] {37, 5, 80}, 4, 2, 16, DType.F32, false, 71);
            checkDecode(device, kv, kv.quantise(), 32, 4, "vector decode, int8 pool");
        }
    }

    // ---- sliding window ------------------------------------------------------------------------

    /**
     * A sliding window (Mistral): every kernel, portable and tensor-core, on the JVM and every
     * accelerator, against the naive attention over the query's last W tokens. Decode splits wholly
     * before the window (contexts of 70 with a window of 20 and splits of 16) must give the merge
     * nothing; prefill tiles start at the first row's window and mask per row past it.
     */
    @Test
    void slidingWindowsSeeTheLastTokensOnly() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        int[] prefixes = {0, 0, 70};
        int[] newTokens = {1, 75, 20};
        for (Device device : devices) {
            for (int window : new int[] {5, 20}) {
                String what = device.id() + " window " + window;
                KvFixture portable = new KvFixture(new int[] {1, 7, 23, 70}, 4, 2, 16, DType.F16, true, 43);
                portable.window = window;
                checkDecode(device, portable, null, 16, 4, what + " portable decode");
                checkPrefill(device, prefixes, newTokens, 4, 2, 16, DType.F16, true, window, 4, what + " portable prefill");
                KvFixture tc = new KvFixture(new int[] {1, 23, 70, 9}, 8, 2, 64, DType.F16, true, 44);
                tc.window = window;
                checkDecode(device, tc, null, 16, 0, what + " tensor-core decode, splits of 16");
                checkDecode(device, tc, null, 96, 0, what + " tensor-core decode, one split");
                checkDecode(device, tc, null, new Attention.DecodeSplits(32, 16), 0, what + " tensor-core decode, 32 splits by length");
                checkPrefill(device, prefixes, newTokens, 8, 2, 64, DType.F16, true, window, -1, what + " tensor-core prefill");
            }
        }
    }

    // ---- tensor cores ------------------------------------------------------------------------

    /** (qHeads, kvHeads, headDim) for the tensor-core kernels: GQA, MHA, MQA over two row chunks of 16, head dimension 128. */
    private static final int[][] TC_HEADS = {{8, 2, 64}, {2, 2, 64}, {20, 1, 64}, {4, 1, 128}};

    /**
     * Tensor-core decode, on the JVM (the warps emulated) and every accelerator, against the naive
     * attention with the bound of f16 operands: single and several splits, steps cut short by the
     * split's end, ALiBi, f16, int8 and fp8 pools.
     */
    @Test
    void tensorCoreDecodeMatchesNaiveAttention() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            checkTensorCoreDecode(device, 1);
        }
    }

    /**
     * The same with four warps a work-group (attention.decode_warps=4: the warps take turns at a split's steps and merge
     * in local memory), where a warp's turns end at different places in a split (1, 9, 23 and 70 tokens over splits of
     * 16 to 96) and past a short request's end; and the launcher's splits grouped four to a work-group.
     */
    @Test
    void tensorCoreDecodeWithFourWarpsAGroupMatchesNaiveAttention() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            checkTensorCoreDecode(device, 4);
        }
        String[] keys = {"lightllm.tuning.jvm.attention.tensor_cores", "lightllm.tuning.jvm.attention.decode_warps"};
        System.setProperty(keys[0], "1");
        System.setProperty(keys[1], "4");
        try {
            Attention.Heads heads = Attention.Heads.of(32, 8, 128);
            // the JVM's splits of 256 tokens (one a unit of the longest context), four of them a work-group of 1,024
            assertEquals(new Attention.DecodeSplits(4, 1024, 4), Attention.DecodeSplits.choose(jvm, 1, heads, 4096, DType.F16));
            // over codes too, however many (request, KV head) units the launch has
            Attention.Heads oneKvHead = Attention.Heads.of(4, 1, 128);
            assertEquals(new Attention.DecodeSplits(1, 1024, 4), Attention.DecodeSplits.choose(jvm, 1, oneKvHead, 300, DType.I8));
            int many = jvm.computeUnits() + 1;
            assertEquals(4, Attention.DecodeSplits.choose(jvm, many, oneKvHead, 300, DType.I8).warps());
            assertEquals(4, Attention.DecodeSplits.choose(jvm, many, oneKvHead, 300, DType.F16).warps());
            // a launch that does not split keeps a warp a group; f32 pools run the portable kernels
            assertEquals(new Attention.DecodeSplits(1, 256, 1), Attention.DecodeSplits.choose(jvm, 1, heads, 160, DType.F16));
            assertEquals(new Attention.DecodeSplits(16, 256, 1), Attention.DecodeSplits.choose(jvm, 1, heads, 4096, DType.F32));
            // decode_warps_whole=8: eight warps where they take a request whole (5-8 splits), four would not, and the
            // launch's (request, KV head) units are between half the device's units and all of them
            System.setProperty("lightllm.tuning.jvm.attention.decode_warps_whole", "8");
            try {
                int units = jvm.computeUnits();
                assertEquals(new Attention.DecodeSplits(1, 2048, 8), Attention.DecodeSplits.choose(jvm, units, oneKvHead, 2048, DType.I8));
                assertEquals(new Attention.DecodeSplits(1, 2048, 8), Attention.DecodeSplits.choose(jvm, (units + 1) / 2, oneKvHead, 1100, DType.F16));
                if (units >= 4) {
                    assertEquals(4, Attention.DecodeSplits.choose(jvm, units / 2 - 1, oneKvHead, 2048, DType.I8).warps(), "under half the units");
                }
                // one KV head more than the JVM has units (8 KV heads were that on a 2-core machine, not on 16)
                Attention.Heads moreThanUnits = Attention.Heads.of(4 * (units + 1), units + 1, 128);
                assertEquals(4, Attention.DecodeSplits.choose(jvm, 1, moreThanUnits, 2048, DType.I8).warps(), "more KV heads than the JVM's units");
                assertEquals(new Attention.DecodeSplits(4, 1024, 4), Attention.DecodeSplits.choose(jvm, 1, heads, 4096, DType.F16));
                assertEquals(new Attention.DecodeSplits(1, 1024, 4), Attention.DecodeSplits.choose(jvm, 1, heads, 1000, DType.F16));
                // a value that is no decode work-group's warps is refused, as decode_warps's
                System.setProperty("lightllm.tuning.jvm.attention.decode_warps_whole", "5");
                assertThrows(IllegalArgumentException.class, () -> Attention.DecodeSplits.choose(jvm, 1, heads, 4096, DType.F16));
            } finally {
                System.clearProperty("lightllm.tuning.jvm.attention.decode_warps_whole");
            }
            System.setProperty(keys[1], "2");
            assertThrows(IllegalArgumentException.class, () -> Attention.DecodeSplits.choose(jvm, 1, heads, 4096, DType.F16));
        } finally {
            System.clearProperty(keys[0]);
            System.clearProperty(keys[1]);
        }
        assertThrows(IllegalArgumentException.class, () -> new Attention.DecodeSplits(4, 64, 2));
    }

    @Test
    void tensorCoreDecodeWithEightWarpsAGroupMatchesNaiveAttention() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            checkTensorCoreDecode(device, 8);
        }
    }

    /** Tensor-core decode with {@code warps} warps a work-group against the naive attention, over the fixture cases above. */
    private static void checkTensorCoreDecode(Device device, int warps) {
        for (int[] h : TC_HEADS) {
            for (boolean alibi : new boolean[] {false, true}) {
                String what = device.id() + " tensor-core decode, " + warps + " warps a group, heads " + h[0] + "/" + h[1] + " D " + h[2]
                        + (alibi ? " alibi" : "");
                KvFixture f16 = new KvFixture(new int[] {1, 23, 70, 9}, h[0], h[1], h[2], DType.F16, alibi, 41);
                checkDecode(device, f16, null, withWarps(Attention.DecodeSplits.of(70, 16), warps), 0, what + " f16 splits of 16");
                checkDecode(device, f16, null, withWarps(Attention.DecodeSplits.of(70, 96), warps), 0, what + " f16 one split");
                checkDecode(device, f16, null, new Attention.DecodeSplits(8, 16, warps), 0, what + " f16 8 splits by length");
                KvFixture f32 = new KvFixture(new int[] {40, 3}, h[0], h[1], h[2], DType.F32, alibi, 42);
                checkDecode(device, f32, f32.quantise(), withWarps(Attention.DecodeSplits.of(40, 32), warps), 0, what + " int8");
                KvFixture forFp8 = new KvFixture(new int[] {40, 3}, h[0], h[1], h[2], DType.F32, alibi, 43);
                checkDecode(device, forFp8, forFp8.quantiseFp8(), withWarps(Attention.DecodeSplits.of(40, 32), warps), 0, what + " fp8");
                // a split of more steps a warp than its ring of slots and scales holds (TensorCoreAttention.CODE_RING), codes
                KvFixture longer = new KvFixture(new int[] {5, 330}, h[0], h[1], h[2], DType.F32, alibi, 44);
                checkDecode(device, longer, longer.quantise(), withWarps(Attention.DecodeSplits.of(330, 512), warps), 0, what + " int8 one split");
            }
        }
    }

    private static Attention.DecodeSplits withWarps(Attention.DecodeSplits splits, int warps) {
        return new Attention.DecodeSplits(splits.splits(), splits.splitUnit(), warps);
    }

    /**
     * Tensor-core prefill, on the JVM and every accelerator, against the naive causal attention
     * with the bound of f16 operands: a single token, row tiles that cover several tokens of a GQA
     * group, several key steps, cached prefixes, ALiBi, f16, int8 and fp8 pools.
     */
    @Test
    void tensorCorePrefillMatchesNaiveAttention() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        int[] prefixes = {0, 0, 70};
        int[] newTokens = {1, 75, 20};
        for (Device device : devices) {
            for (int[] h : TC_HEADS) {
                for (boolean alibi : new boolean[] {false, true}) {
                    String what = device.id() + " tensor-core prefill heads " + h[0] + "/" + h[1] + " D " + h[2] + (alibi ? " alibi" : "");
                    checkPrefill(device, prefixes, newTokens, h[0], h[1], h[2], DType.F16, alibi, 0, -1, what + " f16");
                }
            }
            checkPrefill(device, prefixes, newTokens, 8, 2, 64, DType.I8, false, 0, -1, device.id() + " tensor-core prefill int8");
            checkPrefill(device, prefixes, newTokens, 8, 2, 64, DType.F8_E4M3, false, 0, -1, device.id() + " tensor-core prefill fp8");
        }
    }

    /**
     * The prefill on warpgroup MMAs ({@link WarpgroupAttention}, under attention.prefill_warpgroup=1: f16 pools of head
     * dimension 128) against the naive causal attention with the bound of f16 operands (q and P rounded to f16, as the
     * mma.sync kernel rounds them), on the JVM and every accelerator that has the feature (OpenCL and the JVM compute the
     * MMAs at the call): a single token, 300 GQA rows over three tiles of 128, several key steps, a cached prefix, and
     * one query head per KV head; then a prompt of 300 tokens alone (five steps of 64 keys, rows of one token's four heads
     * in each tile), and seven query heads a KV head (a token's rows straddle the warpgroups' and tiles' edges).
     */
    @Test
    void warpgroupPrefillMatchesNaiveAttention() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            if (!device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA)) {
                continue;
            }
            String property = "lightllm.tuning." + Devices.backendName(device.id()) + ".attention.prefill_warpgroup";
            System.setProperty(property, "1");
            try {
                KvFixture kv = new KvFixture(new int[] {4}, 8, 2, 128, DType.F16, false, 36);
                assertTrue(Attention.usesWarpgroupPrefill(device, view(device, kv), heads(device, kv)), device.id() + " takes the warpgroup kernel");
                checkPrefill(device, new int[] {0, 0, 70}, new int[] {1, 75, 20}, 8, 2, 128, DType.F16, false, 0, -1, device.id() + " warpgroup prefill GQA");
                checkPrefill(device, new int[] {0, 0, 70}, new int[] {1, 75, 20}, 4, 4, 128, DType.F16, false, 0, -1, device.id() + " warpgroup prefill MHA");
                checkPrefill(device, new int[] {0}, new int[] {300}, 8, 2, 128, DType.F16, false, 0, -1, device.id() + " warpgroup prefill, 300 tokens");
                // seven query heads a KV head (Qwen2-7B's 28 / 4): a token's rows straddle the 64-row tiles
                checkPrefill(device, new int[] {5, 0}, new int[] {40, 23}, 14, 2, 128, DType.F16, false, 0, -1, device.id() + " warpgroup prefill, group 7");
                // units in tile-major order (attention.prefill_tile_major_passes), heavy and light ones paired on an SM
                // (attention.prefill_pairing) where all groups run at once: 1,100 tokens are 138 groups, one pass of an H100's
                // or H200's 132 SMs; 40 tokens of one KV head are 3 (one pass of the JVM's two units); two requests of two lengths
                String backend = "lightllm.tuning." + Devices.backendName(device.id()) + ".attention.";
                System.setProperty(backend + "prefill_tile_major_passes", "100");
                System.setProperty(backend + "prefill_pairing", "1");
                try {
                    checkPrefill(device, new int[] {0}, new int[] {1100}, 8, 2, 128, DType.F16, false, 0, -1, device.id() + " paired warpgroup prefill");
                    checkPrefill(device, new int[] {0}, new int[] {40}, 4, 1, 128, DType.F16, false, 0, -1, device.id() + " paired warpgroup prefill, 3 groups");
                    checkPrefill(device, new int[] {0, 30}, new int[] {300, 90}, 8, 2, 128, DType.F16, false, 0, -1,
                            device.id() + " tile-major warpgroup prefill, two lengths");
                } finally {
                    System.clearProperty(backend + "prefill_tile_major_passes");
                    System.clearProperty(backend + "prefill_pairing");
                }
            } finally {
                System.clearProperty(property);
            }
        }
    }

    /**
     * Under attention.prefill_half_operands the warpgroup prefill reads the f16 query operand (the f32 rows times
     * {@link Attention#queryOperandScale}, rounded once, as the kernel rounds them itself) and writes its rows in the
     * consumer's bf16 or f16: the same scores and sums, so every element is the f32 run's, rounded once (bit for bit),
     * with the query operand or f32 rows (the q/k-norm models' split leaves them f32), over three requests (a cached
     * prefix, one token, a partial last tile). Without the tuning, or where another kernel runs, the types are f32 and the
     * launcher refuses others.
     */
    @Test
    void warpgroupPrefillTakesHalfOperands() {
        for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
            if (!device.supports(io.lightllm.tornado.compiler.Feature.WARPGROUP_MMA)) {
                continue;
            }
            String backend = "lightllm.tuning." + Devices.backendName(device.id()) + ".attention.";
            int[] prefixes = {0, 30, 70}, newTokens = {300, 90, 1}, start = {0, 300, 390};
            int rows = 391, qHeads = 8, headDim = 128;
            KvFixture kv = new KvFixture(new int[] {300, 120, 71}, qHeads, 2, headDim, DType.F16, false, 36);
            Attention.KvView view = view(device, kv);
            Attention.Heads heads = heads(device, kv);
            Attention.PrefillBatch prefill = new Attention.PrefillBatch(device.upload(IntArray.fromArray(start)),
                    device.upload(IntArray.fromArray(newTokens)), device.upload(IntArray.fromArray(prefixes)), 3, rows, 300);
            FloatArray q = TensorAssert.random(rows * qHeads * headDim, 1f, 37);
            HalfArray operand = HalfArray.allocate(q.getSize());
            for (int i = 0; i < q.getSize(); i++) {
                operand.setFloat(i, q.get(i) * Attention.queryOperandScale(heads));
            }
            System.setProperty(backend + "tensor_cores", "1");
            System.setProperty(backend + "prefill_warpgroup", "1");
            System.setProperty(backend + "prefill_half_operands", "0"); // "untuned" below, where CUDA's defaults turn it on
            try {
                assertTrue(Attention.usesWarpgroupPrefill(device, view, heads), device.id() + " takes the warpgroup kernel");
                DeviceBuffer f32 = device.allocate(DType.F32, q.getSize());
                Attention.launchPrefillAttention(device, f32, device.upload(q), view, table(device, kv), heads, prefill);
                FloatArray reference = (FloatArray) device.download(f32);
                assertEquals(DType.F32, Attention.prefillQueryType(device, view, heads), "untuned");
                assertEquals(DType.F32, Attention.prefillOutputType(device, view, heads, DType.BF16), "untuned");
                assertThrows(IllegalArgumentException.class, () -> Attention.launchPrefillAttention(device, f32, device.upload(operand), view,
                        table(device, kv), heads, prefill), "untuned: no f16 queries");
                System.setProperty(backend + "prefill_half_operands", "1");
                assertEquals(DType.F16, Attention.prefillQueryType(device, view, heads));
                assertEquals(DType.BF16, Attention.prefillOutputType(device, view, heads, DType.BF16));
                assertEquals(DType.F32, Attention.prefillOutputType(device, view, heads, DType.F32), "an f32 consumer");
                for (DType outType : new DType[] {DType.BF16, DType.F16}) {
                    for (boolean queryOperand : new boolean[] {true, false}) {
                        DeviceBuffer out = device.allocate(outType, q.getSize());
                        Attention.launchPrefillAttention(device, out, device.upload(queryOperand ? operand : q), view, table(device, kv), heads, prefill);
                        NativeArray expected = NativeArray.allocate(outType, q.getSize());
                        for (int i = 0; i < q.getSize(); i++) {
                            expected.setFloat(i, reference.get(i));
                        }
                        assertClose(expected, device.download(out), 0f, 0f, device.id() + " " + outType + " rows, " + (queryOperand ? "f16 operand" : "f32 queries"));
                    }
                }
                KvFixture int8 = new KvFixture(new int[] {4}, qHeads, 2, headDim, DType.F32, false, 36);
                Attention.KvView codes = int8.quantise().upload(device);
                assertEquals(DType.F32, Attention.prefillQueryType(device, codes, heads(device, int8)), "an int8 pool takes another kernel");
            } finally {
                System.clearProperty(backend + "tensor_cores");
                System.clearProperty(backend + "prefill_warpgroup");
                System.clearProperty(backend + "prefill_half_operands");
            }
        }
    }

    /**
     * The warpgroup prefill's order of units is a permutation of the groups; paired (all groups within two a unit), an
     * SM's two groups (g and g + wave) hold ranks that add up to the last rank; otherwise every group keeps its rank.
     */
    @Test
    void warpgroupPrefillPairsHeavyWithLightUnits() {
        for (int wave : new int[] {0, 1, 2, 132}) {
            for (int groups : new int[] {1, 2, 3, 100, 132, 133, 256, 264, 265, 1000}) {
                boolean[] seen = new boolean[groups];
                boolean paired = wave > 0 && groups <= 2 * wave;
                for (int g = 0; g < groups; g++) {
                    int rank = WarpgroupAttention.rankOf(g, groups, wave);
                    assertTrue(rank >= 0 && rank < groups && !seen[rank], "rank " + rank + " of group " + g + ", " + groups + " groups, wave " + wave);
                    seen[rank] = true;
                    if (!paired || g < wave && g + wave >= groups) {
                        assertEquals(g, rank, "group " + g + " of " + groups + " unpaired, wave " + wave);
                    } else if (g < wave) {
                        assertEquals(groups - 1, rank + WarpgroupAttention.rankOf(g + wave, groups, wave), "an SM's pair, group " + g);
                    }
                }
            }
        }
    }

    /** The prefill work-group's warps: a set prefill_warps wins, else eight from prefill_wide_from new tokens on, else four. */
    @Test
    void prefillWarpsFollowTheTuning() {
        String wideFrom = "lightllm.tuning.jvm.attention.prefill_wide_from", warps = "lightllm.tuning.jvm.attention.prefill_warps";
        assertEquals(TensorCoreAttention.PREFILL_WARPS, Attention.prefillWarps(jvm, 100_000), "jvm: no wide rule");
        System.setProperty(wideFrom, "100");
        try {
            assertEquals(TensorCoreAttention.PREFILL_WARPS, Attention.prefillWarps(jvm, 99));
            assertEquals(TensorCoreAttention.PREFILL_WIDE_WARPS, Attention.prefillWarps(jvm, 100));
            System.setProperty(warps, "4");
            assertEquals(TensorCoreAttention.PREFILL_WARPS, Attention.prefillWarps(jvm, 100), "a set prefill_warps wins");
        } finally {
            System.clearProperty(wideFrom);
            System.clearProperty(warps);
        }
    }

    /**
     * The wide tensor-core prefill ({@code attention.prefill_warps=8}: 128 rows a work-group) against the naive
     * attention, and equal to the four-warp kernel: every row's sums are the same MMAs in the same order, only
     * the tile that holds them differs. Requests of 1 to 75 new tokens over prefixes, GQA whose group spans
     * tiles, head dimensions 64 and 128, a sliding window, int8 codes.
     */
    @Test
    void widePrefillEqualsFourWarps() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        String key = "lightllm.tuning." + "%s" + ".attention.prefill_warps";
        for (Device device : devices) {
            String property = String.format(key, Devices.backendName(device.id()));
            // (qHeads, kvHeads, headDim, window, int8 pool)
            for (int[] c : new int[][] {{8, 2, 64, 0, 0}, {4, 1, 128, 20, 0}, {20, 1, 64, 0, 1}}) {
                DType pool = c[4] == 1 ? DType.I8 : DType.F16;
                String what = device.id() + " wide tensor-core prefill heads " + c[0] + "/" + c[1] + " D " + c[2] + " window " + c[3] + " " + pool;
                Checked narrow = checkPrefill(device, new int[] {0, 0, 70}, new int[] {1, 75, 20}, c[0], c[1], c[2], pool, c[3] > 0, c[3], -1,
                        what + " (4 warps)");
                System.setProperty(property, "8");
                try {
                    Checked wide = checkPrefill(device, new int[] {0, 0, 70}, new int[] {1, 75, 20}, c[0], c[1], c[2], pool, c[3] > 0, c[3], -1,
                            what);
                    assertArrayEquals(narrow.out().toArray(), wide.out().toArray(), what + ": same sums as 4 warps");
                } finally {
                    System.clearProperty(property);
                }
            }
        }
    }

    /** Where the device's tuning asks for tensor cores, the launchers take them for f16 and int8 pools of supported head dimensions only. */
    @Test
    void launchersPickTensorCoresFromTheTuning() {
        DeviceBuffer halves = jvm.allocate(DType.F16, 64), floats = jvm.allocate(DType.F32, 64);
        assertEquals(false, Attention.usesTensorCores(jvm, Attention.KvView.of(halves, halves), Attention.Heads.of(2, 2, 64)));
        String key = "lightllm.tuning.jvm.attention.tensor_cores";
        System.setProperty(key, "1");
        try {
            assertEquals(true, Attention.usesTensorCores(jvm, Attention.KvView.of(halves, halves), Attention.Heads.of(2, 2, 64)));
            assertEquals(false, Attention.usesTensorCores(jvm, Attention.KvView.of(floats, floats), Attention.Heads.of(2, 2, 64)));
            assertEquals(false, Attention.usesTensorCores(jvm, Attention.KvView.of(halves, halves), Attention.Heads.of(2, 2, 16)));
            // and the launcher then runs them: the tuned prefill of a D 64 f16 pool within the tensor-core bound
            checkPrefill(jvm, new int[] {0}, new int[] {9}, 4, 2, 64, DType.F16, false, 0, 0, "tuned launcher on tensor cores");
        } finally {
            System.clearProperty(key);
        }
    }
}
