package io.lightllm.tornado.opencl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class OpenCLBufferTest {

    /** Distinct bytes, so a wrong offset or a short copy shows up as a mismatch. */
    private static NativeArray pattern(DType dtype, int elements, int seed) {
        NativeArray a = NativeArray.allocate(dtype, elements);
        for (long i = 0; i < a.byteSize(); i++) {
            a.segment().set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + seed));
        }
        return a;
    }

    private static byte[] bytes(NativeArray a) {
        return a.segment().toArray(ValueLayout.JAVA_BYTE);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "I8", "I32"})
    void writeReadAndCopyRoundTrip(DType dtype) {
        Device dev = TestDevices.opencl();
        int n = 1003;
        NativeArray host = pattern(dtype, n, 7);
        try (DeviceBuffer a = dev.allocate(dtype, n); DeviceBuffer b = dev.allocate(dtype, n)) {
            assertEquals(n * (long) dtype.bytes(), a.byteSize());
            dev.copyIn(host, a);
            assertArrayEquals(bytes(host), bytes(dev.download(a)), dtype + " write/read");

            dev.copy(a, 0, b, 0, a.byteSize());
            assertArrayEquals(bytes(host), bytes(dev.download(b)), dtype + " device copy");

            // partial transfers at element offsets: elements [10, 110) of a go to [500, 600) of b
            long e = dtype.bytes();
            dev.copy(a, 10 * e, b, 500 * e, 100 * e);
            NativeArray expected = NativeArray.allocate(dtype, n);
            expected.copyFrom(host);
            expected.segment().asSlice(500 * e, 100 * e).copyFrom(host.segment().asSlice(10 * e, 100 * e));
            assertArrayEquals(bytes(expected), bytes(dev.download(b)), dtype + " offset copy");

            NativeArray patch = pattern(dtype, 5, 99);
            dev.write(patch.segment(), a, 3 * e);
            NativeArray readBack = NativeArray.allocate(dtype, 5);
            dev.read(a, 3 * e, readBack.segment());
            assertArrayEquals(bytes(patch), bytes(readBack), dtype + " offset write/read");
        }
    }

    @Test
    void heapSegmentsAreStagedThroughNativeMemory() {
        Device dev = TestDevices.opencl();
        float[] values = {1f, -2.5f, 3.25f, 1e-30f, Float.MAX_VALUE};
        try (DeviceBuffer buf = dev.allocate(DType.F32, values.length)) {
            dev.write(MemorySegment.ofArray(values), buf, 0);
            float[] back = new float[values.length];
            dev.read(buf, 0, MemorySegment.ofArray(back));
            assertArrayEquals(values, back);
        }
    }

    @Test
    void zeroLengthBuffersWork() {
        Device dev = TestDevices.opencl();
        try (DeviceBuffer empty = dev.allocate(DType.F32, 0); DeviceBuffer other = dev.allocate(DType.F32, 0)) {
            assertEquals(0, empty.byteSize());
            dev.copyIn(FloatArray.allocate(0), empty);
            dev.copy(empty, 0, other, 0, 0);
            assertEquals(0, dev.download(empty).getSize());
        }
    }

    @Test
    void zeroClearsEveryByte() {
        OpenCLDevice dev = (OpenCLDevice) TestDevices.opencl();
        NativeArray host = pattern(DType.I8, 777, 3);
        try (DeviceBuffer buf = dev.upload(host)) {
            dev.zero(buf);
            assertArrayEquals(new byte[777], bytes(dev.download(buf)));
        }
    }

    @Test
    void outOfRangeTransfersAndForeignBuffersAreRejected() {
        Device dev = TestDevices.opencl();
        try (DeviceBuffer buf = dev.allocate(DType.F32, 4)) {
            IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class,
                    () -> dev.write(FloatArray.allocate(5).segment(), buf, 0));
            assertTrue(tooLong.getMessage().contains("20 bytes at offset 0 is outside"), tooLong.getMessage());
            assertThrows(IllegalArgumentException.class, () -> dev.read(buf, 8, FloatArray.allocate(3).segment()));
            assertThrows(IllegalArgumentException.class, () -> dev.copy(buf, -4, buf, 0, 4));
            try (DeviceBuffer jvm = TestDevices.jvm().allocate(DType.F32, 4)) {
                IllegalArgumentException foreign = assertThrows(IllegalArgumentException.class, () -> dev.copy(jvm, 0, buf, 0, 16));
                assertTrue(foreign.getMessage().contains("belongs to jvm"), foreign.getMessage());
            }
        }
    }

    @Test
    void closedBuffersFailClearlyAndCloseTwiceIsHarmless() {
        Device dev = TestDevices.opencl();
        DeviceBuffer buf = dev.allocate(DType.I32, 8);
        buf.close();
        buf.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> dev.download(buf));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
