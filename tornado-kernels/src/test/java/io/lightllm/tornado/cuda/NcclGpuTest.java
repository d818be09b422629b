package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * NCCL on two GPUs against sums and concatenations computed on the host: the all-reduce, the
 * column gather with blocks of unequal width, and an all-reduce recorded in a CUDA graph on each
 * rank and replayed. Needs a machine with at least two GPUs and libnccl (scripts/tp-check.sh).
 */
@Tag("gpu")
class NcclGpuTest {
    private static CudaDevice d0, d1;

    @BeforeAll
    static void twoGpus() {
        Assumptions.assumeTrue(CudaBackend.INSTANCE.unavailableReason().isEmpty(), "CUDA unavailable");
        Assumptions.assumeTrue(CudaBackend.INSTANCE.devices().size() >= 2, "needs two GPUs");
        Assumptions.assumeTrue(NcclGroup.unavailableReason().isEmpty(), () -> "NCCL unavailable: " + NcclGroup.unavailableReason().get());
        d0 = (CudaDevice) Devices.get("cuda:0");
        d1 = (CudaDevice) Devices.get("cuda:1");
    }

    @Test
    void allReduceSumsOverRanks() throws Exception {
        int n = 1000;
        try (NcclGroup group = NcclGroup.create(List.of(d0, d1))) {
            DeviceBuffer a = upload(d0, values(n, 1f)), b = upload(d1, values(n, -0.5f));
            onRanks(r -> group.allReduceSum(r, r == 0 ? a : b, n));
            float[] expected = new float[n];
            for (int i = 0; i < n; i++) {
                expected[i] = value(i, 1f) + value(i, -0.5f);
            }
            assertArrayEquals(expected, download(d0, a, n), 1e-6f);
            assertArrayEquals(expected, download(d1, b, n), 1e-6f);
            a.close();
            b.close();
        }
    }

    @Test
    void gatherJoinsColumnBlocksOnRankZero() throws Exception {
        int rows = 4;
        int[] columns = {3, 5};
        try (NcclGroup group = NcclGroup.create(List.of(d0, d1))) {
            DeviceBuffer l0 = upload(d0, values(rows * 3, 1f)), l1 = upload(d1, values(rows * 5, 100f));
            DeviceBuffer out = d0.allocate(DType.F32, rows * 8);
            onRanks(r -> group.gatherColumns(r, r == 0 ? l0 : l1, rows, columns, r == 0 ? out : null));
            float[] expected = new float[rows * 8];
            for (int row = 0; row < rows; row++) {
                for (int c = 0; c < 8; c++) {
                    expected[row * 8 + c] = c < 3 ? value(row * 3 + c, 1f) : value(row * 5 + c - 3, 100f);
                }
            }
            assertArrayEquals(expected, download(d0, out, rows * 8));
            l0.close();
            l1.close();
            out.close();
        }
    }

    @Test
    void aRecordedAllReduceReplaysOnBothRanks() throws Exception {
        int n = 256;
        try (NcclGroup group = NcclGroup.create(List.of(d0, d1))) {
            DeviceBuffer a = upload(d0, values(n, 1f)), b = upload(d1, values(n, 2f));
            // NCCL connects the ranks on the first operation, outside the recording; that first call
            // blocks until the peer makes it too, so it needs a thread per rank like every other call
            onRanks(r -> group.allReduceSum(r, r == 0 ? a : b, n));
            d0.synchronize();
            d1.synchronize();
            d0.write(MemorySegment.ofArray(values(n, 1f)), a, 0);
            d1.write(MemorySegment.ofArray(values(n, 2f)), b, 0);
            Device.Replay[] graphs = new Device.Replay[2];
            onRanks(r -> graphs[r] = (r == 0 ? d0 : d1).capture(() -> group.allReduceSum(r, r == 0 ? a : b, n)));
            assertNotNull(graphs[0], "capture on cuda:0");
            assertNotNull(graphs[1], "capture on cuda:1");
            float[] once = new float[n];
            for (int i = 0; i < n; i++) {
                once[i] = value(i, 1f) + value(i, 2f);
            }
            assertArrayEquals(values(n, 1f), download(d0, a, n), "capturing runs nothing");
            onRanks(r -> graphs[r].replay());
            assertArrayEquals(once, download(d0, a, n), 1e-5f);
            onRanks(r -> graphs[r].replay());
            float[] twice = new float[n];
            for (int i = 0; i < n; i++) {
                twice[i] = 2 * once[i];
            }
            assertArrayEquals(twice, download(d1, b, n), 1e-5f);
            graphs[0].close();
            graphs[1].close();
            a.close();
            b.close();
        }
    }

    private interface RankWork {
        void run(int rank) throws Exception;
    }

    /** Runs {@code work} for ranks 0 and 1 at the same time, each on its own thread, as a model's ranks do. */
    private static void onRanks(RankWork work) throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
            Future<?> f0 = pool.submit(() -> {
                work.run(0);
                return null;
            });
            Future<?> f1 = pool.submit(() -> {
                work.run(1);
                return null;
            });
            f0.get();
            f1.get();
        }
    }

    private static float value(int i, float scale) {
        return scale * ((i % 37) - 18) / 7f;
    }

    private static float[] values(int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = value(i, scale);
        }
        return v;
    }

    private static DeviceBuffer upload(CudaDevice d, float[] v) {
        DeviceBuffer b = d.allocate(DType.F32, v.length);
        d.write(MemorySegment.ofArray(v), b, 0);
        return b;
    }

    private static float[] download(CudaDevice d, DeviceBuffer b, int n) {
        float[] out = new float[n];
        MemorySegment seg = MemorySegment.ofArray(out);
        d.read(b, 0, seg);
        return seg.toArray(ValueLayout.JAVA_FLOAT);
    }
}
