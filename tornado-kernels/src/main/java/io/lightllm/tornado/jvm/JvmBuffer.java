package io.lightllm.tornado.jvm;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A JVM device buffer: host memory, seen by kernels as a NativeArray of its dtype. */
final class JvmBuffer extends DeviceBuffer {
    private final Arena arena;
    final NativeArray array;

    JvmBuffer(JvmDevice device, DType dtype, long elements) {
        super(device, dtype, elements);
        this.arena = Arena.ofShared();
        this.array = NativeArray.wrap(HugePages.allocate(Math.max(1, elements) * dtype.bytes(), arena).asSlice(0, elements * dtype.bytes()), dtype);
    }

    /** Aliases existing memory (weights), which stays owned by its creator. */
    JvmBuffer(JvmDevice device, NativeArray alias) {
        super(device, alias.dtype(), alias.getSize());
        this.arena = null;
        this.array = alias;
    }

    MemorySegment segment() {
        return array.segment();
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }
}
