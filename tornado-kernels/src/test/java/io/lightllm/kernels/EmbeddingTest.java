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

    /**
     * Tensor parallelism: three parts of the table (rows 0-11, 12-29, 30-36), each looked up
     * alone, sum to the whole lookup exactly (each id is in one part, the others give 0), and an
     * id outside the vocabulary is NaN in every part.
     */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void partsOfTheTableSumToTheWholeLookup(String id) {
        Device dev = device(id);
        NativeArray table = fill(BFloat16Array.allocate(VOCAB * DIM), 1f, 7);
        IntArray ids = IntArray.fromArray(5, 0, 36, 12, 29, 30, 11);
        FloatArray whole = gather(dev, null, table, ids);
        FloatArray sum = FloatArray.allocate(ids.getSize() * DIM);
        int[] starts = {0, 12, 30, VOCAB};
        for (int p = 0; p < 3; p++) {
            long rowBytes = (long) DIM * table.dtype().bytes();
            NativeArray part = NativeArray.wrap(table.segment().asSlice(starts[p] * rowBytes, (starts[p + 1] - starts[p]) * rowBytes), table.dtype());
            DeviceBuffer out = dev.allocate(DType.F32, (long) ids.getSize() * DIM);
            Embedding.launchGather(dev, out, copyOf(dev, part), copyOf(dev, ids), ids.getSize(), DIM, VOCAB, starts[p]);
            FloatArray got = (FloatArray) dev.download(out);
            for (int i = 0; i < sum.getSize(); i++) {
                sum.set(i, sum.get(i) + got.get(i));
            }
        }
        assertClose(whole, sum, 0f, 0f, "sum of the parts on " + id);
        DeviceBuffer out = dev.allocate(DType.F32, DIM);
        NativeArray part = NativeArray.wrap(table.segment().asSlice(0, 12L * DIM * table.dtype().bytes()), table.dtype());
        Embedding.launchGather(dev, out, copyOf(dev, part), copyOf(dev, IntArray.fromArray(VOCAB)), 1, DIM, VOCAB, 0);
        assertTrue(Float.isNaN(((FloatArray) dev.download(out)).get(0)), "an id past the vocabulary is NaN in a part that does not hold it");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Embedding.launchGather(dev, out, copyOf(dev, part), copyOf(dev, ids), 1, DIM, VOCAB, 30));
        assertEquals("table rows [30, 42) are outside a vocabulary of 37", e.getMessage());
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
            assertCompilesToCuda(Embedding.GATHER, DType.F32, table, DType.I32, null, null, null, null, null);
        }
    }

    private static FloatArray gather(Device dev, Grid grid, NativeArray table, IntArray ids) {
        int tokens = ids.getSize();
        DeviceBuffer out = dev.allocate(DType.F32, (long) tokens * DIM), tb = copyOf(dev, table), ib = copyOf(dev, ids);
        if (grid == null) {
            Embedding.launchGather(dev, out, tb, ib, tokens, DIM);
        } else {
            dev.launch(Embedding.GATHER, grid, out, tb, ib, tokens, DIM, table.getSize() / DIM, 0, table.getSize() / DIM);
        }
        return (FloatArray) dev.download(out);
    }
}
