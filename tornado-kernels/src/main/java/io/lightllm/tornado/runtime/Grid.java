package io.lightllm.tornado.runtime;

import java.util.Arrays;

/**
 * The launch grid: global sizes for 1 to 3 dimensions and, optionally, the work-group
 * (local) sizes. Explicit {@code KernelContext} kernels need local sizes; for
 * {@code @Parallel} kernels a backend picks them when absent. {@code cluster} consecutive
 * work-groups along x form a cluster, whose groups run at the same time and may wait for each
 * other ({@code KernelContext.clusterBarrier}); 1 (no clusters) unless {@link #clustered} says otherwise.
 */
public record Grid(long[] global, long[] local, int cluster) {

    public Grid(long[] global, long[] local) {
        this(global, local, 1);
    }

    public Grid {
        if (cluster < 1) {
            throw new IllegalArgumentException("a cluster has at least one work-group, not " + cluster);
        }
        if (cluster > 1 && (local == null || (global[0] / local[0]) % cluster != 0)) {
            throw new IllegalArgumentException("clusters of " + cluster + " work-groups need local sizes and a multiple of " + cluster
                    + " work-groups along x: " + Arrays.toString(global) + " / " + (local == null ? "none" : Arrays.toString(local)));
        }
        if (global.length < 1 || global.length > 3) {
            throw new IllegalArgumentException("a grid has 1 to 3 dimensions, not " + global.length);
        }
        for (long g : global) {
            if (g <= 0) {
                throw new IllegalArgumentException("global sizes must be positive: " + Arrays.toString(global));
            }
        }
        if (local != null) {
            if (local.length != global.length) {
                throw new IllegalArgumentException("local sizes " + Arrays.toString(local) + " do not match global " + Arrays.toString(global));
            }
            for (int d = 0; d < global.length; d++) {
                if (local[d] <= 0 || global[d] % local[d] != 0) {
                    throw new IllegalArgumentException("global size " + global[d] + " is not a multiple of local size " + local[d] + " in dimension " + d);
                }
            }
        }
    }

    public static Grid of(long x) {
        return new Grid(new long[] {x}, null);
    }

    public static Grid of(long x, long y) {
        return new Grid(new long[] {x, y}, null);
    }

    public static Grid of(long x, long y, long z) {
        return new Grid(new long[] {x, y, z}, null);
    }

    /** {@code groups} work-groups of {@code localSize} work-items each, in one dimension. */
    public static Grid groups(long groups, long localSize) {
        return new Grid(new long[] {groups * localSize}, new long[] {localSize});
    }

    public Grid local(long... sizes) {
        return new Grid(global, sizes, cluster);
    }

    /** This grid with its work-groups in clusters of {@code groups} consecutive ones along x. */
    public Grid clustered(int groups) {
        return new Grid(global, local, groups);
    }

    /**
     * This grid with its dimensions in reverse order, as the GPU backends launch a {@code @Parallel}
     * kernel: a grid names its dimensions outermost loop first, and the innermost loop runs on the
     * device's first axis, where consecutive work-items are consecutive threads of a warp.
     */
    public Grid reversed() {
        long[] g = new long[global.length];
        long[] l = local == null ? null : new long[local.length];
        for (int d = 0; d < global.length; d++) {
            g[d] = global[global.length - 1 - d];
            if (l != null) {
                l[d] = local[local.length - 1 - d];
            }
        }
        return new Grid(g, l, cluster);
    }

    public int dimensions() {
        return global.length;
    }

    /** Global size of dimension d (1 past the grid's dimensions). */
    public long globalSize(int d) {
        return d < global.length ? global[d] : 1;
    }

    /** Work-group size of dimension d (1 when the grid has none). */
    public long localSize(int d) {
        return local == null ? 1 : d < local.length ? local[d] : 1;
    }

    public boolean hasLocal() {
        return local != null;
    }

    public long totalWorkItems() {
        return globalSize(0) * globalSize(1) * globalSize(2);
    }

    /** {@code global [x, y] local [a, b]}, for launch lines ({@link TornadoDebug}); {@code none} stands for no local sizes. */
    public String sizes(String none) {
        return "global " + Arrays.toString(global) + " local " + (local == null ? none : Arrays.toString(local))
                + (cluster > 1 ? " cluster " + cluster : "");
    }

    @Override
    public String toString() {
        return "Grid" + Arrays.toString(global) + (local == null ? "" : "/" + Arrays.toString(local)) + (cluster > 1 ? " cluster " + cluster : "");
    }
}
