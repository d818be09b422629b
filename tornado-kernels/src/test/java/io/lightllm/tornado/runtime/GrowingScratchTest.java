package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link GrowingScratch}: reused while it fits, else replaced by a buffer of the asked type and no smaller. */
class GrowingScratchTest {
    @Test
    void reusesWhileItFitsAndGrowsOtherwise() {
        Device device = TestDevices.jvm();
        List<DeviceBuffer> allocated = new ArrayList<>();
        GrowingScratch scratch = new GrowingScratch((dtype, elements) -> {
            DeviceBuffer b = device.allocate(dtype, elements);
            allocated.add(b);
            return b;
        });
        DeviceBuffer first = scratch.atLeast(DType.BF16, 100);
        assertSame(first, scratch.atLeast(DType.BF16, 60), "a smaller request reuses the buffer");
        DeviceBuffer larger = scratch.atLeast(DType.BF16, 300);
        assertNotSame(first, larger);
        assertEquals(300, larger.elements());
        DeviceBuffer otherType = scratch.atLeast(DType.F16, 10);
        assertEquals(DType.F16, otherType.dtype());
        assertEquals(300, otherType.elements(), "a replacement is never smaller than the buffer it replaces");
        assertSame(otherType, scratch.current());
        assertEquals(3, allocated.size());
    }
}
