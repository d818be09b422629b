package io.lightllm.engine;

import com.sun.management.OperatingSystemMXBean;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import java.lang.management.ManagementFactory;

/**
 * Sizes the KV pool when --max-total-token-num is not given (LightLLM's --mem-fraction): the
 * pool takes a fraction of the device memory left after the weights, divided by the bytes one
 * token's K and V take in every layer.
 */
public final class KvPoolSizing {
    /** LightLLM's default share of the free memory given to the KV pool. */
    public static final double DEFAULT_MEM_FRACTION = 0.9;

    private KvPoolSizing() {
    }

    /**
     * KV slots for {@code model} on its device: {@code memFraction} of the free memory after
     * weights over {@link #bytesPerToken}. {@code weightBytes}: bytes the loaded weights hold on an
     * accelerator (its runtime reports total memory, not free memory); ignored on the JVM, whose
     * free physical memory is measured after loading.
     */
    public static int maxTotalTokens(CausalLM model, DType kvDtype, double memFraction, long weightBytes) {
        if (!(memFraction > 0 && memFraction <= 1)) {
            throw new IllegalArgumentException("--mem-fraction must be in (0, 1], got " + memFraction);
        }
        Device device = model.device();
        // ranks on the same memory (tensor parallelism on one device, or on the JVM) each hold weights and a pool
        int sharing = model.ranksSharingMemory();
        long free = freeBytesAfterWeights(device, weightBytes * sharing);
        long perToken = bytesPerToken(model, kvDtype) * sharing;
        long tokens = (long) (memFraction * free) / perToken;
        if (tokens < 1) {
            throw new IllegalArgumentException("no room for a KV pool on " + device.id() + ": " + free + " bytes free after weights, "
                    + perToken + " bytes per token; give --max-total-token-num or a larger --mem-fraction");
        }
        // each layer's K (or V) is one buffer indexed with int, of the slots and the padding slot (TokenKvPool.paddingSlot)
        long rowElements = kvRowElements(model);
        return (int) Math.min(tokens, Integer.MAX_VALUE / rowElements - 1);
    }

    /** Bytes of device memory one KV slot costs ({@link TokenKvPool#bytesPerToken}; attention reads int8 and fp8 pools directly). */
    public static long bytesPerToken(CausalLM model, DType kvDtype) {
        try (TokenKvPool probe = model.newKvPool(1, kvDtype)) {
            return TokenKvPool.bytesPerToken(probe.layers(), probe.kvHeads(), probe.headDim(), kvDtype);
        }
    }

    /**
     * Free memory for the pool. The JVM computes in host memory shared with the OS and other
     * processes: its free physical memory, but at most half of all physical memory. An
     * accelerator: its memory less the weights.
     */
    static long freeBytesAfterWeights(Device device, long weightBytes) {
        if (device.id().equals("jvm")) {
            OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            return Math.min(os.getFreeMemorySize(), os.getTotalMemorySize() / 2);
        }
        return Math.max(0, device.memoryBytes() - weightBytes);
    }

    private static long kvRowElements(CausalLM model) {
        try (TokenKvPool probe = model.newKvPool(1, DType.F32)) {
            return (long) probe.kvHeads() * probe.headDim();
        }
    }
}
