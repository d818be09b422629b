package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.DType;
import java.util.ArrayList;
import java.util.List;

/**
 * A device buffer that launches reuse and that grows on demand (cuBLAS's narrowed activations, a dequantised weight
 * matrix). The buffers it replaces stay allocated for as long as it lives: a captured CUDA graph may still point at
 * them.
 */
public final class GrowingScratch {
    /** How the scratch allocates: a device's {@code allocate}, or a variant that skips zeroing. */
    @FunctionalInterface
    public interface Allocator {
        DeviceBuffer allocate(DType dtype, long elements);
    }

    private final Allocator allocator;
    private DeviceBuffer current;
    private final List<DeviceBuffer> replaced = new ArrayList<>();

    public GrowingScratch(Allocator allocator) {
        this.allocator = allocator;
    }

    /** A buffer of {@code dtype} with at least {@code elements}: the current one where it fits, else a new one no smaller. */
    public synchronized DeviceBuffer atLeast(DType dtype, long elements) {
        if (current == null || current.dtype() != dtype || current.elements() < elements) {
            long size = Math.max(elements, current == null ? 0 : current.elements());
            if (current != null) {
                replaced.add(current);
            }
            current = allocator.allocate(dtype, size);
        }
        return current;
    }

    /** The buffer {@link #atLeast} last returned, or null. */
    public synchronized DeviceBuffer current() {
        return current;
    }
}
