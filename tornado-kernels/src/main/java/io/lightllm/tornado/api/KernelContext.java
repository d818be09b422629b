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

    /** Atomically adds {@code delta} to {@code array[index]}; returns the old value. */
    public abstract int atomicAdd(IntArray array, int index, int delta);

    /** Atomically adds {@code delta} to {@code array[index]}; returns the old value. */
    public abstract float atomicAdd(FloatArray array, int index, float delta);
}
