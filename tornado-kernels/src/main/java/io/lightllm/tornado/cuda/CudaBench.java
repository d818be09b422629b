package io.lightllm.tornado.cuda;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.runtime.Grid;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Numbers for one GPU: device-to-device copy bandwidth, kernel launch overhead with and without
 * a CUDA graph, and cuBLAS bf16 GEMM throughput at square and decode shapes. Prints one line
 * per measurement and then one JSON line with all of them.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp '.gpu/lib/*' io.lightllm.tornado.cuda.CudaBench [cuda:N]</pre>
 */
public final class CudaBench {
    private static final int LAUNCHES = 10_000;
    private static final int GRAPH_SIZE = 100;

    private final CudaDevice gpu;
    private final List<String> json = new ArrayList<>();

    private CudaBench(CudaDevice gpu) {
        this.gpu = gpu;
    }

    public static void main(String[] args) {
        Locale.setDefault(Locale.ROOT);
        String id = args.length > 0 ? args[0] : "cuda:0";
        CudaDevice gpu;
        try {
            gpu = (CudaDevice) Devices.get(id);
        } catch (RuntimeException e) {
            System.out.println("cannot open " + id + ": " + e.getMessage());
            System.exit(2);
            return;
        }
        System.out.println("device " + gpu + ", compute capability " + gpu.computeCapability() + ", " + gpu.computeUnits() + " SMs");
        CudaBench b = new CudaBench(gpu);
        b.json.add("\"device\":\"" + gpu.name().replace("\"", "'") + "\"");
        b.copyBandwidth();
        b.launchOverhead();
        b.gemms();
        System.out.println("{" + String.join(",", b.json) + "}");
    }

    private void copyBandwidth() {
        long bytes = 1L << 30;
        DeviceBuffer src = gpu.allocate(DType.I8, bytes);
        DeviceBuffer dst = gpu.allocate(DType.I8, bytes);
        int iters = 20;
        gpu.elapsedMillis(() -> {
            for (int i = 0; i < 3; i++) {
                gpu.copy(src, 0, dst, 0, bytes);
            }
        });
        double ms = gpu.elapsedMillis(() -> {
            for (int i = 0; i < iters; i++) {
                gpu.copy(src, 0, dst, 0, bytes);
            }
        });
        double gbps = bytes * (double) iters / (ms * 1e6);
        System.out.printf("device-to-device copy of 1 GiB: %.1f GB/s copied (%.1f GB/s of memory traffic, read + write)%n", gbps, 2 * gbps);
        json.add(String.format("\"dtod_copy_gbps\":%.1f", gbps));
        src.close();
        dst.close();
    }

    private void launchOverhead() {
        for (int i = 0; i < 100; i++) {
            gpu.launch(DiagnosticKernels.EMPTY, Grid.of(1));
        }
        gpu.synchronize();
        long t0 = System.nanoTime();
        for (int i = 0; i < LAUNCHES; i++) {
            gpu.launch(DiagnosticKernels.EMPTY, Grid.of(1));
        }
        gpu.synchronize();
        double direct = (System.nanoTime() - t0) / 1e3 / LAUNCHES;
        double graphed;
        try (CudaGraph g = gpu.capture(() -> {
            for (int i = 0; i < GRAPH_SIZE; i++) {
                gpu.launch(DiagnosticKernels.EMPTY, Grid.of(1));
            }
        })) {
            g.replay();
            gpu.synchronize();
            long t1 = System.nanoTime();
            for (int i = 0; i < LAUNCHES / GRAPH_SIZE; i++) {
                g.replay();
            }
            gpu.synchronize();
            graphed = (System.nanoTime() - t1) / 1e3 / LAUNCHES;
        }
        System.out.printf("empty kernel: %.2f us per launch (%d launches), %.2f us per kernel replayed from a graph of %d%n", direct,
                LAUNCHES, graphed, GRAPH_SIZE);
        json.add(String.format("\"launch_us\":%.3f,\"graph_launch_us\":%.3f", direct, graphed));
    }

    private void gemms() {
        List<String> rows = new ArrayList<>();
        for (int s : new int[] {4096, 8192}) {
            rows.add(gemm(s, s, s, DType.BF16, 10));
        }
        for (int m : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            rows.add(gemm(m, 4096, 4096, DType.F32, 100));
        }
        json.add("\"gemm\":[" + String.join(",", rows) + "]");
    }

    /** One shape: bf16 weights, activations of {@code aType} (F32 includes the cast to bf16), f32 output. */
    private String gemm(int m, int n, int k, DType aType, int iters) {
        DeviceBuffer a = gpu.upload(random(aType, (long) m * k, 1));
        DeviceBuffer w = gpu.upload(random(DType.BF16, (long) n * k, 2));
        DeviceBuffer out = gpu.allocate(DType.F32, (long) m * n);
        gpu.elapsedMillis(() -> {
            for (int i = 0; i < 3; i++) {
                CudaBlas.gemm(gpu, a, w, out, m, n, k);
            }
        });
        double ms = gpu.elapsedMillis(() -> {
            for (int i = 0; i < iters; i++) {
                CudaBlas.gemm(gpu, a, w, out, m, n, k);
            }
        }) / iters;
        double tflops = 2.0 * m * n * k / (ms * 1e9);
        double weightGbps = 2.0 * n * k / (ms * 1e6);
        System.out.printf("cuBLAS %s x bf16 -> f32, m=%d n=%d k=%d: %.1f us, %.1f TFLOP/s, weights streamed at %.0f GB/s%n",
                aType == DType.F32 ? "f32 (cast to bf16)" : "bf16", m, n, k, ms * 1e3, tflops, weightGbps);
        a.close();
        w.close();
        out.close();
        return String.format("{\"m\":%d,\"n\":%d,\"k\":%d,\"a\":\"%s\",\"us\":%.2f,\"tflops\":%.2f,\"weight_gbps\":%.1f}", m, n, k,
                aType.name().toLowerCase(Locale.ROOT), ms * 1e3, tflops, weightGbps);
    }

    private static NativeArray random(DType t, long n, long seed) {
        NativeArray a = NativeArray.allocate(t, n);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < a.getSize(); i++) {
            a.setFloat(i, (float) (r.nextDouble() * 2 - 1));
        }
        return a;
    }
}
