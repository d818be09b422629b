package io.lightllm.kernels;

import io.lightllm.kernels.jvm.JvmOverrides;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * Entry point of the kernel library for code that sets up a device: installs the backend's
 * faster implementations of portable kernels (overrides), and holds the launchers' argument
 * checks.
 */
public final class KernelLibrary {
    private KernelLibrary() {
    }

    /**
     * Registers this backend's overrides on {@code device}: the Vector API matmuls on the JVM.
     * Other backends run the portable kernels for now.
     */
    public static void installOverrides(Device device) {
        if (device instanceof JvmDevice jvm) {
            JvmOverrides.install(jvm);
        }
    }

    // ---- launcher argument checks: a wrong shape fails on the host, not as a memory fault ----

    static void requirePositive(long value, String name) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }

    static void requireElements(DeviceBuffer buffer, long elements, String name) {
        if (buffer.elements() < elements) {
            throw new IllegalArgumentException(name + " holds " + buffer.elements() + " elements, needs " + elements);
        }
    }

    /** Kernels index arrays with int: a tensor must stay under 2^31 elements. */
    static void requireIntIndexable(long elements, String name) {
        if (elements > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " has " + elements + " elements; kernels index with int (max 2^31 - 1)");
        }
    }

    /** Explicit kernels with tree reductions need a power-of-two work-group no larger than their local arrays. */
    static void requireLocalSize(long local, int capacity, String kernel) {
        if (local < 1 || local > capacity || (local & (local - 1)) != 0) {
            throw new IllegalArgumentException(kernel + " needs a power-of-two local size from 1 to " + capacity + ", got " + local);
        }
    }
}
