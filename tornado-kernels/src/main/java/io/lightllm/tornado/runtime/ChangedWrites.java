package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.NativeArray;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Host-to-device writes of per-step values, each made only where the values differ from what the buffer last got from
 * here. Consecutive decode steps of the same requests change their token ids, positions, slots and lengths, not their
 * rows, starts and counts, nor the requests' sampling parameters: on a GPU each write is a copy issued while the GPU waits
 * for the step (the host has just read the last step's tokens back), so sending only what changed halves a decode step's
 * uploads. Only for buffers that nothing else writes (kernels read them).
 */
public final class ChangedWrites {
    private final Device device;
    private final Map<DeviceBuffer, byte[]> sent = new IdentityHashMap<>();

    public ChangedWrites(Device device) {
        this.device = device;
    }

    /** Writes all of {@code src} at the start of {@code dst} unless it is what {@code dst} last got from here. */
    public void write(MemorySegment src, DeviceBuffer dst) {
        if (src.byteSize() == 0) {
            return;
        }
        byte[] last = sent.get(dst);
        if (last != null && MemorySegment.ofArray(last).mismatch(src) == -1) { // -1: the same length and bytes
            return;
        }
        device.write(src, dst, 0);
        sent.put(dst, src.toArray(ValueLayout.JAVA_BYTE));
    }

    public void write(NativeArray src, DeviceBuffer dst) {
        write(src.segment(), dst);
    }
}
