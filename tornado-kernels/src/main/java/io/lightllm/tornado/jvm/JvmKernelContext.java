package io.lightllm.tornado.jvm;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KernelContext;
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
        private final java.util.List<Object> localArrays = new java.util.ArrayList<>();

        WorkGroup(int size, boolean withBarrier) {
            this.barrier = withBarrier ? new CyclicBarrier(size) : null;
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
    }

    WorkGroup group;
    int allocations;

    @Override
    public void localBarrier() {
        if (group.barrier == null) {
            throw new IllegalStateException("barrier in a kernel the JVM backend ran without barriers");
        }
        try {
            group.barrier.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted at a barrier", e);
        } catch (BrokenBarrierException e) {
            throw new IllegalStateException("another work-item of the group failed", e);
        }
    }

    @Override
    public void globalBarrier() {
        localBarrier();
    }

    @Override
    public float[] allocateFloatLocalArray(int size) {
        return (float[]) group.localArray(allocations++, float[].class, size);
    }

    @Override
    public int[] allocateIntLocalArray(int size) {
        return (int[]) group.localArray(allocations++, int[].class, size);
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
