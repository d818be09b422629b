package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelTiming;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

/**
 * Checks the CUDA backend on a real GPU against the JVM reference, one PASS/FAIL line per part
 * (transfers, generated kernels, conversions, profiling, threads, graphs, cuBLAS). Exits 1 when
 * anything fails, 2 when there is no usable GPU.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp '.gpu/lib/*' io.lightllm.tornado.cuda.CudaSelfTest [cuda:N]</pre>
 */
public final class CudaSelfTest {
    private final Device jvm = Devices.get("jvm");
    private final CudaDevice gpu;
    private final PrintStream out;
    private int passed;
    private int failed;

    private CudaSelfTest(CudaDevice gpu, PrintStream out) {
        this.gpu = gpu;
        this.out = out;
    }

    /** Runs every check on {@code gpu}, printing a line per check to {@code out}; returns how many failed. */
    public static int run(CudaDevice gpu, PrintStream out) {
        out.println("device " + gpu + ", compute capability " + gpu.computeCapability() + ", NVRTC options " + gpu.compileOptions()
                + ", PTX cache " + PtxCache.standard().directory() + ", cuBLAS " + CudaBlas.unavailableReason().orElse("available"));
        CudaSelfTest t = new CudaSelfTest(gpu, out);
        t.runAll();
        out.println(t.passed + " passed, " + t.failed + " failed");
        return t.failed;
    }

    public static void main(String[] args) {
        String id = args.length > 0 ? args[0] : "cuda:0";
        for (Backend b : Devices.backends()) {
            System.out.println("backend " + b.name() + ": " + b.unavailableReason().map(r -> "unavailable: " + r).orElse("available"));
        }
        for (DeviceInfo d : Devices.list()) {
            System.out.println("  " + d);
        }
        CudaDevice gpu;
        try {
            gpu = (CudaDevice) Devices.get(id);
        } catch (RuntimeException e) {
            System.out.println("FAIL open " + id + ": " + e.getMessage());
            System.exit(2);
            return;
        }
        System.exit(run(gpu, System.out) == 0 ? 0 : 1);
    }

    private void runAll() {
        check("transfers (zero fill, sizes 0..multi-chunk, offsets, device copy)", this::transfers);
        check("small writes back to back, a large one among them (staging shared by small copies where on)", this::smallWrites);
        check("saxpy (@Parallel 1D, grid rounded up and smaller than the data)", this::saxpy);
        check("scaleRows (@Parallel 2D)", this::scaleRows);
        check("rowSum (KernelContext, local memory, barriers)", this::rowSum);
        check("f16/bf16 widening (all 65536 bit patterns, dtype-specialised kernel)", this::widening);
        check("f16/bf16 narrowing (cast kernel vs Java rounding)", this::narrowing);
        check("profiling (events)", this::profiling);
        check("launch from another thread", this::otherThread);
        check("CUDA graph capture and replay", this::graph);
        check("cuBLAS GEMM vs double-precision reference", this::gemm);
        check("cuBLAS override vs the portable Java matmul, and a GEMM in a graph", this::gemmOverrideAndGraph);
        check("PTX disk cache", this::ptxCache);
    }

    private interface Body {
        String run() throws Exception;
    }

    private void check(String name, Body body) {
        long t0 = System.nanoTime();
        try {
            String detail = body.run();
            passed++;
            out.printf("PASS %s (%.0f ms)%s%n", name, (System.nanoTime() - t0) / 1e6, detail == null ? "" : ": " + detail);
        } catch (Throwable e) {
            failed++;
            out.println("FAIL " + name + ": " + e);
            e.printStackTrace(out);
        }
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    private static FloatArray random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        FloatArray a = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            a.set(i, (float) (r.nextDouble() * 2 - 1));
        }
        return a;
    }

    /** Small integers as floats: sums of them are exact in any order, so backends must agree bit for bit. */
    private static FloatArray smallIntegers(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        FloatArray a = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            a.set(i, r.nextInt(-8, 9));
        }
        return a;
    }

    private static void requireBitsEqual(NativeArray expected, NativeArray actual, String what) {
        require(expected.getSize() == actual.getSize(), what + ": sizes differ");
        for (int i = 0; i < expected.getSize(); i++) {
            float e = expected.getFloat(i);
            float a = actual.getFloat(i);
            boolean same = Float.isNaN(e) ? Float.isNaN(a) : Float.floatToRawIntBits(e) == Float.floatToRawIntBits(a);
            require(same, what + ": element " + i + " is " + a + ", expected " + e);
        }
    }

    private String transfers() {
        for (int n : new int[] {0, 1, 3, 1000, 5_000_003}) {
            FloatArray host = random(n, n);
            DeviceBuffer b = gpu.allocate(DType.F32, n);
            requireBitsEqual(FloatArray.allocate(n), gpu.download(b), "fresh buffer of " + n + " is zero");
            gpu.copyIn(host, b);
            requireBitsEqual(host, gpu.download(b), "round trip of " + n + " floats");
            if (n > 10) {
                FloatArray part = FloatArray.fromArray(7f, 8f, 9f);
                gpu.write(part.segment(), b, 4L * 5);
                host.set(5, 7f);
                host.set(6, 8f);
                host.set(7, 9f);
                DeviceBuffer c = gpu.allocate(DType.F32, n);
                gpu.copy(b, 0, c, 0, b.byteSize());
                requireBitsEqual(host, gpu.download(c), "offset write then device copy of " + n + " floats");
                FloatArray tail = FloatArray.allocate(3);
                gpu.read(c, 4L * 5, tail.segment());
                requireBitsEqual(FloatArray.fromArray(7f, 8f, 9f), tail, "offset read");
                c.close();
            }
            b.close();
        }
        return "largest " + 5_000_003 * 4L + " bytes (" + (5_000_003 * 4L / PinnedStaging.CHUNK_BYTES + 1) + " staging chunks)";
    }

    /**
     * Many small writes with no read between them (a decode step's uploads), more bytes in all than a staging chunk holds so
     * that shared copies wrap to the other chunk, a multi-chunk write among them, and each host array overwritten as soon as
     * its write returns (a write must have taken its data by then): every buffer then reads back what was written into it.
     */
    private String smallWrites() {
        int buffers = 400, floats = 16 << 10; // 64 KB each: 25 MB of small copies in all
        List<DeviceBuffer> written = new java.util.ArrayList<>();
        FloatArray host = FloatArray.allocate(floats);
        for (int i = 0; i < buffers; i++) {
            int n = i % 3 == 0 ? floats : 1 + i % 97; // whole 64 KB copies and odd small ones
            DeviceBuffer b = gpu.allocate(DType.F32, n);
            for (int j = 0; j < n; j++) {
                host.set(j, i * 100_000f + j);
            }
            gpu.write(host.segment().asSlice(0, 4L * n), b, 0);
            host.set(0, -1f); // reused at once
            written.add(b);
            if (i == buffers / 2) {
                FloatArray large = random(5_000_003, 9);
                DeviceBuffer l = gpu.allocate(DType.F32, large.getSize());
                gpu.copyIn(large, l);
                requireBitsEqual(large, gpu.download(l), "the large write among the small ones");
                l.close();
            }
        }
        for (int i = 0; i < buffers; i++) {
            NativeArray back = gpu.download(written.get(i));
            for (int j = 0; j < back.getSize(); j++) {
                require(((FloatArray) back).get(j) == i * 100_000f + j, "small write " + i + ", element " + j + " is " + ((FloatArray) back).get(j));
            }
            written.get(i).close();
        }
        return buffers + " writes, staging " + (PinnedStaging.SHARED ? "shared by small copies" : "from each chunk's start (the default; -Dlightllm.cuda.staging_shared=true shares)");
    }

    private String saxpy() {
        int n = 1_000_003;
        FloatArray x = random(n, 1);
        FloatArray y = random(n, 2);
        float maxDiff = 0;
        for (Grid grid : new Grid[] {Grid.of(n), Grid.of(1000)}) {
            FloatArray expected = run(jvm, grid, x, y);
            FloatArray actual = run(gpu, grid, x, y);
            for (int i = 0; i < n; i++) {
                float e = expected.get(i);
                float d = Math.abs(e - actual.get(i));
                // NVRTC contracts a*x+y into one fma (a single rounding where Java rounds twice): the two differ by at most
                // half an ulp of a*x, below 2^-24 * 3.5 < 2.1e-7 for |a*x| <= 3.5; 4e-7 leaves a factor 2 for y's rounding.
                require(d <= 4e-7f, "element " + i + " of " + grid + " is " + actual.get(i) + ", expected " + e);
                maxDiff = Math.max(maxDiff, d);
            }
        }
        return "max |diff| " + maxDiff;
    }

    /** saxpy on a copy of y: the JVM's upload would alias the host array and update it in place. */
    private static FloatArray run(Device d, Grid grid, FloatArray x, FloatArray y) {
        DeviceBuffer bx = d.upload(x);
        DeviceBuffer by = d.allocate(DType.F32, y.getSize());
        d.copyIn(y, by);
        d.launch(DiagnosticKernels.SAXPY, grid, by, bx, 2.5f, x.getSize());
        FloatArray out = (FloatArray) d.download(by);
        bx.close();
        by.close();
        return out;
    }

    private String scaleRows() {
        int rows = 300;
        int cols = 517;
        FloatArray in = smallIntegers(rows * cols, 3);
        NativeArray[] results = new NativeArray[2];
        Device[] devices = {jvm, gpu};
        for (int i = 0; i < 2; i++) {
            DeviceBuffer bin = devices[i].upload(in);
            DeviceBuffer out = devices[i].allocate(DType.F32, rows * cols);
            devices[i].launch(DiagnosticKernels.SCALE_ROWS, Grid.of(rows, cols), out, bin, rows, cols);
            results[i] = devices[i].download(out);
        }
        requireBitsEqual(results[0], results[1], "scaleRows");
        return rows + " x " + cols;
    }

    private String rowSum() {
        int rows = 37;
        int n = 1000;
        FloatArray in = smallIntegers(rows * n, 4);
        StringBuilder sizes = new StringBuilder();
        for (int local : new int[] {1, 32, 256, DiagnosticKernels.ROW_SUM_MAX_LOCAL}) {
            NativeArray expected = sums(jvm, in, rows, n, local);
            NativeArray actual = sums(gpu, in, rows, n, local);
            requireBitsEqual(expected, actual, "row sums with work-groups of " + local);
            sizes.append(local).append(' ');
        }
        return "work-groups of " + sizes.toString().trim();
    }

    private static NativeArray sums(Device d, FloatArray in, int rows, int n, int local) {
        DeviceBuffer bin = d.upload(in);
        DeviceBuffer out = d.allocate(DType.F32, rows);
        d.launch(DiagnosticKernels.ROW_SUM, Grid.groups(rows, local), out, bin, n);
        return d.download(out);
    }

    private String widening() {
        int n = 1 << 16;
        HalfArray h = HalfArray.allocate(n);
        BFloat16Array b = BFloat16Array.allocate(n);
        for (int i = 0; i < n; i++) {
            h.segment().setAtIndex(JAVA_SHORT, i, (short) i);
            b.segment().setAtIndex(JAVA_SHORT, i, (short) i);
        }
        for (NativeArray in : new NativeArray[] {h, b}) {
            requireBitsEqual(widen(jvm, in), widen(gpu, in), "widening " + in.dtype());
        }
        return "every f16 and bf16 value";
    }

    private static NativeArray widen(Device d, NativeArray in) {
        DeviceBuffer bin = d.upload(in);
        DeviceBuffer out = d.allocate(DType.F32, in.getSize());
        d.launch(DiagnosticKernels.WIDEN, Grid.of(in.getSize()), out, bin, in.getSize());
        return d.download(out);
    }

    private String narrowing() {
        // every float whose upper 16 bits vary with a few lower patterns: ties, just above/below ties, subnormals, inf, NaN
        int[] low = {0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
        int n = (1 << 16) * low.length;
        FloatArray in = FloatArray.allocate(n);
        for (int hi = 0; hi < 1 << 16; hi++) {
            for (int j = 0; j < low.length; j++) {
                in.set(hi * low.length + j, Float.intBitsToFloat(hi << 16 | low[j]));
            }
        }
        for (DType t : new DType[] {DType.F16, DType.BF16}) {
            NativeArray expected = narrow(jvm, in, t);
            NativeArray actual = narrow(gpu, in, t);
            for (int i = 0; i < n; i++) {
                short e = raw(expected, i);
                short a = raw(actual, i);
                boolean bothNaN = Float.isNaN(expected.getFloat(i)) && Float.isNaN(actual.getFloat(i));
                require(e == a || bothNaN, t + " of " + Integer.toHexString(Float.floatToRawIntBits(in.get(i))) + " is 0x"
                        + Integer.toHexString(a & 0xffff) + ", expected 0x" + Integer.toHexString(e & 0xffff));
            }
        }
        return n + " floats to f16 and bf16";
    }

    private static short raw(NativeArray a, int i) {
        return a.segment().getAtIndex(JAVA_SHORT, i);
    }

    private static NativeArray narrow(Device d, FloatArray in, DType t) {
        DeviceBuffer bin = d.upload(in);
        DeviceBuffer out = d.allocate(t, in.getSize());
        d.launch(CastKernels.NARROW_FROM_F32, CastKernels.runs(in.getSize()), out, bin, in.getSize());
        return d.download(out);
    }

    private String profiling() {
        gpu.drainProfile();
        gpu.setProfiling(true);
        try {
            run(gpu, Grid.of(1 << 20), random(1 << 20, 5), random(1 << 20, 6));
            List<KernelTiming> timings = gpu.drainProfile();
            KernelTiming saxpy = timings.stream().filter(t -> t.name().equals(DiagnosticKernels.SAXPY.name())).findFirst()
                    .orElseThrow(() -> new AssertionError("no timing for saxpy in " + timings));
            require(saxpy.nanos() > 0 && saxpy.nanos() < 1_000_000_000L, "saxpy took " + saxpy.nanos() + " ns");
            return timings.toString();
        } finally {
            gpu.setProfiling(false);
        }
    }

    private String otherThread() throws InterruptedException {
        FloatArray x = random(4096, 7);
        FloatArray y = random(4096, 8);
        AtomicReference<Object> result = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                result.set(run(gpu, Grid.of(4096), x, y));
            } catch (Throwable e) {
                result.set(e);
            }
        });
        t.start();
        t.join();
        if (result.get() instanceof Throwable e) {
            throw new AssertionError("launch from a new thread failed", e);
        }
        require(result.get() instanceof FloatArray, "no result");
        return null;
    }

    private String graph() {
        int n = 10_000;
        FloatArray x0 = smallIntegers(n, 9);
        DeviceBuffer x = gpu.upload(x0);
        DeviceBuffer step = gpu.allocate(DType.I32, 1);
        Runnable oneStep = () -> {
            gpu.launch(DiagnosticKernels.NEXT_STEP, Grid.of(1), step);
            gpu.launch(DiagnosticKernels.ADD_STEP, Grid.of(n), x, step, n);
        };
        oneStep.run(); // compiles both outside the capture; x += 1
        int replays = 10;
        try (CudaGraph g = gpu.capture(oneStep)) {
            FloatArray untouched = (FloatArray) gpu.download(x);
            for (int i = 0; i < replays; i++) {
                g.replay();
            }
            FloatArray after = (FloatArray) gpu.download(x);
            int steps = ((IntArray) gpu.download(step)).get(0);
            require(steps == replays + 1, "step counter is " + steps + ", expected " + (replays + 1));
            // x0 + 1 + 2 + ... + (replays + 1)
            float added = (replays + 1) * (replays + 2) / 2f;
            for (int i = 0; i < n; i++) {
                require(untouched.get(i) == x0.get(i) + 1, "capturing ran the launches: element " + i + " is " + untouched.get(i));
                require(after.get(i) == x0.get(i) + added, "element " + i + " is " + after.get(i) + ", expected " + (x0.get(i) + added));
            }
        }
        return replays + " replays of 2 launches";
    }

    private String gemm() {
        StringBuilder out = new StringBuilder();
        int[][] shapes = {{1, 64, 64}, {33, 257, 520}, {64, 1024, 4096}};
        for (DType w : new DType[] {DType.BF16, DType.F16, DType.F32}) {
            for (int[] s : shapes) {
                double worst = gemmCase(DType.F32, w, s[0], s[1], s[2]);
                out.append(String.format("%s %dx%dx%d: %.2g; ", w, s[0], s[1], s[2], worst));
            }
        }
        double worst = gemmCase(DType.BF16, DType.BF16, 48, 96, 200);
        return out + String.format("bf16 activations: %.2g (error / bound)", worst);
    }

    /** Returns the worst error as a fraction of its bound. */
    private double gemmCase(DType aType, DType wType, int m, int n, int k) {
        NativeArray a = NativeArray.allocate(aType, (long) m * k);
        NativeArray w = NativeArray.allocate(wType, (long) n * k);
        fill(a, 10 + m);
        fill(w, 20 + n);
        DeviceBuffer da = gpu.upload(a);
        DeviceBuffer dw = gpu.upload(w);
        DeviceBuffer dout = gpu.allocate(DType.F32, (long) m * n);
        CudaBlas.gemm(gpu, da, dw, dout, m, n, k);
        FloatArray out = (FloatArray) gpu.download(dout);
        // cuBLAS multiplies the activations rounded to the weights' type (the cast kernel rounds like Java's setFloat)
        NativeArray aUsed = NativeArray.allocate(wType, (long) m * k);
        for (int i = 0; i < m * k; i++) {
            aUsed.setFloat(i, a.getFloat(i));
        }
        double worst = 0;
        for (int r = 0; r < m; r++) {
            for (int c = 0; c < n; c++) {
                double exact = 0;
                double magnitude = 0;
                for (int i = 0; i < k; i++) {
                    double p = (double) aUsed.getFloat(r * k + i) * w.getFloat(c * k + i);
                    exact += p;
                    magnitude += Math.abs(p);
                }
                // f32 accumulation of k products (exact for 16-bit inputs, one rounding each for f32): the classic bound
                // for recursive summation is k * u * sum|p|, with u = 2^-23 because tensor-core accumulators may truncate
                // rather than round to nearest (2^-24); blocking and split-k only reorder the sum. 2^-40 absorbs
                // rounding of the reference itself on tiny sums.
                double bound = k * Math.scalb(1.0, -23) * magnitude + Math.scalb(1.0, -40);
                double err = Math.abs(out.get(r * n + c) - exact);
                require(err <= bound, String.format("%s x %s gemm %dx%dx%d: out[%d][%d] = %s, exact %s, bound %.3g", aType, wType, m, n, k,
                        r, c, out.get(r * n + c), exact, bound));
                worst = Math.max(worst, err / bound);
            }
        }
        da.close();
        dw.close();
        dout.close();
        return worst;
    }

    private static void fill(NativeArray a, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < a.getSize(); i++) {
            a.setFloat(i, (float) (r.nextDouble() * 2 - 1));
        }
    }

    private String gemmOverrideAndGraph() {
        int m = 16;
        int n = 384;
        int k = 256;
        NativeArray a = NativeArray.allocate(DType.F32, m * k);
        NativeArray w = NativeArray.allocate(DType.BF16, n * k);
        fill(a, 30);
        fill(w, 31);
        DeviceBuffer da = gpu.upload(a);
        DeviceBuffer dw = gpu.upload(w);
        DeviceBuffer viaJava = gpu.allocate(DType.F32, m * n);
        DeviceBuffer viaBlas = gpu.allocate(DType.F32, m * n);
        DeviceBuffer viaGraph = gpu.allocate(DType.F32, m * n);
        gpu.override(DiagnosticKernels.MATMUL, CudaBlas.gemmOverride(0, 1, 2, 3, 4, 5));
        gpu.launchPortable(DiagnosticKernels.MATMUL, Grid.of(m, n), viaJava, da, dw, m, n, k);
        gpu.launch(DiagnosticKernels.MATMUL, Grid.of(m, n), viaBlas, da, dw, m, n, k);
        try (CudaGraph g = gpu.capture(() -> gpu.launch(DiagnosticKernels.MATMUL, Grid.of(m, n), viaGraph, da, dw, m, n, k))) {
            g.replay();
        }
        FloatArray java = (FloatArray) gpu.download(viaJava);
        FloatArray blas = (FloatArray) gpu.download(viaBlas);
        FloatArray graphed = (FloatArray) gpu.download(viaGraph);
        requireBitsEqual(blas, graphed, "the GEMM replayed from a graph matches the direct call");
        double worst = 0;
        for (int i = 0; i < m * n; i++) {
            // The Java kernel multiplies f32 activations, cuBLAS their bf16 roundings (relative error <= 2^-9 each), so the
            // outputs differ by at most 2^-9 * sum_k |a w| plus the two accumulations' errors, k * 2^-24 * sum|a w| for the
            // Java kernel and k * 2^-23 * sum|a w| for cuBLAS (tensor cores may truncate); |a|, |w| <= 1 gives
            // sum|a w| <= k.
            double bound = (Math.scalb(1.0, -9) + k * Math.scalb(1.0, -24) + k * Math.scalb(1.0, -23)) * k;
            double d = Math.abs(java.get(i) - blas.get(i));
            require(d <= bound, "element " + i + ": Java " + java.get(i) + ", cuBLAS " + blas.get(i));
            worst = Math.max(worst, d);
        }
        return String.format("max |Java - cuBLAS| %.3g", worst);
    }

    private String ptxCache() throws IOException {
        try (Stream<java.nio.file.Path> files = Files.list(PtxCache.standard().directory())) {
            long n = files.filter(p -> p.toString().endsWith(".ptx")).count();
            require(n > 0, "no .ptx files in " + PtxCache.standard().directory());
            return n + " PTX files in " + PtxCache.standard().directory();
        }
    }
}
