package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.lightllm.kernels.Activations.Kind;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class ActivationsTest {
    // Element-wise float math: exp/tanh/erf are within a few ulps on every backend (OpenCL allows
    // erf 16 ulps: 1e-6 relative) and the JVM's erf is a rational approximation with absolute
    // error below 1.2e-7, times 0.5|x| <= 3. So 1e-5 relative plus 1e-6 absolute (for outputs
    // near zero, where the relative error of 1 + erf or 1 + tanh is not small) bounds every case.
    private static final float RTOL = 1e-5f;
    private static final float ATOL = 1e-6f;
    private static final int TOKENS = 7;
    private static final int WIDTH = 45;

    /** Rows of 45 (element by element) and 48 (runs of 4 in 16-byte loads) elements. */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void gatedActivationsFromFusedAndSeparateInputs(String id) {
        Device dev = device(id);
        for (int width : new int[] {WIDTH, 48}) {
            // gate spans [-12, 12]: silu's and gelu's tails as well as the middle
            FloatArray gateUp = random(TOKENS * 2 * width, 12f, 5);
            FloatArray gate = FloatArray.allocate(TOKENS * width), up = FloatArray.allocate(TOKENS * width);
            for (int t = 0; t < TOKENS; t++) {
                for (int i = 0; i < width; i++) {
                    gate.set(t * width + i, gateUp.get(t * 2 * width + i));
                    up.set(t * width + i, gateUp.get(t * 2 * width + width + i));
                }
            }
            for (Kind kind : Kind.values()) {
                String what = kind + " width " + width;
                FloatArray expected = FloatArray.allocate(TOKENS * width);
                for (int i = 0; i < TOKENS * width; i++) {
                    expected.set(i, (float) (reference(kind, gate.get(i)) * up.get(i)));
                }
                FloatArray fused = fused(dev, kind, gateUp, width);
                assertClose(expected, fused, ATOL, RTOL, what + " from gate_up");
                FloatArray separate = separate(dev, kind, gate, up, width, null);
                assertClose(expected, separate, ATOL, RTOL, what + " from gate and up");
                assertClose(expected, separate(dev, kind, gate, up, width, Grid.of(2, 8)), ATOL, RTOL, what + " on a small grid");
                if (!isJvm(dev)) {
                    assertClose(fused(TestDevices.jvm(), kind, gateUp, width), fused, 2 * ATOL, 2 * RTOL, what + " " + id + " vs jvm");
                }
                // a 16-bit out (the input of a down projection on tensor cores): the kernel's f32 values rounded as stored, bit
                // for bit (the portable kernel's: the JVM's vector override serves f32 outs only)
                DeviceBuffer wide = dev.allocate(DType.F32, TOKENS * width), gu = copyOf(dev, gateUp);
                dev.launchPortable(Activations.GATED, Activations.grid(TOKENS, width), wide, gu, gu, TOKENS, width, 2 * width, 0, 2 * width, width,
                        kind.code, width % 4 == 0);
                FloatArray portable = (FloatArray) dev.download(wide);
                for (DType type : new DType[] {DType.BF16, DType.F16}) {
                    DeviceBuffer out = dev.allocate(type, TOKENS * width);
                    Activations.launchGatedFused(dev, kind, out, gu, TOKENS, width);
                    NativeArray got = dev.download(out), rounded = NativeArray.allocate(type, TOKENS * width);
                    for (int i = 0; i < TOKENS * width; i++) {
                        rounded.setFloat(i, portable.get(i));
                        org.junit.jupiter.api.Assertions.assertEquals(rounded.getFloat(i), got.getFloat(i), 0f, what + " " + type + " out at " + i);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void plainActivationsInPlace(String id) {
        Device dev = device(id);
        int n = 1001;
        FloatArray x = random(n, 12f, 9);
        for (Kind kind : Kind.values()) {
            FloatArray expected = FloatArray.allocate(n);
            for (int i = 0; i < n; i++) {
                expected.set(i, (float) reference(kind, x.get(i)));
            }
            FloatArray launched = inPlace(dev, kind, x);
            assertClose(expected, launched, ATOL, RTOL, kind + " in place");
            if (!isJvm(dev)) {
                assertClose(inPlace(TestDevices.jvm(), kind, x), launched, 2 * ATOL, 2 * RTOL, kind + " " + id + " vs jvm");
            }
        }
    }

    @Test
    void kindsParseHuggingFaceNames() {
        assertEquals(Kind.SILU, Kind.fromConfig("silu"));
        assertEquals(Kind.GELU_TANH, Kind.fromConfig("gelu_pytorch_tanh"));
        assertEquals(Kind.GELU_TANH, Kind.fromConfig("gelu_new"));
        assertEquals(Kind.GELU_ERF, Kind.fromConfig("gelu"));
        assertEquals(Kind.QUICK_GELU, Kind.fromConfig("quick_gelu"));
        assertEquals("unsupported activation: relu2", assertThrows(IllegalArgumentException.class, () -> Kind.fromConfig("relu2")).getMessage());
    }

    @Test
    void compilesToCuda() {
        for (DType out : new DType[] {DType.F32, DType.BF16}) {
            assertCompilesToCuda(Activations.GATED, out, DType.F32, DType.F32, null, null, null, null, null, null, null, null);
        }
        assertCompilesToCuda(Activations.IN_PLACE);
    }

    /**
     * The JVM's Vector API override (SiLU and tanh-GELU with the vector exponential; GELU-erf falls back to
     * the portable kernel) against the definitions, fused and separate inputs, rows of several tasks.
     */
    @org.junit.jupiter.api.Test
    void jvmVectorOverrideMatchesTheDefinitions() {
        try (io.lightllm.tornado.jvm.JvmDevice dev = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(dev);
            org.junit.jupiter.api.Assertions.assertTrue(dev.hasOverride(Activations.GATED));
            int tokens = 3, width = 2100; // two 1024-element tasks and a tail, then a vector tail within each
            FloatArray gateUp = random(tokens * 2 * width, 12f, 6);
            for (Kind kind : Kind.values()) {
                DeviceBuffer out = dev.allocate(DType.F32, tokens * width), gu = copyOf(dev, gateUp);
                Activations.launchGatedFused(dev, kind, out, gu, tokens, width);
                FloatArray got = (FloatArray) dev.download(out), expected = FloatArray.allocate(tokens * width);
                for (int t = 0; t < tokens; t++) {
                    for (int i = 0; i < width; i++) {
                        expected.set(t * width + i, (float) (reference(kind, gateUp.get(t * 2 * width + i)) * gateUp.get(t * 2 * width + width + i)));
                    }
                }
                assertClose(expected, got, ATOL, RTOL, kind + " by the JVM override");
            }
        }
    }

    /** The definitions, in double. */
    private static double reference(Kind kind, double x) {
        return switch (kind) {
            case SILU -> x / (1 + Math.exp(-x));
            case GELU_TANH -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case GELU_ERF -> 0.5 * x * (1 + erf(x / Math.sqrt(2)));
            case QUICK_GELU -> x / (1 + Math.exp(-1.702 * x));
        };
    }

    /**
     * erf(z) = 2/sqrt(pi) * integral of exp(-t^2) from 0 to z, by Simpson's rule on 4096
     * intervals: its error, |z| h^4 / 180 * max|d^4/dt^4 exp(-t^2)| = |z| h^4 / 15 with
     * h = |z| / 4096 <= 9 / 4096, is below 1e-11.
     */
    private static double erf(double z) {
        int n = 4096;
        double h = z / n, sum = 1 + Math.exp(-z * z);
        for (int i = 1; i < n; i++) {
            double t = i * h;
            sum += (i % 2 == 1 ? 4 : 2) * Math.exp(-t * t);
        }
        return 2 / Math.sqrt(Math.PI) * sum * h / 3;
    }

    private static FloatArray fused(Device dev, Kind kind, FloatArray gateUp, int width) {
        DeviceBuffer out = dev.allocate(DType.F32, TOKENS * width), gu = copyOf(dev, gateUp);
        Activations.launchGatedFused(dev, kind, out, gu, TOKENS, width);
        return (FloatArray) dev.download(out);
    }

    private static FloatArray separate(Device dev, Kind kind, FloatArray gate, FloatArray up, int width, Grid grid) {
        DeviceBuffer out = dev.allocate(DType.F32, TOKENS * width), g = copyOf(dev, gate), u = copyOf(dev, up);
        if (grid == null) {
            Activations.launchGated(dev, kind, out, g, u, TOKENS, width);
        } else {
            dev.launch(Activations.GATED, grid, out, g, u, TOKENS, width, width, 0, width, 0, kind.code, width % 4 == 0);
        }
        return (FloatArray) dev.download(out);
    }

    private static FloatArray inPlace(Device dev, Kind kind, FloatArray x) {
        DeviceBuffer xb = copyOf(dev, x);
        Activations.launchInPlace(dev, kind, xb, x.getSize());
        return (FloatArray) dev.download(xb);
    }
}
