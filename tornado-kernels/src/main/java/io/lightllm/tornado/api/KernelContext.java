package io.lightllm.tornado.api;

/**
 * The explicit-kernel view of the grid (TornadoVM's {@code KernelContext}): a kernel that
 * takes one as its first parameter runs once per work-item and reads its position from these
 * fields. Work-items of one work-group share local arrays and meet at {@link #localBarrier()}.
 *
 * <p>The compiler maps each field and method to the device's built-in ({@code get_global_id(0)},
 * {@code threadIdx.x + blockIdx.x * blockDim.x}, ...); on the JVM a backend subclass sets
 * the fields and implements the barrier and local memory.
 */
public abstract class KernelContext {
    public int globalIdx, globalIdy, globalIdz;
    public int localIdx, localIdy, localIdz;
    public int groupIdx, groupIdy, groupIdz;
    public int localGroupSizeX = 1, localGroupSizeY = 1, localGroupSizeZ = 1;
    public int globalGroupSizeX = 1, globalGroupSizeY = 1, globalGroupSizeZ = 1;

    /** Waits until every work-item of the group arrives; orders local-memory accesses. */
    public abstract void localBarrier();

    /** Like {@link #localBarrier()}, also ordering global-memory accesses of the group. */
    public abstract void globalBarrier();

    /**
     * Waits until every lane of this work-item's warp ({@link #WARP_SIZE} items) arrives; orders their local-memory accesses
     * (and copies their {@link #copyAsyncWait} completed). For warps of a group that each work in their own part of local
     * memory: a group barrier would hold every warp to the slowest one's loads. CUDA runs it as {@code __syncwarp()};
     * backends without warps (OpenCL, the JVM) as {@link #localBarrier()}, so every work-item of the group must reach it
     * the same number of times, as a group barrier.
     */
    public void warpBarrier() {
        localBarrier();
    }

    /** A float array in local (shared) memory, one per work-group; {@code size} must be a constant. */
    public abstract float[] allocateFloatLocalArray(int size);

    /** An int array in local (shared) memory, one per work-group; {@code size} must be a constant. */
    public abstract int[] allocateIntLocalArray(int size);

    /**
     * Work-items per sub-group: consecutive local x ids that reduce together without local memory
     * or barriers (a CUDA warp, an OpenCL sub-group). Backends without them report 1. It divides
     * the local size; kernels must be correct for any value.
     */
    public int subGroupSize() {
        return 1;
    }

    /**
     * The sum of {@code value} over this work-item's sub-group, returned to every member (warp
     * shuffles on CUDA, {@code sub_group_reduce_add} on OpenCL devices with sub-groups). Every
     * member must call it (uniform control flow within the sub-group).
     */
    public float subGroupReduceAdd(float value) {
        return value;
    }

    // ---- warps: the fixed 32-item unit of the warp-level operations --------------------------------

    /**
     * Work-items of a warp, on every backend: the warp-level operations below treat each 32
     * consecutive work-items of a group (by flat local id) as one warp. CUDA runs them on its
     * warps; the JVM and OpenCL emulate them (see docs/kernels.md), so they are collectives: every
     * work-item of the group must reach each call (uniform control flow, like a barrier), and a
     * kernel that uses them is launched with groups of a multiple of 32 items.
     */
    public static final int WARP_SIZE = 32;

    /** This work-item's lane in its warp: its flat local id modulo {@link #WARP_SIZE}. */
    public final int laneId() {
        return flatLocalId() % WARP_SIZE;
    }

    /** This work-item's index in its group, x fastest (how warps are formed). Host code only: kernels use {@link #laneId()}. */
    protected final int flatLocalId() {
        return localIdx + localGroupSizeX * (localIdy + localGroupSizeY * localIdz);
    }

    /** {@code value} of the lane {@code laneId() ^ laneMask} of this warp (a butterfly exchange). */
    public abstract float warpShuffleXor(float value, int laneMask);

    /** {@code value} of lane {@code srcLane} (0 to 31) of this warp. */
    public abstract float warpShuffle(float value, int srcLane);

    /**
     * Tensor-core matrix multiply-accumulate of one warp, PTX's {@code mma.m16n8k16} with f16
     * inputs: D[16x8] += A[16x16] B[16x8] with f32 accumulators. Each lane holds its part of the
     * fragments in private arrays, in PTX's layout (g = laneId() / 4, t = laneId() % 4):
     * {@code acc[accIndex..+3]} = D(g, 2t), D(g, 2t+1), D(g+8, 2t), D(g+8, 2t+1);
     * {@code a[aIndex..+3]}, pairs of halves packed low-first into ints (see {@link KMath#packHalf2}):
     * A(g, 2t..2t+1), A(g+8, 2t..), A(g, 2t+8..), A(g+8, 2t+8..);
     * {@code b[bIndex..+1]}: B(2t..2t+1, g), B(2t+8..2t+9, g). {@link MatrixFragments} has the same
     * layout as code. Products are exact in f32; only the order of the f32 sums differs between backends.
     */
    public abstract void mmaF16(float[] acc, int accIndex, int[] a, int aIndex, int[] b, int bIndex);

    /** {@link #mmaF16} with bfloat16 inputs. */
    public abstract void mmaBf16(float[] acc, int accIndex, int[] a, int aIndex, int[] b, int bIndex);

    /**
     * Loads this lane's A fragment (4 ints) of the 16x16 tile of 16-bit values that starts at
     * {@code tile[tileIndex]} in local memory, rows {@code rowStride} ints apart (PTX
     * {@code ldmatrix.x4}). {@code tileIndex} and {@code rowStride} must be the same on every lane and
     * multiples of 4 (rows start on 16 bytes).
     */
    public void loadMatrixA(int[] a, int aIndex, int[] tile, int tileIndex, int rowStride) {
        MatrixFragments.checkTile(tileIndex, rowStride);
        int lane = laneId();
        for (int r = 0; r < 4; r++) {
            a[aIndex + r] = tile[tileIndex + MatrixFragments.aRow(lane, r) * rowStride + MatrixFragments.aPair(lane, r)];
        }
    }

    /**
     * Loads B fragments for two consecutive k16 steps (4 ints: b of k 0-15, then of k 16-31) from a
     * tile stored n-major: 8 rows (n), each 32 values of k, at {@code tile[tileIndex]} with rows
     * {@code rowStride} ints apart. This is the layout of K for Q K^T and of weights [out, in] for
     * x W^T (PTX {@code ldmatrix.x4}).
     */
    public void loadMatrixB(int[] b, int bIndex, int[] tile, int tileIndex, int rowStride) {
        MatrixFragments.checkTile(tileIndex, rowStride);
        int lane = laneId();
        for (int r = 0; r < 4; r++) {
            b[bIndex + r] = tile[tileIndex + (lane / 4) * rowStride + lane % 4 + 4 * r];
        }
    }

    /**
     * Loads B fragments for two n8 tiles (4 ints: b of n 0-7, then of n 8-15) of one k16 step from a
     * tile stored k-major: 16 rows (k), each 16 values of n, at {@code tile[tileIndex]} with rows
     * {@code rowStride} ints apart. This is the layout of V for P V (PTX {@code ldmatrix.x4.trans}).
     */
    public void loadMatrixBTransposed(int[] b, int bIndex, int[] tile, int tileIndex, int rowStride) {
        MatrixFragments.checkTile(tileIndex, rowStride);
        int lane = laneId();
        for (int r = 0; r < 4; r++) {
            int n = 8 * (r / 2) + lane / 4;
            int k = 8 * (r % 2) + 2 * (lane % 4);
            int lo = MatrixFragments.half(tile[tileIndex + k * rowStride + n / 2], n % 2);
            int hi = MatrixFragments.half(tile[tileIndex + (k + 1) * rowStride + n / 2], n % 2);
            b[bIndex + r] = lo | hi << 16;
        }
    }

    // ---- warpgroups: Hopper's matrix multiply-accumulate from local memory ----------------------------

    /** Work-items of a warpgroup: four consecutive warps (by flat local id), the unit of {@link #warpgroupMmaBf16}. */
    public static final int WARPGROUP_SIZE = 128;

    /**
     * D[64 x n] += A[64 x 16] B[n x 16]ᵀ with bf16 inputs read from local memory and f32 accumulators in each
     * work-item's registers: PTX's {@code wgmma.mma_async.m64nNk16} (Hopper), issued by the 128 work-items of a
     * warpgroup together. n is a constant: 8, 16, 32, 64, 128 or 256.
     *
     * <p>Both operands are k-major (rows of k values, as a[m, k] and weights w[n, k] are stored) in tiles of 64 k a row and
     * the <em>128-byte swizzle</em> (the layout TMA writes and wgmma reads without bank conflicts): a row is 32 ints (64 bf16,
     * 128 bytes), 8 rows an atom of 1024 bytes, and the 16-byte chunk j of row r sits at chunk position {@code j ^ (r % 8)}.
     * Value (r, k) of this k16 step's A is half {@code k % 2} of {@code a[swizzle(aIndex + (r / 8) * aStride + (r % 8) * 32 + k / 2)]}
     * with {@code swizzle(i)} = i with bits 2-4 XOR-ed with bits 5-7 (kernels: {@code WarpgroupMatmul.swizzle128}); aIndex is the tile's start (a
     * multiple of 256 ints: the runtime aligns local arrays that warpgroup MMAs read to 1024 bytes) plus 8 ints per k16 step,
     * and 8-row atoms are {@code aStride} ints apart (256 for consecutive ones). B (n rows) likewise with {@code bStride}. A
     * work-item copying the 16-byte chunk j (k 8j..8j+7) of row r stores it at {@code swizzle(tile + (r / 8) * 256 + (r % 8) * 32 + 4 * j)}:
     * eight items taking a row's eight chunks read 128 contiguous bytes and write one 128-byte row of local memory.
     *
     * <p>{@code acc} holds n / 2 floats in the layout of {@link #mmaBf16}'s, per warp w of the warpgroup (rows 16w..16w+15)
     * and per n8 block j: {@code acc[4j + e]} = D(16w + g + 8 (e / 2), 8j + 2t + e % 2), g = laneId() / 4, t = laneId() % 4.
     *
     * <p>The instruction is asynchronous on CUDA: the accumulators may be read, and the tiles overwritten, only after
     * {@link #warpgroupWait}; before the first of a batch call {@link #warpgroupArrive}; local memory written by
     * stores or {@link #copyAsync} must be made visible with {@link #warpgroupFenceLocal} (then a barrier). The JVM
     * and OpenCL compute the product at the call: exact products, only the f32 summation order differs.
     */
    public void warpgroupMmaBf16(float[] acc, int[] a, int aIndex, int aStride, int[] b, int bIndex, int bStride, int n) {
        warpgroupMma(acc, a, aIndex, aStride, b, bIndex, bStride, -1, n, true);
    }

    /** {@link #warpgroupMmaBf16} with f16 inputs. */
    public void warpgroupMmaF16(float[] acc, int[] a, int aIndex, int aStride, int[] b, int bIndex, int bStride, int n) {
        warpgroupMma(acc, a, aIndex, aStride, b, bIndex, bStride, -1, n, false);
    }

    /**
     * {@link #warpgroupMmaF16} with B stored n-major ("transposed": rows of n values for each k, as V[key, dim] is the B of
     * P·V): row k holds 64 values of n (128 bytes, the 128-byte swizzle as for A) in each of n / 64 column blocks
     * {@code bBlockStride} ints apart, and 8-row groups of k are {@code bStride} ints apart. Value (n, k) is half
     * {@code n % 2} of {@code b[swizzle(bIndex + (k / 8) * bStride + (k % 8) * 32 + (n / 64) * bBlockStride + (n % 64) / 2)]};
     * bIndex is the tile's start plus 2 bStride per k16 step. PTX: the same instruction with its B-transpose flag set.
     */
    public void warpgroupMmaF16NMajorB(float[] acc, int[] a, int aIndex, int aStride, int[] b, int bIndex, int bStride, int bBlockStride, int n) {
        warpgroupMma(acc, a, aIndex, aStride, b, bIndex, bStride, bBlockStride, n, false);
    }

    private void warpgroupMma(float[] acc, int[] a, int aIndex, int aStride, int[] b, int bIndex, int bStride, int bBlockStride, int n,
            boolean bf16) {
        int warp = (flatLocalId() / WARP_SIZE) % 4, lane = laneId(), g = lane / 4, t = lane % 4;
        for (int j = 0; j < n / 8; j++) {
            for (int e = 0; e < 4; e++) {
                int row = 16 * warp + g + 8 * (e / 2), col = 8 * j + 2 * t + e % 2;
                float s = acc[4 * j + e];
                for (int k = 0; k < 16; k++) {
                    int aw = a[swizzle128(aIndex + (row / 8) * aStride + (row % 8) * 32 + k / 2)];
                    float bv = bBlockStride < 0
                            ? MatrixFragments.value(b[swizzle128(bIndex + (col / 8) * bStride + (col % 8) * 32 + k / 2)], k % 2, bf16)
                            : MatrixFragments.value(b[swizzle128(bIndex + (k / 8) * bStride + (k % 8) * 32 + (col / 64) * bBlockStride + (col % 64) / 2)],
                                    col % 2, bf16);
                    s += MatrixFragments.value(aw, k % 2, bf16) * bv;
                }
                acc[4 * j + e] = s;
            }
        }
    }

    /** The 128-byte swizzle of an int index into a local tile (kernels have their own: this package is not compiled). */
    private static int swizzle128(int i) {
        return (i & ~0x1c) | ((((i >> 2) ^ (i >> 5)) & 7) << 2);
    }

    /**
     * Before a batch of {@link #warpgroupMmaBf16}: orders this warpgroup's register and local-memory writes before the
     * asynchronous MMAs ({@code wgmma.fence}). {@code acc} is the accumulator the batch adds to.
     */
    public void warpgroupArrive(float[] acc) {
    }

    /** Closes the batch of warpgroup MMAs issued since the last commit ({@code wgmma.commit_group}). */
    public void warpgroupCommit() {
    }

    /** Waits until at most {@code pendingGroups} (a constant) committed batches are in flight; then {@code acc} may be read. */
    public void warpgroupWait(float[] acc, int pendingGroups) {
    }

    /**
     * Makes this work-item's writes to local memory (stores, and copies completed by {@link #copyAsyncWait}) visible to
     * warpgroup MMAs, which read local memory through another path ({@code fence.proxy.async}); a barrier follows.
     */
    public void warpgroupFenceLocal() {
    }

    // ---- asynchronous copies into local memory --------------------------------------------------------

    /**
     * Starts copying 16 bytes from {@code src} at element {@code srcIndex} (16-byte aligned) into
     * {@code local[localIndex..+3]} (a multiple of 4), raw: four ints of whatever {@code src} holds,
     * little-endian. Where the target has them this is {@code cp.async}: the copy completes at
     * {@link #copyAsyncWait}, and other work-items see it after the barrier that follows.
     */
    public void copyAsync(int[] local, int localIndex, NativeArray src, int srcIndex) {
        if (localIndex % 4 != 0) {
            throw new IllegalArgumentException("copyAsync needs 16-byte alignment: local index " + localIndex + " is not a multiple of 4 ints");
        }
        src.getWords(srcIndex, local, localIndex, 4); // checks the source's 16-byte alignment
    }

    /** Closes the group of copies started since the last commit (PTX {@code cp.async.commit_group}). */
    public void copyAsyncCommit() {
    }

    /** Waits until at most {@code pendingGroups} (a constant) committed groups are still in flight. */
    public void copyAsyncWait(int pendingGroups) {
    }

    /**
     * Orders this work-item's global-memory accesses for the whole launch: what it wrote before the fence is
     * seen by any work-item, of any group, that sees what it does after it (CUDA {@code __threadfence()}). With
     * {@link #atomicAdd} on a counter it lets the group that arrives last read the others' results: every
     * item writes, fences, the group meets at a barrier, one item counts the group in.
     */
    public void memoryFence() {
        java.lang.invoke.VarHandle.fullFence();
    }

    /**
     * Waits until every work-item of this work-group's cluster arrives, and orders their memory accesses: what
     * any of them wrote before (global or local memory) is seen by all of them after it. A cluster is
     * {@code Grid.cluster()} consecutive work-groups along x (group {@code groupIdx} is rank {@code groupIdx % cluster}
     * of its cluster), resident together, so a kernel can combine its groups' results without a second launch.
     * CUDA runs it on Hopper's thread-block clusters ({@code barrier.cluster.arrive.release} and
     * {@code wait.acquire}); the JVM runs a cluster's groups at once; OpenCL work-groups cannot wait for
     * each other, and a kernel that calls it is refused there ({@code Feature.CLUSTER_BARRIER}). Every work-item
     * of the cluster must reach each call (uniform control flow, like {@link #localBarrier()}).
     */
    public void clusterBarrier() {
        throw new UnsupportedOperationException("this backend has no cluster barriers");
    }

    /** Atomically adds {@code delta} to {@code array[index]}; returns the old value. */
    public abstract int atomicAdd(IntArray array, int index, int delta);

    /** Atomically adds {@code delta} to {@code array[index]}; returns the old value. */
    public abstract float atomicAdd(FloatArray array, int index, float delta);

    /**
     * Adds {@code a, b, c, d} to {@code array[index..index + 3]} ({@code index} a multiple of 4), each element
     * atomically (not the four as one). On Hopper one vector reduction ({@code red.global.add.v4.f32}), a quarter
     * of the L2 atomic operations of four {@link #atomicAdd}s: split-k GEMMs add their partial tiles this way.
     */
    public void atomicAdd4(FloatArray array, int index, float a, float b, float c, float d) {
        if (index % 4 != 0) {
            throw new IllegalArgumentException("atomicAdd4 needs an index that is a multiple of 4, got " + index);
        }
        atomicAdd(array, index, a);
        atomicAdd(array, index + 1, b);
        atomicAdd(array, index + 2, c);
        atomicAdd(array, index + 3, d);
    }
}
