package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The mixture-of-experts launches against a scalar reference that runs every token through its
 * top-k experts one by one (HF Mixtral's loop): the grouping and the tiles must not change the sums.
 * Each test runs one path: the dense one ({@code moe.dense_min_tokens}, CUDA's for decode batches) is off
 * except in its own test.
 */
class MoeTest {
    private static final java.util.List<String> BACKENDS = java.util.List.of("jvm", "opencl", "cuda");
    private static final int HIDDEN = 24, WIDTH = 40, EXPERTS = 6, TOP_K = 2;
    // f32 sums of 24 and 40 products in another order: a few ulps of values of order 1
    private static final float ATOL = 2e-5f, RTOL = 1e-4f;

    /** The experts' sizes: hidden (gate/up's rows, down's outputs), width (down's rows), how many, how many a token picks. */
    private record Shape(int hidden, int width, int experts, int topK) {
    }

    private static final Shape SMALL = new Shape(HIDDEN, WIDTH, EXPERTS, TOP_K);

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void matchesTheTokenByTokenReference(String id) {
        io.lightllm.testing.TestProperties.with(tuning("moe.dense_min_tokens", Integer.MAX_VALUE), () -> groupedMatches(id));
    }

    private static void groupedMatches(String id) {
        Device dev = device(id);
        // 1 token (decode), a few, and more than one tile per expert with some experts unused
        for (int tokens : new int[] {1, 3, 11}) {
            for (DType wType : new DType[] {DType.F32, DType.BF16}) {
                FloatArray x = random(tokens * HIDDEN, 1f, 11 + tokens);
                FloatArray logits = random(tokens * EXPERTS, 2f, 7 + tokens);
                if (tokens == 11) {
                    for (int t = 0; t < tokens; t++) { // expert 5 never chosen, expert 0 by every token
                        logits.set(t * EXPERTS, 5f);
                        logits.set(t * EXPERTS + 5, -5f);
                    }
                }
                NativeArray w1 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 1);
                NativeArray w3 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 2);
                NativeArray w2 = fill(NativeArray.allocate(wType, EXPERTS * HIDDEN * WIDTH), 0.3f, 3);
                FloatArray expected = reference(x, logits, w1, w3, w2, tokens);
                FloatArray actual = run(dev, x, logits, w1, w3, w2, tokens);
                String what = tokens + " tokens, " + wType + " experts on " + id;
                assertClose(expected, actual, ATOL, RTOL, what);
                if (!isJvm(dev)) {
                    assertClose(run(TestDevices.jvm(), x, logits, w1, w3, w2, tokens), actual, ATOL, RTOL, what + " vs jvm");
                }
            }
        }
    }

    /**
     * A warp per (tile, output) is chosen only where its launch fits int-indexed work-items: Mixtral-8x7B's decode batch
     * of 64 tokens (16 tiles of 4 an expert) does, its prefill of 8,192 tokens (2,048 tiles) does not and takes the
     * work-item kernels (the H200 refused that launch: 58,720,256 work-groups).
     */
    @org.junit.jupiter.api.Test
    void warpsOnlyWhereTheirLaunchFits() {
        Moe.Experts mixtral = new Moe.Experts(null, null, null, 8, 2, true, 4096, 14336);
        assertTrue(Moe.warpGridFits(mixtral, 64 / Moe.ROWS));
        org.junit.jupiter.api.Assertions.assertFalse(Moe.warpGridFits(mixtral, 8192 / Moe.ROWS));
    }

    /** The warp-per-output expert kernels (CUDA's choice, `moe.warps`) against the same reference, on every device. */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void warpKernelsMatchTheTokenByTokenReference(String id) {
        Device dev = device(id);
        java.util.Map<String, String> on = new java.util.HashMap<>(tuning("moe.warps", 1));
        on.putAll(tuning("moe.dense_min_tokens", Integer.MAX_VALUE));
        io.lightllm.testing.TestProperties.with(on, () -> {
            Moe.Experts shape = new Moe.Experts(null, null, null, EXPERTS, TOP_K, true, HIDDEN, WIDTH);
            assertTrue(Moe.usesWarps(dev, shape, 3));
            for (int tokens : new int[] {1, 11}) {
                FloatArray x = random(tokens * HIDDEN, 1f, 21 + tokens);
                FloatArray logits = random(tokens * EXPERTS, 2f, 17 + tokens);
                for (DType wType : new DType[] {DType.F32, DType.BF16}) {
                    NativeArray w1 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 4);
                    NativeArray w3 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 5);
                    NativeArray w2 = fill(NativeArray.allocate(wType, EXPERTS * HIDDEN * WIDTH), 0.3f, 6);
                    assertClose(reference(x, logits, w1, w3, w2, tokens), run(dev, x, logits, w1, w3, w2, tokens), ATOL, RTOL,
                            "warp kernels, " + tokens + " tokens, " + wType + " experts on " + id);
                }
            }
        });
    }

    /**
     * The warp kernels stream a row two runs of 256 weights at a time with a run of 256 left over: rows of 528 and 552
     * weights (gate/up over hidden, down over width) take the paired loop once and the single one for some lanes, which
     * rows of 24 and 40 never reach. 6 tokens all picking expert 0 give it two tiles of 4 rows, the second with 2.
     * Tolerance: f32 sums of ~550 products against double, outputs of order 10: a few 1e-5 relative.
     */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void warpKernelsMatchTheReferenceOverLongRows(String id) {
        Device dev = device(id);
        Shape wide = new Shape(528, 552, 4, 2);
        java.util.Map<String, String> on = new java.util.HashMap<>(tuning("moe.warps", 1));
        on.putAll(tuning("moe.dense_min_tokens", Integer.MAX_VALUE));
        io.lightllm.testing.TestProperties.with(on, () -> {
            for (int tokens : new int[] {1, 6}) {
                FloatArray x = random(tokens * wide.hidden(), 1f, 51 + tokens);
                FloatArray logits = random(tokens * wide.experts(), 2f, 57 + tokens);
                for (int t = 0; t < tokens; t++) {
                    logits.set(t * wide.experts(), 5f);
                }
                NativeArray w1 = fill(NativeArray.allocate(DType.BF16, wide.experts() * wide.width() * wide.hidden()), 0.1f, 13);
                NativeArray w3 = fill(NativeArray.allocate(DType.BF16, wide.experts() * wide.width() * wide.hidden()), 0.1f, 14);
                NativeArray w2 = fill(NativeArray.allocate(DType.BF16, wide.experts() * wide.hidden() * wide.width()), 0.1f, 15);
                assertClose(reference(wide, x, logits, w1, w3, w2, tokens, null), run(wide, dev, x, logits, w1, w3, w2, tokens), ATOL, RTOL,
                        "warp kernels over rows of 528 and 552, " + tokens + " tokens on " + id);
            }
        });
    }

    /**
     * Every token through every expert as one dense MLP, the router's weights (0 for the unpicked experts) scaling the
     * activations (CUDA's choice for decode batches, `moe.dense_min_tokens`), against the same reference on every device.
     * x is made of bf16 values, so a GEMM that rounds its inputs to bf16 (cuBLAS, the tensor cores) reads it exactly; where
     * the matmuls round the activations ({@link Matmul#activationType}), they are the weighted ones, rounded once, and the
     * tolerance is the tensor-core test's: one bf16 ulp of an activation (2^-8 relative) moves an output by ~2e-3 here,
     * a wrong expert or weight by its own size (~1). 11 tokens leave expert 5 unpicked; a NaN there must not reach out.
     * 20 tokens are past the GEMV: where the matmuls run on tensor cores (cuda:0; the JVM's emulated ones, switched on
     * here) the activations are written in bf16 for the down GEMM to read as they are.
     */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void denseExpertsMatchTheTokenByTokenReference(String id) {
        Device dev = device(id);
        java.util.Map<String, String> on = new java.util.HashMap<>(tuning("moe.dense_min_tokens", 1));
        on.put("lightllm.tuning.jvm.matmul.tensor_cores", "1");
        io.lightllm.testing.TestProperties.with(on, () -> {
            for (DType wType : new DType[] {DType.F32, DType.BF16}) {
                NativeArray w2Shape = NativeArray.allocate(wType, EXPERTS * HIDDEN * WIDTH);
                try (DeviceBuffer w2Probe = copyOf(dev, w2Shape)) {
                    Moe.Experts shape = new Moe.Experts(null, null, w2Probe, EXPERTS, TOP_K, true, HIDDEN, WIDTH);
                    for (int tokens : new int[] {1, 3, 11, 20}) {
                        assertTrue(Moe.usesDense(dev, shape, tokens), "dense experts at " + tokens + " tokens on " + id);
                        boolean rounded = Matmul.activationType(dev, w2Probe, tokens, EXPERTS * WIDTH) != DType.F32;
                        if (isJvm(dev) && tokens == 20 && wType == DType.BF16) {
                            assertTrue(rounded, "the JVM's tensor cores take 20 tokens: bf16 activations");
                        }
                        FloatArray x = random(tokens * HIDDEN, 1f, 41 + tokens);
                        for (int i = 0; i < x.getSize(); i++) {
                            x.set(i, io.lightllm.tornado.api.KMath.bf16ToFloat(io.lightllm.tornado.api.KMath.floatToBf16(x.get(i))));
                        }
                        FloatArray logits = random(tokens * EXPERTS, 2f, 47 + tokens);
                        NativeArray w1 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 10);
                        NativeArray w3 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 11);
                        NativeArray w2 = fill(NativeArray.allocate(wType, EXPERTS * HIDDEN * WIDTH), 0.3f, 12);
                        if (tokens == 11) {
                            for (int t = 0; t < tokens; t++) {
                                logits.set(t * EXPERTS + 5, -5f);
                            }
                            w1.setFloat((5 * WIDTH) * HIDDEN, Float.NaN); // expert 5's first gate row
                        }
                        String what = "dense experts, " + tokens + " tokens, " + wType + " experts on " + id;
                        FloatArray actual = run(dev, x, logits, w1, w3, w2, tokens);
                        if (rounded) {
                            assertClose(reference(x, logits, w1, w3, w2, tokens, wType), actual, 2e-3f, 4e-3f, what);
                        } else {
                            assertClose(reference(x, logits, w1, w3, w2, tokens), actual, ATOL, RTOL, what);
                        }
                    }
                }
            }
        });
    }

    /** The system properties that set tuning {@code name} to {@code value} on every backend. */
    private static java.util.Map<String, String> tuning(String name, int value) {
        java.util.Map<String, String> m = new java.util.HashMap<>();
        BACKENDS.forEach(b -> m.put("lightllm.tuning." + b + "." + name, Integer.toString(value)));
        return m;
    }

    /**
     * The tensor-core expert matmuls (CUDA's choice from `moe.tc_min_tokens` tokens) against the reference with the
     * activations rounded to bf16 as they load, on every device: x is made of bf16 values (exact), act is rounded by
     * the reference too. Tolerance: the kernel's f32 act and the reference's double act can round to neighbouring bf16
     * values (one ulp, 2^-8 relative), which moves an output by |act w2| / 256 (~2e-3 here); a wrong row, expert or
     * gate is off by the outputs' own size (~1). 300 tokens with expert 0 chosen by all give it three row tiles.
     */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void tensorCoreExpertsMatchTheReferenceWithBf16Activations(String id) {
        Device dev = device(id);
        java.util.Map<String, String> on = new java.util.HashMap<>(tuning("moe.tensor_cores", 1));
        on.putAll(tuning("moe.tc_min_tokens", 1));
        io.lightllm.testing.TestProperties.with(on, () -> {
            // f16 (the same body, another MMA) not on PoCL, where compiling a second entry costs a minute of CI
            for (DType wType : id.startsWith("opencl") ? new DType[] {DType.BF16} : new DType[] {DType.BF16, DType.F16}) {
                Moe.Experts shape = new Moe.Experts(dev.allocate(wType, 1), null, null, EXPERTS, TOP_K, true, HIDDEN, WIDTH);
                assertTrue(Moe.usesTensorCores(dev, shape, 1), "tensor-core experts on " + id);
                shape.w1().close();
                for (int tokens : new int[] {1, 11, 300}) {
                    FloatArray x = random(tokens * HIDDEN, 1f, 31 + tokens);
                    for (int i = 0; i < x.getSize(); i++) {
                        x.set(i, io.lightllm.tornado.api.KMath.bf16ToFloat(io.lightllm.tornado.api.KMath.floatToBf16(x.get(i))));
                    }
                    FloatArray logits = random(tokens * EXPERTS, 2f, 37 + tokens);
                    if (tokens == 300) {
                        for (int t = 0; t < tokens; t++) {
                            logits.set(t * EXPERTS, 5f);
                        }
                    }
                    NativeArray w1 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 7);
                    NativeArray w3 = fill(NativeArray.allocate(wType, EXPERTS * WIDTH * HIDDEN), 0.3f, 8);
                    NativeArray w2 = fill(NativeArray.allocate(wType, EXPERTS * HIDDEN * WIDTH), 0.3f, 9);
                    assertClose(reference(x, logits, w1, w3, w2, tokens, wType), run(dev, x, logits, w1, w3, w2, tokens), 2e-3f, 4e-3f,
                            "tensor-core experts, " + tokens + " tokens, " + wType + " experts on " + id);
                }
            }
        });
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void tiesPickTheLowerExpertAndWeightsAreRenormalised(String id) {
        Device dev = device(id);
        FloatArray logits = FloatArray.fromArray(new float[] {1f, 3f, 3f, 0f, 3f, 1f});
        DeviceBuffer ids = dev.allocate(DType.I32, 2), weights = dev.allocate(DType.F32, 2), lb = copyOf(dev, logits);
        dev.launch(Moe.ROUTE, io.lightllm.tornado.runtime.Grid.of(1), ids, weights, lb, 1, EXPERTS, 2, 1);
        IntArray picked = (IntArray) dev.download(ids);
        FloatArray w = (FloatArray) dev.download(weights);
        assertArrayEquals(new int[] {1, 2}, new int[] {picked.get(0), picked.get(1)});
        assertArrayEquals(new float[] {0.5f, 0.5f}, new float[] {w.get(0), w.get(1)}, 1e-6f);
        for (DeviceBuffer b : new DeviceBuffer[] {ids, weights, lb}) {
            b.close();
        }
    }

    @Test
    void compilesToCuda() {
        assertCompilesToCuda(Moe.ROUTE);
        assertCompilesToCuda(Moe.GROUP);
        assertCompilesToCuda(Moe.COMBINE);
        for (DType act : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            assertCompilesToCuda(Moe.ROUTED_ACTIVATION, act, DType.F32, DType.F32, DType.I32, DType.F32, null, null, null, null, null, null);
        }
        for (DType w : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            assertCompilesToCuda(Moe.GATED_UP, DType.F32, DType.F32, w, w, DType.I32, DType.I32, DType.I32, null, null, null, null, null, null);
            assertCompilesToCuda(Moe.DOWN, DType.F32, DType.F32, w, DType.I32, DType.I32, null, null, null, null);
            assertCompilesToCuda(Moe.GATED_UP_WARPS, DType.F32, DType.F32, w, w, DType.I32, DType.I32, DType.I32, null, null, null, null, null,
                    null);
            assertCompilesToCuda(Moe.DOWN_WARPS, DType.F32, DType.F32, w, DType.I32, DType.I32, null, null, null, null);
        }
        for (KernelRef gemm : new KernelRef[] {Moe.EXPERTS_TC_BF16, Moe.EXPERTS_TC_F16}) {
            assertCompilesToCuda(gemm, DType.F32, DType.F32, gemm == Moe.EXPERTS_TC_BF16 ? DType.BF16 : DType.F16, DType.I32, DType.I32,
                    DType.I32, null, null, null, null, null);
        }
    }

    private static FloatArray run(Device dev, FloatArray x, FloatArray logits, NativeArray w1, NativeArray w3, NativeArray w2, int tokens) {
        return run(SMALL, dev, x, logits, w1, w3, w2, tokens);
    }

    private static FloatArray run(Shape sh, Device dev, FloatArray x, FloatArray logits, NativeArray w1, NativeArray w3, NativeArray w2,
            int tokens) {
        DeviceBuffer out = dev.allocate(DType.F32, (long) tokens * sh.hidden()), xb = copyOf(dev, x), lb = copyOf(dev, logits);
        DeviceBuffer b1 = copyOf(dev, w1), b3 = copyOf(dev, w3), b2 = copyOf(dev, w2);
        Moe.Experts experts = new Moe.Experts(b1, b3, b2, sh.experts(), sh.topK(), true, sh.hidden(), sh.width());
        try (Moe.Scratch scratch = Moe.Scratch.allocate(dev, tokens, experts)) {
            Moe.launchMoe(dev, out, xb, lb, experts, scratch, Activations.Kind.SILU, tokens);
            return (FloatArray) dev.download(out);
        } finally {
            for (DeviceBuffer b : new DeviceBuffer[] {out, xb, lb, b1, b3, b2}) {
                b.close();
            }
        }
    }

    /** HF MixtralSparseMoeBlock, one token at a time, in double. */
    private static FloatArray reference(FloatArray x, FloatArray logits, NativeArray w1, NativeArray w3, NativeArray w2, int tokens) {
        return reference(x, logits, w1, w3, w2, tokens, null);
    }

    private static FloatArray reference(FloatArray x, FloatArray logits, NativeArray w1, NativeArray w3, NativeArray w2, int tokens,
            DType actType) {
        return reference(SMALL, x, logits, w1, w3, w2, tokens, actType);
    }

    /** {@link #reference} of experts of shape sh, the activations between the matmuls rounded to {@code actType} (bf16, f16; null: not). */
    private static FloatArray reference(Shape sh, FloatArray x, FloatArray logits, NativeArray w1, NativeArray w3, NativeArray w2,
            int tokens, DType actType) {
        FloatArray out = FloatArray.allocate(tokens * sh.hidden());
        for (int t = 0; t < tokens; t++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int e = 0; e < sh.experts(); e++) {
                max = Math.max(max, logits.get(t * sh.experts() + e));
            }
            double[] p = new double[sh.experts()];
            for (int e = 0; e < sh.experts(); e++) {
                p[e] = Math.exp(logits.get(t * sh.experts() + e) - max);
                sum += p[e];
            }
            Integer[] order = new Integer[sh.experts()];
            Arrays.setAll(order, i -> i);
            int tt = t;
            Arrays.sort(order, (a, b) -> Float.compare(logits.get(tt * sh.experts() + b), logits.get(tt * sh.experts() + a)));
            double picked = 0;
            for (int j = 0; j < sh.topK(); j++) {
                picked += p[order[j]] / sum;
            }
            for (int j = 0; j < sh.topK(); j++) {
                int e = order[j];
                double weight = p[e] / sum / picked;
                double[] act = new double[sh.width()];
                for (int i = 0; i < sh.width(); i++) {
                    double g = 0, u = 0;
                    for (int d = 0; d < sh.hidden(); d++) {
                        g += x.get(t * sh.hidden() + d) * (double) w1.getFloat((e * sh.width() + i) * sh.hidden() + d);
                        u += x.get(t * sh.hidden() + d) * (double) w3.getFloat((e * sh.width() + i) * sh.hidden() + d);
                    }
                    act[i] = g / (1 + Math.exp(-g)) * u;
                    if (actType == DType.BF16) {
                        act[i] = io.lightllm.tornado.api.KMath.bf16ToFloat(io.lightllm.tornado.api.KMath.floatToBf16((float) act[i]));
                    } else if (actType == DType.F16) {
                        act[i] = Float.float16ToFloat(Float.floatToFloat16((float) act[i]));
                    }
                }
                for (int o = 0; o < sh.hidden(); o++) {
                    double y = 0;
                    for (int i = 0; i < sh.width(); i++) {
                        y += act[i] * w2.getFloat(o * sh.experts() * sh.width() + e * sh.width() + i);
                    }
                    out.set(t * sh.hidden() + o, (float) (out.get(t * sh.hidden() + o) + weight * y));
                }
            }
        }
        return out;
    }
}
