package io.lightllm.kernels;

import io.lightllm.tornado.runtime.DeviceBuffer;

/** Launcher-side argument checks, so a wrong shape fails on the host with a clear message instead of corrupting memory. */
final class Shapes {
    private Shapes() {
    }

    static void positive(long value, String name) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }

    static void atLeast(DeviceBuffer buffer, long elements, String name) {
        if (buffer.elements() < elements) {
            throw new IllegalArgumentException(name + " holds " + buffer.elements() + " elements, needs " + elements);
        }
    }

    /** Kernels index arrays with int: a tensor must stay under 2^31 elements. */
    static int intIndexable(long elements, String name) {
        if (elements > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " has " + elements + " elements; kernels index with int (max 2^31 - 1)");
        }
        return (int) elements;
    }

    /** Explicit kernels with tree reductions need a power-of-two work-group no larger than their local arrays. */
    static void localSize(long local, int capacity, String kernel) {
        if (local < 1 || local > capacity || (local & (local - 1)) != 0) {
            throw new IllegalArgumentException(kernel + " needs a power-of-two local size from 1 to " + capacity + ", got " + local);
        }
    }
}
