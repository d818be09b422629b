package io.lightllm.tornado.compiler;

import java.util.EnumSet;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What a kernel is compiled for: the C dialect, and the {@link Feature}s the device can run,
 * natively or emulated by the generated code. {@code device} names it in refusals.
 */
public record Target(Dialect dialect, String device, Set<Feature> features) {
    public Target {
        features = Set.copyOf(features);
    }

    /** Every feature: for looking at generated source, as tests do. */
    public static Target any(Dialect dialect) {
        return new Target(dialect, dialect.name().toLowerCase(), EnumSet.allOf(Feature.class));
    }

    /**
     * A CUDA device of compute capability {@code major.minor}: tensor-core MMA of m16n8k16 needs 8.0
     * (Ampere), warpgroup MMA 9.0 (Hopper) and matrix loads 7.5; warp shuffles are everywhere, and asynchronous copies before
     * 8.0 are plain copies in the generated code.
     */
    public static Target cuda(String device, int major, int minor) {
        int cc = major * 10 + minor;
        Set<Feature> f = EnumSet.allOf(Feature.class);
        if (cc < 80) {
            f.remove(Feature.MMA_F16);
            f.remove(Feature.MMA_BF16);
        }
        if (cc < 75) {
            f.remove(Feature.LOAD_MATRIX);
        }
        if (cc < 90) {
            f.remove(Feature.CLUSTER_BARRIER);
        }
        if (cc != 90) {
            // wgmma is sm_90a's: neither older GPUs nor (in the arch-specific form NVRTC builds here) newer ones have it
            f.remove(Feature.WARPGROUP_MMA);
        }
        return new Target(Dialect.CUDA, device + " (compute capability " + major + "." + minor + ")", f);
    }

    /**
     * An OpenCL device: the warp operations are emulated through local memory and barriers, so all
     * of them run; double precision needs the device's {@code cl_khr_fp64}. Work-groups of OpenCL
     * cannot wait for each other, so cluster barriers do not run.
     */
    public static Target opencl(String device, boolean fp64) {
        Set<Feature> f = EnumSet.allOf(Feature.class);
        f.remove(Feature.CLUSTER_BARRIER);
        if (!fp64) {
            f.remove(Feature.DOUBLE);
        }
        return new Target(Dialect.OPENCL, device, f);
    }

    /** Largest work-group whose warps OpenCL emulates (the exchange in local memory is sized for it). */
    public static final int WARP_EMULATION_MAX_ITEMS = CEmitter.WARP_EXCHANGE_MAX_ITEMS;

    /** Whether an OpenCL build of {@code source} exchanges lanes' values through local memory (shuffles, MMA). */
    public static boolean emulatesWarps(KernelSource source) {
        return Feature.exchangesLanes(source.features());
    }

    /** Throws when {@code source} uses a feature this target lacks. */
    void check(String kernel, KernelSource source) {
        Set<Feature> missing = EnumSet.noneOf(Feature.class);
        missing.addAll(source.features());
        missing.removeAll(features);
        if (!missing.isEmpty()) {
            throw new KernelCompileException("kernel " + kernel + " uses " + missing.stream().map(Feature::description)
                    .collect(Collectors.joining(" and ")) + ", which " + device + " does not have");
        }
    }
}
