package io.lightllm.kernels;

import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Batch-invariant kernels: with {@code -Dlightllm.batch_invariant=true} (the CLI's
 * {@code --batch-invariant}) a row's matmul result and a request's attention do not depend on
 * what else is in the launch, so a prompt gives the same logits, bit for bit, alone or in any
 * batch, prefilled whole or after a cached prefix, in chunks or at once. It is vLLM's
 * {@code VLLM_BATCH_INVARIANT} and follows Thinking Machines' "Defeating Nondeterminism in LLM
 * Inference" (2025): every kernel whose reduction order could follow the batch is pinned.
 *
 * <ul>
 *   <li>Matmuls run one kernel for every row count (the GEMV, vendor GEMMs and split-k pick by m):
 *       {@code Matmul.useGemv} is false and {@code Matmul.prepareSplitK} gives one split, so the
 *       tensor-core GEMM runs where the device has one for the weights, else the tiled kernel;
 *       both sum each output over k in one fixed order.</li>
 *   <li>Decode attention splits each request by its own length only ({@link Attention.DecodeSplits}
 *       with {@link Attention#MAX_SPLITS} in every launch), never by how many requests share the
 *       launch, and the merge adds splits in order.</li>
 *   <li>The backends' own implementations (JVM Vector API, cuBLAS) are bypassed for matmul and
 *       attention ({@link #launch}): their blocking follows the batch.</li>
 * </ul>
 *
 * Norms, rotary, activations, sampling and the KV copy work row by row already. The price is speed:
 * decode matmuls run the GEMM's 128-row tiles for a handful of rows (docs/engine.md measures it).
 */
public final class BatchInvariance {
    /** The system property that turns it on. */
    public static final String PROPERTY = "lightllm.batch_invariant";

    private BatchInvariance() {
    }

    /** Whether batch-invariant kernels are on (read at each launch, so a test may toggle it). */
    public static boolean enabled() {
        return Boolean.getBoolean(PROPERTY);
    }

    /**
     * Launches a matmul or attention kernel: through the device's override where it has one (cuBLAS,
     * the JVM's Vector API kernels), but as written when batch-invariant kernels are on.
     */
    static void launch(Device device, KernelRef kernel, Grid grid, Object... args) {
        if (enabled()) {
            device.launchPortable(kernel, grid, args);
        } else {
            device.launch(kernel, grid, args);
        }
    }
}
