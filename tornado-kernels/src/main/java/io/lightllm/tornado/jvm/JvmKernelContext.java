package io.lightllm.tornado.jvm;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.MatrixFragments;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;

/**
 * The KernelContext of one work-item on the JVM. Work-items of a group share a
 * {@link WorkGroup}: its barrier (when the kernel has barriers, every work-item runs on its
 * own virtual thread) and its local arrays, handed out by allocation order.
 */
final class JvmKernelContext extends KernelContext {
    private static final VarHandle INT = ValueLayout.JAVA_INT.arrayElementVarHandle();

    /** State shared by the work-items of one work-group. */
    static final class WorkGroup {
        final CyclicBarrier barrier;
        /** The barrier of the group's cluster (every item of its groups), or null outside clusters. */
        final CyclicBarrier clusterBarrier;
        /**
         * Whether the group's sub-groups are its warps ({@link JvmDevice}: tuning {@code jvm.sub_groups=32}, a group of whole
         * warps run with barriers), else single items.
         */
        final boolean subGroups;
        private final int size;
        private final java.util.List<Object> localArrays = new java.util.ArrayList<>();
        private Warp[] warps;

        WorkGroup(int size, boolean withBarrier, CyclicBarrier clusterBarrier, boolean subGroups) {
            this.size = size;
            this.barrier = withBarrier ? new CyclicBarrier(size) : null;
            this.clusterBarrier = clusterBarrier;
            this.subGroups = subGroups;
        }

        /** The warp of the work-item with flat local id {@code item}; warps exist only in groups of a multiple of 32 run with barriers. */
        synchronized Warp warp(int item) {
            if (barrier == null || size % WARP_SIZE != 0) {
                throw new IllegalStateException("warp operations need work-groups of a multiple of " + WARP_SIZE + " items, got " + size);
            }
            if (warps == null) {
                warps = new Warp[size / WARP_SIZE];
                for (int w = 0; w < warps.length; w++) {
                    warps[w] = new Warp();
                }
            }
            return warps[item / WARP_SIZE];
        }

        synchronized Object localArray(int index, Class<?> type, int size) {
            if (index < localArrays.size()) {
                Object a = localArrays.get(index);
                if (a.getClass() != type || java.lang.reflect.Array.getLength(a) != size) {
                    throw new IllegalStateException("work-items of one group allocated different local arrays");
                }
                return a;
            }
            Object a = java.lang.reflect.Array.newInstance(type.getComponentType(), size);
            localArrays.add(a);
            return a;
        }

        /** Wakes every work-item waiting at a barrier of this group (one of them failed). */
        synchronized void breakBarriers() {
            if (barrier != null) {
                barrier.reset();
            }
            if (clusterBarrier != null) {
                clusterBarrier.reset();
            }
            if (warps != null) {
                for (Warp w : warps) {
                    w.barrier.reset();
                }
            }
        }
    }

    /**
     * One warp of 32 work-items: its own barrier, so that only the warp synchronises (as on a GPU),
     * and the exchange arrays of the emulated shuffles and matrix products.
     */
    static final class Warp {
        final CyclicBarrier barrier = new CyclicBarrier(WARP_SIZE);
        final float[] values = new float[WARP_SIZE];
        final float[] acc = new float[WARP_SIZE * 4];
        final int[] a = new int[WARP_SIZE * 4];
        final int[] b = new int[WARP_SIZE * 2];

        void await() {
            try {
                barrier.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted at a warp operation", e);
            } catch (BrokenBarrierException e) {
                throw new IllegalStateException("another work-item of the warp failed", e);
            }
        }
    }


    WorkGroup group;
    int allocations;

    @Override
    public void localBarrier() {
        if (group.barrier == null) {
            throw new IllegalStateException("barrier in a kernel the JVM backend ran without barriers");
        }
        await(group.barrier, "group");
    }

    @Override
    public void globalBarrier() {
        localBarrier();
    }

    /** Every item of the cluster's groups meets here (they run on their own threads: JvmDevice); a group outside clusters is its own cluster. */
    @Override
    public void clusterBarrier() {
        if (group.clusterBarrier == null) {
            localBarrier();
            return;
        }
        await(group.clusterBarrier, "cluster");
    }

    /** Waits at {@code barrier}, the {@code what}'s (group, cluster) whose items meet there. */
    private static void await(CyclicBarrier barrier, String what) {
        try {
            barrier.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted at a " + what + " barrier", e);
        } catch (BrokenBarrierException e) {
            throw new IllegalStateException("another work-item of the " + what + " failed", e);
        }
    }

    @Override
    public float[] allocateFloatLocalArray(int size) {
        return (float[]) group.localArray(allocations++, float[].class, size);
    }

    @Override
    public int[] allocateIntLocalArray(int size) {
        return (int[]) group.localArray(allocations++, int[].class, size);
    }

    private Warp warp() {
        return group.warp(flatLocalId());
    }

    /** A warp where the launch emulates sub-groups (see {@link WorkGroup#subGroups}), else 1, as the JVM has none. */
    @Override
    public int subGroupSize() {
        return group.subGroups ? WARP_SIZE : 1;
    }

    /** The sum over the sub-group: a butterfly of emulated shuffles over the warp, as CUDA's {@code lj_warp_sum} adds. */
    @Override
    public float subGroupReduceAdd(float value) {
        if (!group.subGroups) {
            return value;
        }
        float v = value;
        for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
            v += warpShuffleXor(v, offset);
        }
        return v;
    }

    @Override
    public float warpShuffleXor(float value, int laneMask) {
        return warpShuffle(value, laneId() ^ laneMask);
    }

    @Override
    public float warpShuffle(float value, int srcLane) {
        Warp w = warp();
        w.values[laneId()] = value;
        w.await();
        float v = w.values[srcLane & (WARP_SIZE - 1)];
        w.await(); // the values array is rewritten by the next shuffle
        return v;
    }

    @Override
    public void mmaF16(float[] acc, int accIndex, int[] a, int aIndex, int[] b, int bIndex) {
        mma(acc, accIndex, a, aIndex, b, bIndex, false);
    }

    @Override
    public void mmaBf16(float[] acc, int accIndex, int[] a, int aIndex, int[] b, int bIndex) {
        mma(acc, accIndex, a, aIndex, b, bIndex, true);
    }

    /** Every lane hands in its fragments; lane 0 multiplies for the warp; every lane takes its accumulators back. */
    private void mma(float[] acc, int accIndex, int[] a, int aIndex, int[] b, int bIndex, boolean bf16) {
        Warp w = warp();
        int lane = laneId();
        System.arraycopy(acc, accIndex, w.acc, lane * 4, 4);
        System.arraycopy(a, aIndex, w.a, lane * 4, 4);
        System.arraycopy(b, bIndex, w.b, lane * 2, 2);
        w.await();
        if (lane == 0) {
            MatrixFragments.multiplyAccumulate(w.acc, w.a, w.b, bf16);
        }
        w.await();
        System.arraycopy(w.acc, lane * 4, acc, accIndex, 4);
        w.await();
    }

    @Override
    public int atomicAdd(IntArray array, int index, int delta) {
        return (int) INT.getAndAdd(array.segment(), 0L, (long) index, delta);
    }

    @Override
    public float atomicAdd(FloatArray array, int index, float delta) {
        while (true) {
            int old = (int) INT.getVolatile(array.segment(), 0L, (long) index);
            float f = Float.intBitsToFloat(old);
            if (INT.compareAndSet(array.segment(), 0L, (long) index, old, Float.floatToRawIntBits(f + delta))) {
                return f;
            }
        }
    }
}
