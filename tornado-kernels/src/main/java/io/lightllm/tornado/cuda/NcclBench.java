package io.lightllm.tornado.cuda;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * What tensor parallelism pays per collective: the time of one f32 all-reduce over every GPU of
 * the machine (or the first N), as tensor-parallel ranks run it (a thread per GPU, NCCL through
 * {@link NcclGroup}), queued one by one and recorded in a CUDA graph, from the 16 KiB of a
 * batch-1 step of an 8B model to 256 MiB. Bus bandwidth is NCCL's: bytes x 2(n-1)/n per second.
 * Prints a line per size and a JSON line.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp '.gpu/lib/*' io.lightllm.tornado.cuda.NcclBench [N]</pre>
 */
public final class NcclBench {
    private static final long[] BYTES = {4L << 10, 16L << 10, 64L << 10, 1L << 20, 16L << 20, 256L << 20};
    /** All-reduces per recorded graph. */
    private static final int PER_GRAPH = 64;

    private NcclBench() {
    }

    public static void main(String[] args) throws Exception {
        Locale.setDefault(Locale.ROOT);
        int n = args.length > 0 ? Integer.parseInt(args[0]) : CudaBackend.INSTANCE.devices().size();
        if (n < 2 || n > CudaBackend.INSTANCE.devices().size()) {
            System.out.println("needs at least two GPUs; this machine has " + CudaBackend.INSTANCE.devices().size());
            System.exit(2);
        }
        List<CudaDevice> gpus = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            gpus.add((CudaDevice) Devices.get("cuda:" + r));
        }
        List<String> json = new ArrayList<>();
        try (NcclGroup group = NcclGroup.create(gpus); ExecutorService ranks = Executors.newFixedThreadPool(n)) {
            System.out.println("nccl " + NcclGroup.version() + ", " + n + " x " + gpus.getFirst().name());
            System.out.println("bytes        eager us   graph us   graph bus GB/s");
            for (long bytes : BYTES) {
                long elements = bytes / Float.BYTES;
                DeviceBuffer[] buffers = new DeviceBuffer[n];
                for (int r = 0; r < n; r++) {
                    buffers[r] = gpus.get(r).allocate(DType.F32, elements);
                }
                int iters = bytes <= (1 << 20) ? 2000 : bytes <= (16 << 20) ? 200 : 20;
                onRanks(ranks, n, r -> repeat(group, r, buffers[r], elements, 20, gpus.get(r))); // connects, warms up
                double eager = seconds(() -> onRanks(ranks, n, r -> repeat(group, r, buffers[r], elements, iters, gpus.get(r)))) / iters;
                Device.Replay[] graphs = new Device.Replay[n];
                onRanks(ranks, n, r -> {
                    graphs[r] = gpus.get(r).capture(() -> {
                        for (int i = 0; i < PER_GRAPH; i++) {
                            group.allReduceSum(r, buffers[r], elements);
                        }
                    });
                    return null;
                });
                int replays = Math.max(1, iters / PER_GRAPH);
                double graph = seconds(() -> onRanks(ranks, n, r -> {
                    for (int i = 0; i < replays; i++) {
                        graphs[r].replay();
                    }
                    gpus.get(r).synchronize();
                    return null;
                })) / (replays * PER_GRAPH);
                double bus = bytes * 2.0 * (n - 1) / n / graph / 1e9;
                System.out.printf("%-12d %8.1f   %8.1f   %8.1f%n", bytes, eager * 1e6, graph * 1e6, bus);
                json.add(String.format("{\"bytes\":%d,\"eager_us\":%.2f,\"graph_us\":%.2f,\"bus_gbps\":%.1f}", bytes, eager * 1e6, graph * 1e6, bus));
                for (int r = 0; r < n; r++) {
                    graphs[r].close();
                    buffers[r].close();
                }
            }
        }
        System.out.println("{\"ranks\":" + n + ",\"allreduce\":[" + String.join(",", json) + "]}");
    }

    private interface RankWork {
        Object run(int rank) throws Exception;
    }

    private static Object repeat(NcclGroup group, int rank, DeviceBuffer buffer, long elements, int times, CudaDevice gpu) {
        for (int i = 0; i < times; i++) {
            group.allReduceSum(rank, buffer, elements);
        }
        gpu.synchronize();
        return null;
    }

    /** Runs {@code work} on every rank at once, a thread each (the first operation blocks until all ranks make it). */
    private static void onRanks(ExecutorService pool, int n, RankWork work) throws Exception {
        List<Future<Object>> all = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            int rank = r;
            Callable<Object> c = () -> work.run(rank);
            all.add(pool.submit(c));
        }
        for (Future<Object> f : all) {
            f.get();
        }
    }

    private interface Timed {
        void run() throws Exception;
    }

    private static double seconds(Timed t) throws Exception {
        long start = System.nanoTime();
        t.run();
        return (System.nanoTime() - start) / 1e9;
    }
}
