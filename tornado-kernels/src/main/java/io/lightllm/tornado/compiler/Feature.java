package io.lightllm.tornado.compiler;

/**
 * Parts of the kernel language that not every device has. The compiler records which a kernel
 * uses; a {@link Target} says which its device can run (natively or emulated), and a kernel that
 * needs more is refused at compile time, naming the feature and the device.
 */
public enum Feature {
    DOUBLE("double precision"),
    WARP_SHUFFLE("warp shuffles (KernelContext.warpShuffle, warpShuffleXor)"),
    MMA_F16("tensor-core matrix multiply-accumulate with f16 inputs (KernelContext.mmaF16)"),
    MMA_BF16("tensor-core matrix multiply-accumulate with bf16 inputs (KernelContext.mmaBf16)"),
    LOAD_MATRIX("matrix fragment loads from local memory (KernelContext.loadMatrix*)"),
    ASYNC_COPY("asynchronous copies into local memory (KernelContext.copyAsync)"),
    WARPGROUP_MMA("warpgroup matrix multiply-accumulate from local memory (KernelContext.warpgroupMmaBf16: Hopper's wgmma)"),
    VECTOR_ACCESS("vector loads and stores (getFloats, setFloats)"),
    CLUSTER_BARRIER("barriers across a cluster of work-groups (KernelContext.clusterBarrier: Hopper's thread-block clusters)");

    private final String description;

    Feature(String description) {
        this.description = description;
    }

    public String description() {
        return description;
    }

    /** Whether a kernel using {@code features} exchanges its lanes' values (shuffles, MMA): emulated through local memory off CUDA. */
    public static boolean exchangesLanes(java.util.Set<Feature> features) {
        return features.contains(WARP_SHUFFLE) || features.contains(MMA_F16) || features.contains(MMA_BF16);
    }
}
