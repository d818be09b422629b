package io.lightllm.tornado.cuda;

import io.lightllm.tornado.runtime.Grid;
import java.util.Arrays;

/**
 * The CUDA grid (blocks) and block (threads) of one launch, derived from a portable {@link Grid}.
 *
 * <p>CUDA needs a block size where OpenCL can pick one. An explicit kernel gets exactly the
 * grid's work-groups. A {@code @Parallel} kernel is a grid-stride loop that is correct for any
 * number of threads; its grid is launched reversed ({@link Grid#reversed}: the innermost loop on x,
 * where a warp's consecutive threads run), and when the grid has no local sizes a block of 256 (1D),
 * 32x8 (2D) or 32x4x2 (3D) threads is used, a warp along the innermost loop, and the block count rounded up; block counts are capped at the
 * hardware limits and so that the total thread count of a dimension fits an int (the generated
 * code computes indices and strides in int). A serial kernel runs as one thread.
 */
record LaunchShape(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ) {
    /** How the compiled kernel uses its threads. */
    enum Kind {
        /** No @Parallel loop and no KernelContext: thread 0 does everything. */
        SERIAL,
        /** Grid-stride @Parallel loops: any grid is correct. */
        PARALLEL,
        /** A KernelContext kernel: the grid is the kernel's own index space. */
        EXPLICIT
    }

    /** CUDA's block size limits per dimension (every architecture since compute capability 2.0). */
    private static final int[] MAX_BLOCK = {1024, 1024, 64};
    private static final long[][] DEFAULT_BLOCKS = {{256}, {32, 8}, {32, 4, 2}};

    static LaunchShape of(Grid grid, Kind kind, int maxThreadsPerBlock, long[] maxGridBlocks, String where) {
        if (kind == Kind.SERIAL) {
            return new LaunchShape(1, 1, 1, 1, 1, 1);
        }
        if (kind == Kind.PARALLEL) {
            grid = grid.reversed();
        }
        int dims = grid.dimensions();
        long[] block = new long[3];
        long[] blocks = new long[3];
        Arrays.fill(block, 1);
        Arrays.fill(blocks, 1);
        if (grid.hasLocal()) {
            for (int d = 0; d < dims; d++) {
                block[d] = grid.localSize(d);
            }
            checkBlock(block, maxThreadsPerBlock, where);
            for (int d = 0; d < dims; d++) {
                blocks[d] = grid.globalSize(d) / block[d];
            }
        } else if (kind == Kind.EXPLICIT) {
            throw new IllegalArgumentException(where + ": explicit kernels need local (work-group) sizes: Grid.local(...)");
        } else {
            System.arraycopy(DEFAULT_BLOCKS[dims - 1], 0, block, 0, dims);
            while (block[0] * block[1] * block[2] > maxThreadsPerBlock) {
                int largest = block[0] >= block[1] && block[0] >= block[2] ? 0 : block[1] >= block[2] ? 1 : 2;
                block[largest] /= 2;
            }
            for (int d = 0; d < dims; d++) {
                blocks[d] = (grid.globalSize(d) + block[d] - 1) / block[d];
            }
        }
        for (int d = 0; d < 3; d++) {
            long limit = Math.min(maxGridBlocks[d], Integer.MAX_VALUE / block[d]);
            if (blocks[d] > limit) {
                if (kind == Kind.EXPLICIT) {
                    throw new IllegalArgumentException(where + ": " + blocks[d] + " work-groups in dimension " + d + " exceed the limit of "
                            + limit + " (grid " + grid + ")");
                }
                blocks[d] = limit; // grid-stride loops cover the rest
            }
        }
        return new LaunchShape((int) blocks[0], (int) blocks[1], (int) blocks[2], (int) block[0], (int) block[1], (int) block[2]);
    }

    private static void checkBlock(long[] block, int maxThreadsPerBlock, String where) {
        long threads = block[0] * block[1] * block[2];
        for (int d = 0; d < 3; d++) {
            if (block[d] > MAX_BLOCK[d]) {
                throw new IllegalArgumentException(where + ": work-group size " + block[d] + " in dimension " + d
                        + " exceeds CUDA's limit of " + MAX_BLOCK[d]);
            }
        }
        if (threads > maxThreadsPerBlock) {
            throw new IllegalArgumentException(where + ": a work-group of " + threads + " work-items exceeds this kernel's limit of "
                    + maxThreadsPerBlock + " threads per block (set by its register use on this device)");
        }
    }

    long threads() {
        return (long) gridX * gridY * gridZ * blockX * blockY * blockZ;
    }

    @Override
    public String toString() {
        return "grid [" + gridX + ", " + gridY + ", " + gridZ + "] x block [" + blockX + ", " + blockY + ", " + blockZ + "]";
    }
}
