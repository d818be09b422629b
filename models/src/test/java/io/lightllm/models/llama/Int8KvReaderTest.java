package io.lightllm.models.llama;

import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Reading the requests' tokens of an int8 pool into an f32 pool: against a host loop written
 * from the definition (q * scale at the same slot, untouched elsewhere), on the JVM and on
 * every accelerator.
 */
class Int8KvReaderTest {
    private static final int SLOTS = 23, HEADS = 3, HEAD_DIM = 10, ROW = HEADS * HEAD_DIM, MAX_LEN = 9;
    /** Table rows 0..3; requests use rows 2, 0, 3 (row 1 holds slots no request reads); row 3 shares slots with row 0 (n > 1). */
    private static final int[] TABLE = {
        4, 9, 1, 22, 15, 0, 0, 0, 0,
        5, 6, 7, 8, 10, 11, 12, 13, 14,
        2, 3, 0, 0, 0, 0, 0, 0, 0,
        4, 9, 1, 16, 0, 0, 0, 0, 0};
    private static final int[] ROWS = {2, 0, 3};
    private static final int[] SEQ_LENS = {2, 5, 4};

    static Stream<String> devices() {
        return Stream.concat(Stream.of("jvm"), TestDevices.accelerators().stream());
    }

    @ParameterizedTest
    @MethodSource("devices")
    void dequantisesExactlyTheRequestsTokens(String id) {
        Device device = Devices.get(id);
        Random random = new Random(5);
        ByteArray pool = ByteArray.allocate(SLOTS * ROW);
        for (int i = 0; i < pool.getSize(); i++) {
            pool.set(i, (byte) (random.nextInt(255) - 127));
        }
        FloatArray scales = fill(FloatArray.allocate(SLOTS * HEADS), 0.05f, 6);
        FloatArray initial = fill(FloatArray.allocate(SLOTS * ROW), 9f, 7);
        FloatArray expected = FloatArray.allocate(SLOTS * ROW);
        expected.copyFrom(initial);
        for (int r = 0; r < ROWS.length; r++) {
            for (int i = 0; i < SEQ_LENS[r]; i++) {
                int slot = TABLE[ROWS[r] * MAX_LEN + i];
                for (int j = 0; j < ROW; j++) {
                    expected.set(slot * ROW + j, pool.get(slot * ROW + j) * scales.get(slot * HEADS + j / HEAD_DIM));
                }
            }
        }
        DeviceBuffer out = copyOf(device, initial);
        Int8KvReader.launchDequantizeRequests(device, out, copyOf(device, pool), copyOf(device, scales), copyOf(device, IntArray.fromArray(TABLE)),
                copyOf(device, IntArray.fromArray(ROWS)), copyOf(device, IntArray.fromArray(SEQ_LENS)), ROWS.length, 5, MAX_LEN, HEADS, HEAD_DIM);
        // one f32 product of an exact int8 value and a scale on every backend: bit-exact
        assertClose(expected, device.download(out), 0f, 0f, "dequantised pool on " + id);
    }

    private static DeviceBuffer copyOf(Device device, NativeArray host) {
        DeviceBuffer b = device.allocate(host.dtype(), host.getSize());
        device.copyIn(host, b);
        return b;
    }
}
