package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The warp model of the kernel language (shuffles, tensor-core MMA, matrix loads, asynchronous
 * copies), vector accesses and packed pairs: each kernel on the JVM and every accelerator against an
 * independent host computation, and its CUDA C through nvcc with the PTX instructions it must use.
 */
class WarpOperationsTest {
    static final KernelRef SHUFFLES = KernelRef.of(WarpOperationsTest.class, "shuffles");
    static final KernelRef MATMUL = KernelRef.of(WarpOperationsTest.class, "tileMatmul");
    static final KernelRef VECTOR_COPY = KernelRef.of(WarpOperationsTest.class, "vectorCopy");
    static final KernelRef PACK = KernelRef.of(WarpOperationsTest.class, "packAndExp2");

    /** out[2i] = in of lane ^ 5, out[2i + 1] = in of lane (7 lane) % 32, within each warp. */
    public static void shuffles(KernelContext ctx, FloatArray out, FloatArray in) {
        int id = ctx.globalIdx;
        float v = in.get(id);
        float x = ctx.warpShuffleXor(v, 5);
        float y = ctx.warpShuffle(v, (ctx.laneId() * 7) % KernelContext.WARP_SIZE);
        out.set(2 * id, x);
        out.set(2 * id + 1, y);
    }

    /** Ints of a tile row: 32 halves of k (16 ints) and 4 of padding, so that rows start on 16 bytes. */
    static final int A_STRIDE = 20;
    /** k-major B rows: 16 halves of n (8 ints) and 4 of padding. */
    static final int BT_STRIDE = 12;

    /**
     * c[m, n] = sum_k a[m, k] b(k, n) on tensor cores: a work-group of two warps computes a 16x16
     * tile of c, warp w its columns 8w..8w+7, walking k in steps of 32 through local tiles that
     * asynchronous copies fill. b is stored n-major ({@code [n, k]}, like weights) or, with
     * {@code kMajor}, k-major ({@code [k, n]}, like V). 16-bit inputs: f16, or bf16 with {@code bf16}.
     */
    public static void tileMatmul(KernelContext ctx, FloatArray c, NativeArray a, NativeArray b, int n, int k, boolean kMajor,
            boolean bf16) {
        int[] aTile = ctx.allocateIntLocalArray(16 * A_STRIDE);
        int[] bTile = ctx.allocateIntLocalArray(32 * BT_STRIDE);
        int[] aFrag = new int[4];
        int[] bFrag = new int[4];
        float[] acc = new float[4];
        int lid = ctx.localIdx;
        int warp = lid / KernelContext.WARP_SIZE;
        int lane = ctx.laneId();
        int tilesN = n / 16;
        int row0 = (ctx.groupIdx / tilesN) * 16;
        int col0 = (ctx.groupIdx % tilesN) * 16;
        for (int k0 = 0; k0 < k; k0 += 32) {
            // 64 items, 64 chunks of 16 bytes (8 halves) for each tile
            int r = lid / 4, chunk = lid % 4;
            ctx.copyAsync(aTile, r * A_STRIDE + chunk * 4, a, (row0 + r) * k + k0 + chunk * 8);
            if (kMajor) {
                int kr = lid / 2, half = lid % 2;
                ctx.copyAsync(bTile, kr * BT_STRIDE + half * 4, b, (k0 + kr) * n + col0 + half * 8);
            } else {
                ctx.copyAsync(bTile, r * A_STRIDE + chunk * 4, b, (col0 + r) * k + k0 + chunk * 8);
            }
            ctx.copyAsyncCommit();
            ctx.copyAsyncWait(0);
            ctx.localBarrier();
            if (!kMajor) {
                ctx.loadMatrixB(bFrag, 0, bTile, warp * 8 * A_STRIDE, A_STRIDE);
            }
            for (int ks = 0; ks < 2; ks++) {
                ctx.loadMatrixA(aFrag, 0, aTile, ks * 8, A_STRIDE);
                int bAt = 2 * ks;
                if (kMajor) {
                    ctx.loadMatrixBTransposed(bFrag, 0, bTile, ks * 16 * BT_STRIDE, BT_STRIDE);
                    bAt = 2 * warp;
                }
                if (bf16) {
                    ctx.mmaBf16(acc, 0, aFrag, 0, bFrag, bAt);
                } else {
                    ctx.mmaF16(acc, 0, aFrag, 0, bFrag, bAt);
                }
            }
            ctx.localBarrier(); // the next k step overwrites the tiles
        }
        for (int e = 0; e < 4; e++) {
            int row = lane / 4 + 8 * (e / 2);
            int col = warp * 8 + 2 * (lane % 4) + e % 2;
            c.set((row0 + row) * n + col0 + col, acc[e]);
        }
    }

    /**
     * out = in, element by element converted as setFloat(getFloat) would, through vector accesses:
     * mode 0 loads 8 and stores 4 + 2 + 2, mode 1 loads 4 + 2 + 2 and stores 8.
     */
    public static void vectorCopy(NativeArray out, NativeArray in, int blocks, int mode) {
        for (@Parallel int i = 0; i < blocks; i++) {
            float[] v = new float[8];
            if (mode == 0) {
                in.getFloats(i * 8, v, 0, 8);
                out.setFloats(i * 8, v, 0, 4);
                out.setFloats(i * 8 + 4, v, 4, 2);
                out.setFloats(i * 8 + 6, v, 6, 2);
            } else {
                in.getFloats(i * 8, v, 0, 4);
                in.getFloats(i * 8 + 4, v, 4, 2);
                in.getFloats(i * 8 + 6, v, 6, 2);
                out.setFloats(i * 8, v, 0, 8);
            }
        }
    }

    public static void packAndExp2(IntArray halves, IntArray bf16s, FloatArray exp2, FloatArray lo, FloatArray hi, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            halves.set(i, KMath.packHalf2(lo.get(i), hi.get(i)));
            bf16s.set(i, KMath.packBf16x2(lo.get(i), hi.get(i)));
            exp2.set(i, KMath.exp2(lo.get(i)));
        }
    }

    static final KernelRef INT8_HALVES = KernelRef.of(WarpOperationsTest.class, "int8Halves");

    /** out[2i], out[2i + 1]: words[i]'s two int8 pairs as halves (bf16s: as bf16 pairs; fp8: as e4m3 pairs); products[i]: words[i] times factors[i] as half pairs. */
    public static void int8Halves(IntArray out, IntArray bf16s, IntArray fp8, IntArray products, IntArray words, IntArray factors, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(2 * i, KMath.int8x2ToHalf2(words.get(i), 0));
            out.set(2 * i + 1, KMath.int8x2ToHalf2(words.get(i), 1));
            bf16s.set(2 * i, KMath.int8x2ToBf16x2(words.get(i), 0));
            bf16s.set(2 * i + 1, KMath.int8x2ToBf16x2(words.get(i), 1));
            fp8.set(2 * i, KMath.e4m3x2ToHalf2(words.get(i), 0));
            fp8.set(2 * i + 1, KMath.e4m3x2ToHalf2(words.get(i), 1));
            products.set(i, KMath.mulHalf2(words.get(i), factors.get(i)));
        }
    }

    static final KernelRef LAST_GROUP_SUMS = KernelRef.of(WarpOperationsTest.class, "lastGroupSums");

    /**
     * Each group writes partial[group] = group + 1, fences and counts itself in; the group that arrives last
     * (the count it saw is groups - 1) adds up every group's value into out[0] and resets the count.
     */
    public static void lastGroupSums(KernelContext ctx, IntArray partial, IntArray arrivals, IntArray out, int groups) {
        int[] arrived = ctx.allocateIntLocalArray(1);
        if (ctx.localIdx == 0) {
            partial.set(ctx.groupIdx, ctx.groupIdx + 1);
        }
        ctx.memoryFence();
        ctx.localBarrier();
        if (ctx.localIdx == 0) {
            arrived[0] = ctx.atomicAdd(arrivals, 0, 1);
        }
        ctx.localBarrier();
        if (arrived[0] == groups - 1) {
            ctx.memoryFence();
            if (ctx.localIdx == 0) {
                int sum = 0;
                for (int g = 0; g < groups; g++) {
                    sum += partial.get(g);
                }
                out.set(0, sum);
                arrivals.set(0, 0);
            }
        }
    }

    static final KernelRef CLUSTER_NEIGHBOURS = KernelRef.of(WarpOperationsTest.class, "clusterNeighbours");

    /**
     * Each work-item writes its group's and its own index into mine, meets its cluster at the barrier, then reads what
     * the next group of its cluster (ranks wrapping around) wrote there: out[i] = mine of that group's item.
     */
    public static void clusterNeighbours(KernelContext ctx, IntArray mine, IntArray out, int cluster) {
        int local = ctx.localGroupSizeX;
        mine.set(ctx.globalIdx, ctx.groupIdx * 1000 + ctx.localIdx);
        ctx.clusterBarrier();
        int first = ctx.groupIdx - ctx.groupIdx % cluster;
        int next = first + (ctx.groupIdx + 1 - first) % cluster;
        out.set(ctx.globalIdx, mine.get(next * local + ctx.localIdx));
    }

    static final KernelRef WARP_ROTATIONS = KernelRef.of(WarpOperationsTest.class, "warpRotations");

    /**
     * Each warp passes values round within itself through its own part of local memory, {@code rounds} times, meeting only
     * at warp barriers: in round r lane l writes v (starting at its global id), reads lane (l + r + 1) % 32's v, and adds
     * it to its own. out[i] = item i's v at the end.
     */
    public static void warpRotations(KernelContext ctx, IntArray out, int rounds) {
        int[] shared = ctx.allocateIntLocalArray(256);
        int lane = ctx.laneId();
        int base = ctx.localIdx - lane;
        int v = ctx.globalIdx;
        for (int r = 0; r < rounds; r++) {
            shared[ctx.localIdx] = v;
            ctx.warpBarrier();
            v += shared[base + (lane + r + 1) % KernelContext.WARP_SIZE];
            ctx.warpBarrier(); // every lane has read before the next round writes
        }
        out.set(ctx.globalIdx, v);
    }

    static final KernelRef NIBBLES = KernelRef.of(WarpOperationsTest.class, "nibbles");

    /** out[4i..]: words[i]'s nibble pairs at bits 0 and 20 (centres 8 and 0), then those at bit 4 times scales[i] plus offsets[i] (bf16 pairs), twice. */
    public static void nibbles(IntArray out, IntArray words, IntArray scales, IntArray offsets, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            int w = words.get(i);
            out.set(4 * i, KMath.nibblesToBf16x2(w, 0, 8));
            out.set(4 * i + 1, KMath.nibblesToBf16x2(w, 20, 0));
            out.set(4 * i + 2, KMath.fmaBf16x2(KMath.nibblesToBf16x2(w, 4, 8), scales.get(i), offsets.get(i)));
            out.set(4 * i + 3, KMath.fmaBf16x2(KMath.nibblesToBf16x2(w, 16, 0), scales.get(i), offsets.get(i)));
        }
    }

    static final KernelRef ADD_FOURS = KernelRef.of(WarpOperationsTest.class, "addFours");

    /** Item i adds (1, 2, 0.5, i % 2) to out[4 (i % 8)..+3] as one atomicAdd4. */
    public static void addFours(KernelContext ctx, FloatArray out, int n) {
        int i = ctx.globalIdx;
        if (i < n) {
            ctx.atomicAdd4(out, 4 * (i % 8), 1f, 2f, 0.5f, i % 2);
        }
    }

    static final KernelRef BYTE_DOTS = KernelRef.of(WarpOperationsTest.class, "byteDots");

    /** out[i] = dot4I8(a[i], b[i], acc[i]). */
    public static void byteDots(IntArray out, IntArray a, IntArray b, IntArray acc, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, KMath.dot4I8(a.get(i), b.get(i), acc.get(i)));
        }
    }

    static final KernelRef BYTE_PERMS = KernelRef.of(WarpOperationsTest.class, "bytePerms");

    /** out[i] = bytePerm(lo[i], hi[i], selectors[i]). */
    public static void bytePerms(IntArray out, IntArray lo, IntArray hi, IntArray selectors, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, KMath.bytePerm(lo.get(i), hi.get(i), selectors.get(i)));
        }
    }

    static final KernelRef WORD_COPY = KernelRef.of(WarpOperationsTest.class, "wordCopy");

    /** out = the raw 32-bit words of in, 4, then 2, then 1 at a time. */
    public static void wordCopy(IntArray out, NativeArray in, int blocks) {
        for (@Parallel int i = 0; i < blocks; i++) {
            int[] w = new int[8];
            int perWord = 4 / 2; // 16-bit elements in a word: the test binds f16 and bf16 arrays
            in.getWords(i * 8 * perWord, w, 0, 4);
            in.getWords((i * 8 + 4) * perWord, w, 4, 2);
            in.getWords((i * 8 + 6) * perWord, w, 6, 1);
            in.getWords((i * 8 + 7) * perWord, w, 7, 1);
            for (int j = 0; j < 8; j++) {
                out.set(i * 8 + j, w[j]);
            }
        }
    }

    @Test
    void wordLoadsGiveTheRawBits() {
        int blocks = 10;
        for (Device device : devices()) {
            for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
                NativeArray in = TensorAssert.fill(NativeArray.allocate(dtype, blocks * 16), 2f, 12);
                DeviceBuffer out = device.allocate(DType.I32, blocks * 8);
                device.launch(WORD_COPY, Grid.of(blocks), out, device.upload(in), blocks);
                IntArray got = (IntArray) device.download(out);
                for (int i = 0; i < blocks * 8; i++) {
                    int expected = in.segment().get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 4L * i);
                    assertEquals(expected, got.get(i), device.id() + " " + dtype + " word " + i);
                }
            }
        }
    }

    @Test
    void localArraysPastFortyEightKilobytesBecomeDynamicSharedMemory() {
        // the tensor-core matmul keeps four stages of tiles: 80 KB
        KernelRef gemm = io.lightllm.kernels.Matmul.MATMUL_TC_BF16;
        KernelSource big = KernelCompiler.compile(gemm, Dialect.CUDA, new DType[] {DType.F32, DType.BF16, DType.BF16, DType.F32, null, null, null, null, null});
        assertEquals(2 * 4 * 128 * 20 * 4, big.dynamicLocalBytes());
        assertTrue(big.source().contains("extern __shared__"), "dynamic shared memory declared");
        CudaCheck.assertCompiles(big.source(), "matmulBf16 with 80 KB of local memory");
        // under the limit, local arrays stay static
        assertEquals(0, KernelCompiler.compile(MATMUL, Dialect.CUDA, new DType[] {DType.F32, DType.F16, DType.F16, null, null, null, null})
                .dynamicLocalBytes());
    }

    public static void doubleScale(FloatArray out, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, (float) (out.get(i) * 0.5));
        }
    }

    private static List<Device> devices() {
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        return devices;
    }

    @Test
    void shufflesExchangeWithinWarps() {
        int items = 128;
        FloatArray in = TensorAssert.random(items, 1f, 3);
        for (Device device : devices()) {
            for (int local : new int[] {32, 64}) {
                DeviceBuffer out = device.allocate(DType.F32, 2 * items);
                device.launch(SHUFFLES, Grid.groups(items / local, local), out, device.upload(in));
                FloatArray got = (FloatArray) device.download(out);
                for (int id = 0; id < items; id++) {
                    int base = id - id % 32;
                    assertEquals(in.get(id ^ 5), got.get(2 * id), device.id() + " xor, item " + id);
                    assertEquals(in.get(base + (id % 32) * 7 % 32), got.get(2 * id + 1), device.id() + " index, item " + id);
                }
            }
        }
    }

    @Test
    void tensorCoreTilesMultiplyOnEveryDevice() {
        int m = 32, n = 32, k = 64;
        for (Device device : devices()) {
            for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
                for (boolean kMajor : new boolean[] {false, true}) {
                    NativeArray a = TensorAssert.fill(NativeArray.allocate(dtype, m * k), 1f, 5);
                    NativeArray b = TensorAssert.fill(NativeArray.allocate(dtype, n * k), 1f, 6);
                    DeviceBuffer c = device.allocate(DType.F32, m * n);
                    device.launch(MATMUL, Grid.groups((m / 16) * (n / 16), 64), c, device.upload(a), device.upload(b), n, k, kMajor,
                            dtype == DType.BF16);
                    FloatArray got = (FloatArray) device.download(c);
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double expected = 0, magnitude = 0;
                            for (int kk = 0; kk < k; kk++) {
                                double term = (double) a.getFloat(i * k + kk) * b.getFloat(kMajor ? kk * n + j : j * k + kk);
                                expected += term;
                                magnitude += Math.abs(term);
                            }
                            // products of 16-bit inputs are exact in f32; k sums in any order: k u sum|ab|
                            double bound = k * Math.ulp(1f) / 2 * magnitude + 1e-30;
                            String what = device.id() + " " + dtype + (kMajor ? " k-major" : " n-major") + " c[" + i + ", " + j + "]";
                            assertTrue(Math.abs(got.get(i * n + j) - expected) <= bound, what + ": " + got.get(i * n + j) + " vs " + expected);
                        }
                    }
                }
            }
        }
    }

    @Test
    void vectorAccessesConvertLikeScalarOnes() {
        int blocks = 24;
        DType[][] pairs = {{DType.F16, DType.F32}, {DType.F32, DType.F16}, {DType.BF16, DType.F32}, {DType.F32, DType.BF16},
            {DType.I8, DType.F32}, {DType.F32, DType.F32}, {DType.I8, DType.I8}, {DType.F16, DType.F16}};
        for (Device device : devices()) {
            for (DType[] pair : pairs) {
                NativeArray in = NativeArray.allocate(pair[0], blocks * 8);
                SplittableRandom r = new SplittableRandom(7);
                for (int i = 0; i < in.getSize(); i++) {
                    in.setFloat(i, pair[0] == DType.I8 ? r.nextInt(-127, 128) : (float) (r.nextDouble() * 4 - 2));
                }
                for (int mode = 0; mode < 2; mode++) {
                    DeviceBuffer out = device.allocate(pair[1], blocks * 8);
                    device.launch(VECTOR_COPY, Grid.of(blocks), out, device.upload(in), blocks, mode);
                    NativeArray got = device.download(out);
                    NativeArray expected = NativeArray.allocate(pair[1], blocks * 8);
                    for (int i = 0; i < in.getSize(); i++) {
                        expected.setFloat(i, in.getFloat(i));
                    }
                    TensorAssert.assertClose(expected, got, 0f, 0f, device.id() + " " + pair[0] + " -> " + pair[1] + " mode " + mode);
                }
            }
        }
    }

    @Test
    void packedPairsRoundLikeTheJavaConversions() {
        int n = 1000;
        FloatArray lo = TensorAssert.random(n, 70000f, 8), hi = TensorAssert.random(n, 3f, 9);
        lo.set(0, 1e-6f); // an f16 subnormal
        lo.set(1, 65520f); // rounds to f16 infinity
        for (Device device : devices()) {
            DeviceBuffer halves = device.allocate(DType.I32, n), bf16s = device.allocate(DType.I32, n), exp2 = device.allocate(DType.F32, n);
            device.launch(PACK, Grid.of(n), halves, bf16s, exp2, device.upload(lo), device.upload(hi), n);
            IntArray h = (IntArray) device.download(halves), b = (IntArray) device.download(bf16s);
            FloatArray e = (FloatArray) device.download(exp2);
            for (int i = 0; i < n; i++) {
                assertEquals(KMath.packHalf2(lo.get(i), hi.get(i)), h.get(i), device.id() + " packHalf2 " + lo.get(i) + ", " + hi.get(i));
                assertEquals(KMath.packBf16x2(lo.get(i), hi.get(i)), b.get(i), device.id() + " packBf16x2 " + lo.get(i) + ", " + hi.get(i));
                float expected = (float) Math.pow(2, lo.get(i));
                // exp2 to 4 ulp, as OpenCL allows
                assertTrue(Math.abs(e.get(i) - expected) <= 4 * Math.ulp(expected) || (Float.isInfinite(expected) && e.get(i) == expected),
                        device.id() + " exp2(" + lo.get(i) + "): " + e.get(i) + " vs " + expected);
            }
        }
    }

    /**
     * The last of 500 groups to arrive sees every other group's write (memoryFence, then a counter), twice in a row:
     * the last group's reset leaves the counter ready for the next launch.
     */
    @Test
    void theLastGroupToArriveSeesEveryGroupsWrite() {
        int groups = 500;
        for (Device device : devices()) {
            DeviceBuffer partial = device.allocate(DType.I32, groups), arrivals = device.upload(IntArray.allocate(1));
            DeviceBuffer out = device.allocate(DType.I32, 1);
            for (int launch = 0; launch < 2; launch++) {
                device.launch(LAST_GROUP_SUMS, Grid.groups(groups, 32), partial, arrivals, out, groups);
                assertEquals(groups * (groups + 1) / 2, ((IntArray) device.download(out)).get(0), device.id() + " launch " + launch);
                assertEquals(0, ((IntArray) device.download(arrivals)).get(0), device.id() + " counter after launch " + launch);
            }
        }
    }

    /**
     * A cluster's groups see each other's writes after the cluster barrier, on every device that has clusters (the
     * JVM; CUDA from compute capability 9.0), also in clusters of 16 (past CUDA's portable 8); OpenCL and older GPUs
     * refuse the kernel by name; the CUDA C assembles to the cluster barrier's instructions.
     */
    @Test
    void warpBarriersOrderEachWarpsLocalMemory() {
        int groups = 6, rounds = 9;
        for (Device device : devices()) {
            for (int local : new int[] {32, 128, 256}) {
                DeviceBuffer out = device.allocate(DType.I32, (long) groups * local);
                device.launch(WARP_ROTATIONS, Grid.groups(groups, local), out, rounds);
                IntArray got = (IntArray) device.download(out);
                for (int i = 0; i < groups * local; i++) {
                    int base = i - i % 32;
                    int[] v = new int[32];
                    for (int l = 0; l < 32; l++) {
                        v[l] = base + l;
                    }
                    for (int r = 0; r < rounds; r++) {
                        int[] next = new int[32];
                        for (int l = 0; l < 32; l++) {
                            next[l] = v[l] + v[(l + r + 1) % 32];
                        }
                        v = next;
                    }
                    assertEquals(v[i % 32], got.get(i), device.id() + " local " + local + " item " + i);
                }
            }
        }
        String ptx = CudaCheck.assertCompiles(KernelCompiler.compile(WARP_ROTATIONS, Dialect.CUDA, null).source(), "warpRotations");
        assertTrue(ptx.contains("bar.warp.sync") && !ptx.contains("bar.sync") && !ptx.contains("barrier.sync"), "PTX should hold warp barriers only:\n" + ptx);
    }

    @Test
    void clusterBarrierShowsEachGroupTheOthersWrites() {
        for (Device device : devices()) {
            if (!device.supports(Feature.CLUSTER_BARRIER)) {
                continue;
            }
            for (int cluster : new int[] {2, 5, 16}) {
                int groups = cluster * 3, local = 64;
                DeviceBuffer mine = device.allocate(DType.I32, (long) groups * local);
                DeviceBuffer out = device.allocate(DType.I32, (long) groups * local);
                device.launch(CLUSTER_NEIGHBOURS, Grid.groups(groups, local).clustered(cluster), mine, out, cluster);
                IntArray o = (IntArray) device.download(out);
                for (int g = 0; g < groups; g++) {
                    int next = g - g % cluster + (g % cluster + 1) % cluster;
                    for (int i = 0; i < local; i++) {
                        assertEquals(next * 1000 + i, o.get(g * local + i), device.id() + " cluster " + cluster + " group " + g + " item " + i);
                    }
                }
            }
        }
        for (Target older : new Target[] {Target.opencl("opencl:0:0 (a GPU)", true), Target.cuda("cuda:0", 8, 9)}) {
            KernelCompileException e = assertThrows(KernelCompileException.class, () -> KernelCompiler.compile(CLUSTER_NEIGHBOURS, older, null));
            assertTrue(e.getMessage().contains("barriers across a cluster of work-groups"), e.getMessage());
        }
        String ptx = CudaCheck.assertCompiles(KernelCompiler.compile(CLUSTER_NEIGHBOURS, Target.cuda("cuda:0", 9, 0), null).source(),
                "clusterNeighbours");
        assertTrue(ptx.contains("barrier.cluster.arrive.release") && ptx.contains("barrier.cluster.wait.acquire"), "PTX lacks the cluster barrier:\n" + ptx);
        assertThrows(IllegalArgumentException.class, () -> Grid.groups(10, 32).clustered(4), "10 groups are no whole number of clusters of 4");
    }

    /**
     * Nibble pairs become exact bf16 codes minus their centre, and code x scale + offset is rounded once to bf16:
     * every word of 16 bits in both halves, random bf16 scales and offsets that are whole multiples of the scale
     * (zero points, as int4 formats have them), so the float sum is exact and every backend rounds it alike.
     */
    @Test
    void nibblesBecomeBf16CodesAndScaledWeights() {
        int n = 65536;
        java.util.SplittableRandom random = new java.util.SplittableRandom(23);
        IntArray words = IntArray.allocate(n), scales = IntArray.allocate(n), offsets = IntArray.allocate(n);
        for (int i = 0; i < n; i++) {
            words.set(i, i | random.nextInt() << 16);
            float scale = (float) (random.nextDouble(-0.1, 0.1));
            float offset = -KMath.bf16ToFloat(KMath.floatToBf16(scale)) * random.nextInt(16);
            scales.set(i, KMath.packBf16x2(scale, scale));
            offsets.set(i, KMath.packBf16x2(offset, offset));
        }
        for (Device device : devices()) {
            DeviceBuffer out = device.allocate(DType.I32, 4L * n);
            device.launch(NIBBLES, Grid.of(n), out, device.upload(words), device.upload(scales), device.upload(offsets), n);
            IntArray o = (IntArray) device.download(out);
            for (int i = 0; i < n; i++) {
                int w = words.get(i);
                assertEquals(KMath.packBf16x2((w & 15) - 8, (w >>> 8 & 15) - 8), o.get(4 * i), device.id() + " nibbles at 0 of " + Integer.toHexString(w));
                assertEquals(KMath.packBf16x2(w >>> 20 & 15, w >>> 28 & 15), o.get(4 * i + 1), device.id() + " nibbles at 20 of " + Integer.toHexString(w));
                float s = KMath.bf16ToFloat((short) scales.get(i)), off = KMath.bf16ToFloat((short) offsets.get(i));
                assertEquals(KMath.packBf16x2(((w >>> 4 & 15) - 8) * s + off, ((w >>> 12 & 15) - 8) * s + off), o.get(4 * i + 2),
                        device.id() + " scaled nibbles at 4 of " + Integer.toHexString(w));
                assertEquals(KMath.packBf16x2((w >>> 16 & 15) * s + off, (w >>> 24 & 15) * s + off), o.get(4 * i + 3),
                        device.id() + " scaled nibbles at 16 of " + Integer.toHexString(w));
            }
        }
    }

    /** 1,000 items adding four values each into eight places of four floats: every add lands, each element on its own (exact sums). */
    @Test
    void atomicAdd4AddsEachElement() {
        int n = 1000;
        for (Device device : devices()) {
            DeviceBuffer out = device.upload(FloatArray.allocate(32));
            device.launch(ADD_FOURS, Grid.of(1024).local(128), out, n);
            FloatArray got = (FloatArray) device.download(out);
            for (int s = 0; s < 8; s++) {
                float count = n / 8;
                float[] expected = {count, 2 * count, 0.5f * count, s % 2 == 1 ? count : 0f};
                for (int j = 0; j < 4; j++) {
                    assertEquals(expected[j], got.get(4 * s + j), device.id() + " element " + (4 * s + j));
                }
            }
        }
    }

    /** Four signed byte products and the accumulator, exactly, on every device: random words and the extremes -128, 127. */
    @Test
    void byteDotsAddTheFourSignedProducts() {
        int n = 4096;
        SplittableRandom random = new SplittableRandom(9);
        IntArray a = IntArray.allocate(n), b = IntArray.allocate(n), acc = IntArray.allocate(n);
        int[] fixed = {0x80808080, 0x7f7f7f7f, 0x80_7f_01_ff, 0};
        for (int i = 0; i < n; i++) {
            a.set(i, i < 16 ? fixed[i % 4] : random.nextInt());
            b.set(i, i < 16 ? fixed[i / 4] : random.nextInt());
            acc.set(i, random.nextInt(-1 << 20, 1 << 20));
        }
        for (Device device : devices()) {
            DeviceBuffer out = device.allocate(DType.I32, n);
            device.launch(BYTE_DOTS, Grid.of(n), out, device.upload(a), device.upload(b), device.upload(acc), n);
            IntArray got = (IntArray) device.download(out);
            for (int i = 0; i < n; i++) {
                long expected = acc.get(i);
                for (int j = 0; j < 4; j++) {
                    expected += (long) (byte) (a.get(i) >>> (8 * j)) * (byte) (b.get(i) >>> (8 * j));
                }
                assertEquals(expected, got.get(i), device.id() + " dot " + i);
            }
        }
        String ptx = CudaCheck.assertCompiles(KernelCompiler.compile(BYTE_DOTS, Dialect.CUDA, null).source(), "byteDots");
        assertTrue(ptx.contains("dp4a.s32.s32"), "PTX lacks dp4a:\n" + ptx);
    }

    /** Byte permutes pick, for each result byte, the byte of (lo, hi) its selector nibble names. */
    @Test
    void bytePermPicksTheNamedBytes() {
        int n = 4096;
        java.util.SplittableRandom random = new java.util.SplittableRandom(5);
        IntArray lo = IntArray.allocate(n), hi = IntArray.allocate(n), selectors = IntArray.allocate(n);
        int[] fixed = {0x5140, 0x7362, 0x3210, 0x7654, 0x0000, 0x7777};
        for (int i = 0; i < n; i++) {
            lo.set(i, random.nextInt());
            hi.set(i, random.nextInt());
            selectors.set(i, i < fixed.length ? fixed[i] : random.nextInt(1 << 16) & 0x7777);
        }
        for (Device device : devices()) {
            DeviceBuffer out = device.allocate(DType.I32, n);
            device.launch(BYTE_PERMS, Grid.of(n), out, device.upload(lo), device.upload(hi), device.upload(selectors), n);
            IntArray o = (IntArray) device.download(out);
            for (int i = 0; i < n; i++) {
                byte[] bytes = new byte[8];
                for (int b = 0; b < 4; b++) {
                    bytes[b] = (byte) (lo.get(i) >>> (8 * b));
                    bytes[4 + b] = (byte) (hi.get(i) >>> (8 * b));
                }
                int expected = 0;
                for (int b = 0; b < 4; b++) {
                    expected |= (bytes[(selectors.get(i) >> (4 * b)) & 0xf] & 0xff) << (8 * b);
                }
                assertEquals(expected, o.get(i), device.id() + " bytePerm(" + Integer.toHexString(lo.get(i)) + ", "
                        + Integer.toHexString(hi.get(i)) + ", " + Integer.toHexString(selectors.get(i)) + ")");
            }
        }
    }

    /**
     * Every int8 value in both bytes of a pair converts to its half exactly, and so does every e4m3 code
     * but the NaNs (subnormals, ±448 and both zeros among them), and f16x2 products round
     * like the product of the halves as floats (exact in f32) rounded once: random half pairs, with
     * subnormal results, overflows to infinity and NaN among them.
     */
    @Test
    void int8PairsAndHalfProductsMatchTheJavaDefinitions() {
        int n = 256 * 256 + 4096;
        java.util.SplittableRandom random = new java.util.SplittableRandom(17);
        IntArray words = IntArray.allocate(n), factors = IntArray.allocate(n);
        for (int i = 0; i < n; i++) {
            // every (byte 0, byte 1) and (byte 2, byte 3) combination once, then random bits
            words.set(i, i < 65536 ? (i & 0xffff) | (65535 - i) << 16 : random.nextInt());
            factors.set(i, random.nextInt());
        }
        factors.set(0, KMath.packHalf2(1e-4f, 70000f)); // a subnormal and an infinite product
        for (Device device : devices()) {
            DeviceBuffer out = device.allocate(DType.I32, 2L * n), bf16s = device.allocate(DType.I32, 2L * n), fp8 = device.allocate(DType.I32, 2L * n);
            DeviceBuffer products = device.allocate(DType.I32, n);
            device.launch(INT8_HALVES, Grid.of(n), out, bf16s, fp8, products, device.upload(words), device.upload(factors), n);
            IntArray o = (IntArray) device.download(out), b = (IntArray) device.download(bf16s), f = (IntArray) device.download(fp8);
            IntArray p = (IntArray) device.download(products);
            for (int i = 0; i < n; i++) {
                int w = words.get(i);
                for (int pair = 0; pair < 2; pair++) {
                    for (int half = 0; half < 2; half++) {
                        byte code = (byte) (w >> (16 * pair + 8 * half));
                        if ((code & 0x7f) != 0x7f) { // NaN codes are left undefined
                            assertEquals(KMath.floatToF16(KMath.e4m3ToFloat(code)), (short) (f.get(2 * i + pair) >>> (16 * half)),
                                    device.id() + " e4m3x2ToHalf2 of code " + Integer.toHexString(code & 0xff));
                        }
                    }
                }
                assertEquals(KMath.packHalf2((byte) w, (byte) (w >> 8)), o.get(2 * i), device.id() + " int8x2ToHalf2 low of " + Integer.toHexString(w));
                assertEquals(KMath.packHalf2((byte) (w >> 16), (byte) (w >> 24)), o.get(2 * i + 1), device.id() + " int8x2ToHalf2 high of " + Integer.toHexString(w));
                assertEquals(KMath.packBf16x2((byte) w, (byte) (w >> 8)), b.get(2 * i), device.id() + " int8x2ToBf16x2 low of " + Integer.toHexString(w));
                assertEquals(KMath.packBf16x2((byte) (w >> 16), (byte) (w >> 24)), b.get(2 * i + 1), device.id() + " int8x2ToBf16x2 high of " + Integer.toHexString(w));
                int expected = KMath.mulHalf2(w, factors.get(i));
                boolean bothNaN = isNaNHalf(expected) && isNaNHalf(p.get(i)) && isNaNHalf(expected >>> 16) && isNaNHalf(p.get(i) >>> 16);
                if (!bothNaN) {
                    assertEquals(canonicalNaN(expected), canonicalNaN(p.get(i)),
                            device.id() + " mulHalf2 " + Integer.toHexString(w) + " x " + Integer.toHexString(factors.get(i)));
                }
            }
        }
    }

    private static boolean isNaNHalf(int h) {
        return Float.isNaN(Float.float16ToFloat((short) h));
    }

    /** NaN payloads differ between devices: every NaN half as one pattern. */
    private static int canonicalNaN(int pair) {
        int lo = isNaNHalf(pair) ? 0x7e00 : pair & 0xffff;
        int hi = isNaNHalf(pair >>> 16) ? 0x7e00 : pair >>> 16;
        return lo | hi << 16;
    }

    @Test
    void theJvmRefusesWhatTheGpuCannotDo() {
        Device jvm = TestDevices.jvm();
        // a vector access off its alignment would fault on a GPU
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FloatArray.allocate(16).getFloats(2, new float[8], 0, 4));
        assertTrue(e.getMessage().contains("multiple of 4"), e.getMessage());
        // warps are 32 work-items: a group of 16 has none
        DeviceBuffer in = jvm.upload(TensorAssert.random(16, 1f, 1));
        RuntimeException w = assertThrows(RuntimeException.class, () -> jvm.launch(SHUFFLES, Grid.groups(1, 16), jvm.allocate(DType.F32, 32), in));
        assertTrue(String.valueOf(w.getMessage()).contains("multiple of 32"), String.valueOf(w.getMessage()));
    }

    static final KernelRef WARPGROUP_PRODUCT = KernelRef.of(WarpOperationsTest.class, "warpgroupProduct");

    /**
     * out[64, 256] = a[64, 64] b[256, 64]ᵀ (bf16 pairs as ints, row-major) by one warpgroup: the tiles copied into local
     * memory in the 128-byte swizzle (rows of 32 ints, 8-row atoms of 256), four k16 steps 8 ints apart.
     */
    public static void warpgroupProduct(KernelContext ctx, FloatArray out, IntArray a, IntArray b) {
        int[] aTile = ctx.allocateIntLocalArray(64 * 32);
        int[] bTile = ctx.allocateIntLocalArray(256 * 32);
        float[] acc = new float[128];
        int id = ctx.localIdx;
        for (int i = id; i < 64 * 32; i += 128) {
            aTile[io.lightllm.kernels.WarpgroupMatmul.swizzle128(i)] = a.get(i); // int i: row i / 32, k 2 (i % 32) and the next
        }
        for (int i = id; i < 256 * 32; i += 128) {
            bTile[io.lightllm.kernels.WarpgroupMatmul.swizzle128(i)] = b.get(i);
        }
        ctx.warpgroupFenceLocal();
        ctx.localBarrier();
        ctx.warpgroupArrive(acc);
        for (int s = 0; s < 4; s++) {
            ctx.warpgroupMmaBf16(acc, aTile, 8 * s, 256, bTile, 8 * s, 256, 256);
        }
        ctx.warpgroupCommit();
        ctx.warpgroupWait(acc, 0);
        int warp = id / 32, lane = id % 32;
        for (int j = 0; j < 32; j++) {
            for (int e = 0; e < 4; e++) {
                out.set((16 * warp + lane / 4 + 8 * (e / 2)) * 256 + 8 * j + 2 * (lane % 4) + e % 2, acc[4 * j + e]);
            }
        }
    }

    /**
     * One warpgroup's 64 x 256 x 64 product through warpgroupMmaBf16, exactly (small integers as bf16: every sum is exact
     * in f32, whatever its order), on every device that runs it; the CUDA C goes through ptxas for sm_90a.
     */
    @Test
    void warpgroupMmaMultipliesSwizzledTiles() {
        SplittableRandom random = new SplittableRandom(41);
        int[][] av = new int[64][64], bv = new int[256][64];
        IntArray a = smallIntegerPairs(av, random, true), b = smallIntegerPairs(bv, random, true);
        assertWarpgroupProduct(WARPGROUP_PRODUCT, a, b, 256, (r, c) -> {
            int sum = 0;
            for (int k = 0; k < 64; k++) {
                sum += av[r][k] * bv[c][k];
            }
            return sum;
        });
    }

    static final KernelRef WARPGROUP_PRODUCT_N_MAJOR = KernelRef.of(WarpOperationsTest.class, "warpgroupProductNMajor");

    /**
     * out[64, 128] = a[64, 64] v[64, 128] with f16 values: a k-major as above, v stored n-major (row k holds 128 values of n,
     * as V[key, dim]): two column blocks of 64 n (2,048 ints apart), 8-row groups of k 256 ints apart, a k16 step 512 ints.
     */
    public static void warpgroupProductNMajor(KernelContext ctx, FloatArray out, IntArray a, IntArray v) {
        int[] aTile = ctx.allocateIntLocalArray(64 * 32);
        int[] vTile = ctx.allocateIntLocalArray(64 * 64);
        float[] acc = new float[64];
        int id = ctx.localIdx;
        for (int i = id; i < 64 * 32; i += 128) {
            aTile[io.lightllm.kernels.WarpgroupMatmul.swizzle128(i)] = a.get(i);
        }
        for (int i = id; i < 64 * 64; i += 128) {
            int k = i / 64, p = i % 64; // int p of row k: n 2p and 2p + 1
            vTile[io.lightllm.kernels.WarpgroupMatmul.swizzle128((p / 32) * 2048 + k * 32 + p % 32)] = v.get(i);
        }
        ctx.warpgroupFenceLocal();
        ctx.localBarrier();
        ctx.warpgroupArrive(acc);
        for (int s = 0; s < 4; s++) {
            ctx.warpgroupMmaF16NMajorB(acc, aTile, 8 * s, 256, vTile, 512 * s, 256, 2048, 128);
        }
        ctx.warpgroupCommit();
        ctx.warpgroupWait(acc, 0);
        int warp = id / 32, lane = id % 32;
        for (int j = 0; j < 16; j++) {
            for (int e = 0; e < 4; e++) {
                out.set((16 * warp + lane / 4 + 8 * (e / 2)) * 128 + 8 * j + 2 * (lane % 4) + e % 2, acc[4 * j + e]);
            }
        }
    }

    /**
     * Fills {@code values} with integers in [-8, 8] and returns them row-major as packed pairs (bf16 or f16): exact in
     * either type, and every product sum of them exact in f32, so a device's MMA must give the integer result.
     */
    private static IntArray smallIntegerPairs(int[][] values, SplittableRandom random, boolean bf16) {
        int cols = values[0].length;
        IntArray packed = IntArray.allocate(values.length * cols / 2);
        for (int r = 0; r < values.length; r++) {
            for (int p = 0; p < cols / 2; p++) {
                values[r][2 * p] = random.nextInt(-8, 9);
                values[r][2 * p + 1] = random.nextInt(-8, 9);
                packed.set(r * cols / 2 + p, bf16 ? KMath.packBf16x2(values[r][2 * p], values[r][2 * p + 1])
                        : KMath.packHalf2(values[r][2 * p], values[r][2 * p + 1]));
            }
        }
        return packed;
    }

    /** The f16, n-major-B form (P·V's) exactly, as {@link #warpgroupMmaMultipliesSwizzledTiles}. */
    @Test
    void warpgroupMmaTakesAnNMajorF16B() {
        SplittableRandom random = new SplittableRandom(43);
        int[][] av = new int[64][64], vv = new int[64][128];
        IntArray a = smallIntegerPairs(av, random, false), v = smallIntegerPairs(vv, random, false);
        assertWarpgroupProduct(WARPGROUP_PRODUCT_N_MAJOR, a, v, 128, (r, c) -> {
            int sum = 0;
            for (int k = 0; k < 64; k++) {
                sum += av[r][k] * vv[k][c];
            }
            return sum;
        });
    }

    /**
     * Runs a one-warpgroup product kernel (out[64, columns]) on every device that has warpgroup MMA and checks each output
     * equals {@code expected} exactly; then its CUDA C through ptxas for sm_90a, without spills.
     */
    private static void assertWarpgroupProduct(KernelRef kernel, IntArray a, IntArray b, int columns, java.util.function.IntBinaryOperator expected) {
        for (Device device : devices()) {
            if (!device.supports(Feature.WARPGROUP_MMA)) {
                continue;
            }
            DeviceBuffer out = device.allocate(DType.F32, 64 * columns);
            device.launch(kernel, Grid.groups(1, KernelContext.WARPGROUP_SIZE), out, device.upload(a), device.upload(b));
            FloatArray o = (FloatArray) device.download(out);
            for (int r = 0; r < 64; r++) {
                for (int c = 0; c < columns; c++) {
                    assertEquals(expected.applyAsInt(r, c), o.get(r * columns + c), device.id() + " D(" + r + ", " + c + ")");
                }
            }
        }
        String report = CudaCheck.assertAssembles(KernelCompiler.compile(kernel, Dialect.CUDA, null).source(), kernel.toString());
        assertTrue(report.contains("0 bytes spill stores"), report);
    }

    @Test
    void tensorCoresAreRefusedOnGpusWithoutThem() {
        DType[] dtypes = {DType.F32, DType.F16, DType.F16, null, null, null, null};
        KernelCompileException e = assertThrows(KernelCompileException.class,
                () -> KernelCompiler.compile(MATMUL, Target.cuda("cuda:0", 7, 5), dtypes));
        assertTrue(e.getMessage().contains("tensor-core matrix multiply-accumulate with f16 inputs"), e.getMessage());
        assertTrue(e.getMessage().contains("cuda:0 (compute capability 7.5)"), e.getMessage());
        // Ampere and newer take it
        KernelCompiler.compile(MATMUL, Target.cuda("cuda:0", 8, 0), dtypes);
        // warpgroup MMA is Hopper's (sm_90a)
        KernelCompileException wg = assertThrows(KernelCompileException.class,
                () -> KernelCompiler.compile(WARPGROUP_PRODUCT, Target.cuda("cuda:0", 8, 9), null));
        assertTrue(wg.getMessage().contains("warpgroup matrix multiply-accumulate") && wg.getMessage().contains("compute capability 8.9"), wg.getMessage());
        KernelCompiler.compile(WARPGROUP_PRODUCT, Target.cuda("cuda:0", 9, 0), null);
        // an OpenCL device without cl_khr_fp64 refuses doubles by name
        KernelRef doubles = KernelRef.of(WarpOperationsTest.class, "doubleScale");
        KernelCompileException d = assertThrows(KernelCompileException.class,
                () -> KernelCompiler.compile(doubles, Target.opencl("opencl:0:0 (a GPU)", false), null));
        assertTrue(d.getMessage().contains("double precision") && d.getMessage().contains("opencl:0:0 (a GPU)"), d.getMessage());
    }

    @Test
    void compilesToThePtxInstructions() {
        for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
            String cuda = KernelCompiler.compile(MATMUL, Dialect.CUDA, new DType[] {DType.F32, dtype, dtype, null, null, null, null}).source();
            String ptx = CudaCheck.assertCompiles(cuda, "tileMatmul " + dtype);
            for (String instruction : new String[] {"mma.sync.aligned.m16n8k16.row.col.f32", "ldmatrix.sync.aligned.m8n8.x4.shared.b16",
                "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16", "cp.async.cg.shared.global", "cp.async.wait_group"}) {
                assertTrue(ptx.contains(instruction), "PTX lacks " + instruction);
            }
        }
        String shuffles = CudaCheck.assertCompiles(KernelCompiler.compile(SHUFFLES, Dialect.CUDA, null).source(), "shuffles");
        assertTrue(shuffles.contains("shfl.sync.bfly") && shuffles.contains("shfl.sync.idx"), "PTX lacks the shuffles");
        String copy = CudaCheck.assertCompiles(KernelCompiler.compile(VECTOR_COPY, Dialect.CUDA,
                new DType[] {DType.F32, DType.F16, null, null}).source(), "vectorCopy");
        assertTrue(copy.contains("ld.global.v4.u32") && copy.contains("st.global.v4"), "PTX lacks 16-byte accesses:\n" + copy);
        CudaCheck.assertCompiles(KernelCompiler.compile(PACK, Dialect.CUDA, null).source(), "packAndExp2");
        String halves = CudaCheck.assertCompiles(KernelCompiler.compile(INT8_HALVES, Dialect.CUDA, null).source(), "int8Halves");
        assertTrue(halves.contains("prmt.b32") && halves.contains("sub.rn.f16x2") && halves.contains("mul.rn.f16x2"), "PTX lacks the f16x2 path:\n" + halves);
        String nibbles = CudaCheck.assertCompiles(KernelCompiler.compile(NIBBLES, Dialect.CUDA, null).source(), "nibbles");
        assertTrue(nibbles.contains("fma.rn.bf16x2") && nibbles.contains("prmt.b32"), "PTX lacks the bf16x2 path:\n" + nibbles);
        // compiled for programmatic dependent launch (CudaDevice, tuning launch.pdl) every kernel first waits for the one before it
        String pdl = CudaCheck.assertCompiles("#define LJ_PDL\n" + KernelCompiler.compile(ADD_FOURS, Dialect.CUDA, null).source(), "addFours, LJ_PDL");
        assertTrue(pdl.contains("griddepcontrol.wait") && pdl.contains("griddepcontrol.launch_dependents"), "PTX lacks the dependency wait:\n" + pdl);
        String fours = CudaCheck.assertCompiles(KernelCompiler.compile(ADD_FOURS, Dialect.CUDA, null).source(), "addFours");
        assertTrue(fours.contains("red.relaxed.gpu.global.add.v4.f32"), "PTX lacks the vector reduction:\n" + fours);
    }
}
