package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** A name's buffer is kept while its arrays fit, grows (at least doubling) when one does not, and holds each array from its start. */
class StepArraysTest {
    @Test
    void aBufferIsKeptWhileArraysFitAndGrowsWhenNot() {
        JvmDevice device = new JvmDevice(1);
        try (StepArrays arrays = new StepArrays(device)) {
            DeviceBuffer first = arrays.put("index", IntArray.fromArray(new int[] {4, 5, 6}));
            DeviceBuffer shorter = arrays.put("index", IntArray.fromArray(new int[] {7, 8}));
            assertSame(first, shorter, "a shorter array reuses the buffer");
            assertArrayEquals(new int[] {7, 8, 6}, ((IntArray) device.download(shorter)).toArray(), "written from the start");
            DeviceBuffer longer = arrays.put("index", IntArray.fromArray(new int[] {1, 2, 3, 4}));
            assertNotSame(first, longer);
            assertEquals(6, longer.elements(), "grown to twice the old length");
            assertArrayEquals(new int[] {1, 2, 3, 4}, Arrays.copyOf(((IntArray) device.download(longer)).toArray(), 4));
            DeviceBuffer other = arrays.put("bias", FloatArray.fromArray(new float[] {0.5f}));
            assertNotSame(longer, other, "each name its own buffer");
            assertEquals(0.5f, ((FloatArray) device.download(other)).get(0));
            assertEquals(1, arrays.put("empty", IntArray.fromArray(new int[0])).elements(), "an empty array gets a buffer of one");
        }
    }
}
