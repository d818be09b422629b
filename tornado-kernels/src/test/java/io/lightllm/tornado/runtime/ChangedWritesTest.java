package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.jvm.JvmDevice;
import org.junit.jupiter.api.Test;

/**
 * Values go to their buffer again only where they differ from what the buffer last got from here; each buffer is judged
 * apart, a longer or shorter array is a different one, and the caller may reuse its array after the call. (A buffer
 * written behind the writer's back shows which writes were skipped.)
 */
class ChangedWritesTest {
    @Test
    void valuesAreSentAgainOnlyWhenTheyChanged() {
        JvmDevice device = new JvmDevice(1);
        ChangedWrites writes = new ChangedWrites(device);
        DeviceBuffer a = device.allocate(DType.I32, 4), b = device.allocate(DType.I32, 4);
        IntArray values = IntArray.fromArray(new int[] {1, 2, 3});
        writes.write(values, a);
        writes.write(values, b);
        assertArrayEquals(new int[] {1, 2, 3, 0}, read(device, a));
        values.set(0, 9); // the caller's array, reused: the writer kept a copy of what it sent
        overwrite(device, a);
        overwrite(device, b);
        writes.write(IntArray.fromArray(new int[] {1, 2, 3}), a);
        assertArrayEquals(new int[] {-1, -1, -1, -1}, read(device, a), "the same values again: not sent");
        writes.write(IntArray.fromArray(new int[] {1, 2, 4}), b);
        assertArrayEquals(new int[] {1, 2, 4, -1}, read(device, b), "changed: sent");
        writes.write(IntArray.fromArray(new int[] {1, 2}), a);
        assertArrayEquals(new int[] {1, 2, -1, -1}, read(device, a), "shorter: sent");
        writes.write(IntArray.fromArray(new int[] {1, 2, 3}), a);
        assertArrayEquals(new int[] {1, 2, 3, -1}, read(device, a), "longer again: sent");
    }

    private static void overwrite(JvmDevice device, DeviceBuffer buffer) {
        device.write(IntArray.fromArray(new int[] {-1, -1, -1, -1}).segment(), buffer, 0);
    }

    private static int[] read(JvmDevice device, DeviceBuffer buffer) {
        return ((IntArray) device.download(buffer)).toArray();
    }
}
