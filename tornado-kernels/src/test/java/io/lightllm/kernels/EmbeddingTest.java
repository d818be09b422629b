package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class EmbeddingTest {
    private static final int VOCAB = 37;
    private static final int DIM = 13;

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void gatherCopiesTheRowsOfEachTableType(String id) {
        Device dev = device(id);
        IntArray ids = IntArray.fromArray(5, 0, 36, 5, 17, 2, 36);
        for (NativeArray table : new NativeArray[] {fill(FloatArray.allocate(VOCAB * DIM), 1f, 3), fill(HalfArray.allocate(VOCAB * DIM), 1f, 3),
            fill(BFloat16Array.allocate(VOCAB * DIM), 1f, 3)}) {
            FloatArray expected = FloatArray.allocate(ids.getSize() * DIM);
            for (int t = 0; t < ids.getSize(); t++) {
                for (int d = 0; d < DIM; d++) {
                    expected.set(t * DIM + d, table.getFloat(ids.get(t) * DIM + d));
                }
            }
            FloatArray launched = gather(dev, null, table, ids);
            // a copy, widened exactly to f32: no tolerance
            assertClose(expected, launched, 0f, 0f, "gather from " + table.dtype());
            // a parallel kernel must be right for any grid: smaller and larger than the work
            assertClose(expected, gather(dev, Grid.of(3, 4), table, ids), 0f, 0f, "gather, small grid");
            assertClose(expected, gather(dev, Grid.of(64, 64), table, ids), 0f, 0f, "gather, large grid");
            if (!isJvm(dev)) {
                assertClose(gather(TestDevices.jvm(), null, table, ids), launched, 0f, 0f, "gather " + id + " vs jvm");
            }
        }
    }

    @Test
    void idsOutsideTheTableGiveNaNRows() {
        FloatArray out = gather(TestDevices.jvm(), null, fill(FloatArray.allocate(VOCAB * DIM), 1f, 3), IntArray.fromArray(1, VOCAB, -1));
        for (int d = 0; d < DIM; d++) {
            assertTrue(!Float.isNaN(out.get(d)));
            assertTrue(Float.isNaN(out.get(DIM + d)) && Float.isNaN(out.get(2 * DIM + d)));
        }
    }

    @Test
    void launcherRefusesATableThatIsNotWholeRows() {
        Device dev = TestDevices.jvm();
        DeviceBuffer table = dev.allocate(DType.F32, 10), ids = dev.allocate(DType.I32, 1), out = dev.allocate(DType.F32, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Embedding.launchGather(dev, out, table, ids, 1, 4));
        assertEquals("embedding table of 10 elements is not a whole number of rows of 4", e.getMessage());
    }

    @Test
    void compilesToCuda() {
        for (DType table : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            assertCompilesToCuda(Embedding.GATHER, DType.F32, table, DType.I32, null, null, null);
        }
    }

    private static FloatArray gather(Device dev, Grid grid, NativeArray table, IntArray ids) {
        int tokens = ids.getSize();
        DeviceBuffer out = dev.allocate(DType.F32, (long) tokens * DIM), tb = copyOf(dev, table), ib = copyOf(dev, ids);
        if (grid == null) {
            Embedding.launchGather(dev, out, tb, ib, tokens, DIM);
        } else {
            dev.launch(Embedding.GATHER, grid, out, tb, ib, tokens, DIM, table.getSize() / DIM);
        }
        return (FloatArray) dev.download(out);
    }
}
