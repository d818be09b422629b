package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Launch arguments laid out as cuLaunchKernel's {@code kernelParams}: an array with one pointer
 * per kernel parameter, each pointing at that argument's value. The value of a buffer
 * parameter is its device pointer (8 bytes); an int, long, float or double is stored with its
 * C size (int, long long, float, double); a boolean is an int 0/1, as the compiler declares
 * it. The driver copies the values during the call, so one instance is reused for every
 * launch of a device (under the device's stream lock).
 */
final class KernelParams {
    private static final long SLOT = 8;

    private final Arena arena = Arena.ofShared();
    private MemorySegment values;
    private MemorySegment pointers;
    private int capacity;

    KernelParams(int capacity) {
        grow(capacity);
    }

    private void grow(int n) {
        capacity = Math.max(n, 1);
        values = arena.allocate(capacity * SLOT, SLOT);
        pointers = arena.allocate(ADDRESS, capacity);
        for (int i = 0; i < capacity; i++) {
            pointers.setAtIndex(ADDRESS, i, values.asSlice(i * SLOT, SLOT));
        }
    }

    /** Stores {@code args} (device buffers as their pointers, boxed scalars) and returns the pointer array. */
    MemorySegment pack(Object[] args) {
        if (args.length > capacity) {
            grow(args.length * 2);
        }
        for (int i = 0; i < args.length; i++) {
            long at = i * SLOT;
            switch (args[i]) {
                case CudaBuffer b -> values.set(JAVA_LONG, at, b.devicePointer());
                case Integer v -> values.set(JAVA_INT, at, v);
                case Long v -> values.set(JAVA_LONG, at, v);
                case Float v -> values.set(JAVA_FLOAT, at, v);
                case Double v -> values.set(JAVA_DOUBLE, at, v);
                case Boolean v -> values.set(JAVA_INT, at, v ? 1 : 0);
                case null, default -> throw new IllegalArgumentException("argument " + i + " cannot be passed to a CUDA kernel: "
                        + (args[i] == null ? "null" : args[i].getClass().getName() + " " + args[i]));
            }
        }
        return pointers;
    }

    /** The value slot of argument {@code i} (tests read back what {@link #pack} stored). */
    MemorySegment slot(int i) {
        return values.asSlice(i * SLOT, SLOT);
    }

    void close() {
        arena.close();
    }
}
