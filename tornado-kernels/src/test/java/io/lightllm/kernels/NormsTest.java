package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.LOCAL_SIZES;
import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class NormsTest {
    private static final float EPS = 1e-5f;
    // The kernel sums dim squares (or values) in float. A float sum of n terms is off by at most
    // (n-1) * 2^-24 of the sum of their magnitudes: 6e-5 for dim = 1000, halved by the square root;
    // the remaining products add a few ulps. 1e-4 relative covers that worst case.
    private static final float RTOL = 1e-4f;
    // LayerNorm subtracts the mean: its error (same bound, times max|x| = 2) becomes absolute
    // error of (x - mean), scaled by rsqrt(var) (about 1.7 here): 2e-4 worst case. For RMSNorm,
    // elements near zero only carry the relative error of the row scale, so 1e-6 is ample.
    private static final float LAYER_ATOL = 2e-4f;
    private static final float RMS_ATOL = 1e-6f;
    private static final int ROWS = 5;
    private static final int[] DIMS = {3, 1000};

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void rmsNormMatchesScalarReference(String id) {
        Device dev = device(id);
        for (int dim : DIMS) {
            FloatArray x = random(ROWS * dim, 2f, 11);
            for (NativeArray w : weights(dim, 12)) {
                FloatArray expected = rmsReference(x, w, ROWS, dim);
                for (int local : LOCAL_SIZES) {
                    assertClose(expected, rms(dev, Grid.groups(ROWS, local), x, w, dim), RMS_ATOL, RTOL,
                            "rmsNorm dim " + dim + " " + w.dtype() + " local " + local);
                }
                FloatArray launched = rms(dev, null, x, w, dim);
                assertClose(expected, launched, RMS_ATOL, RTOL, "launchRmsNorm dim " + dim);
                if (!isJvm(dev)) {
                    assertClose(rms(TestDevices.jvm(), null, x, w, dim), launched, 2 * RMS_ATOL, 2 * RTOL, "rmsNorm " + id + " vs jvm");
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void rmsNormAddResidualUpdatesResidualThenNormalisesIt(String id) {
        Device dev = device(id);
        for (int dim : DIMS) {
            FloatArray x = random(ROWS * dim, 2f, 21), residual = random(ROWS * dim, 2f, 22);
            FloatArray w = random(dim, 1f, 23);
            FloatArray sum = floatSum(residual, x);
            FloatArray expected = rmsReference(sum, w, ROWS, dim);
            for (int local : LOCAL_SIZES) {
                FloatArray[] r = rmsAdd(dev, Grid.groups(ROWS, local), x, residual, w, dim);
                // residual += x is one float addition per element: bit-exact
                assertClose(sum, r[1], 0f, 0f, "updated residual, local " + local);
                assertClose(expected, r[0], RMS_ATOL, RTOL, "rmsNormAddResidual dim " + dim + " local " + local);
            }
            FloatArray[] launched = rmsAdd(dev, null, x, residual, w, dim);
            assertClose(sum, launched[1], 0f, 0f, "updated residual");
            assertClose(expected, launched[0], RMS_ATOL, RTOL, "launchRmsNormAddResidual dim " + dim);
            if (!isJvm(dev)) {
                FloatArray[] jvm = rmsAdd(TestDevices.jvm(), null, x, residual, w, dim);
                assertClose(jvm[0], launched[0], 2 * RMS_ATOL, 2 * RTOL, "rmsNormAddResidual " + id + " vs jvm");
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void layerNormMatchesScalarReference(String id) {
        Device dev = device(id);
        for (int dim : DIMS) {
            // an offset mean makes the two-pass variance matter
            FloatArray x = random(ROWS * dim, 2f, 31);
            for (int i = 0; i < x.getSize(); i++) {
                x.set(i, x.get(i) + 3f);
            }
            NativeArray[] ws = weights(dim, 32), bs = weights(dim, 33);
            for (int v = 0; v < ws.length; v++) {
                FloatArray expected = layerReference(x, ws[v], bs[v], ROWS, dim);
                for (int local : LOCAL_SIZES) {
                    assertClose(expected, layer(dev, Grid.groups(ROWS, local), x, ws[v], bs[v], dim), LAYER_ATOL, RTOL,
                            "layerNorm dim " + dim + " " + ws[v].dtype() + " local " + local);
                }
                FloatArray launched = layer(dev, null, x, ws[v], bs[v], dim);
                assertClose(expected, launched, LAYER_ATOL, RTOL, "launchLayerNorm dim " + dim);
                if (!isJvm(dev)) {
                    assertClose(layer(TestDevices.jvm(), null, x, ws[v], bs[v], dim), launched, 2 * LAYER_ATOL, 2 * RTOL,
                            "layerNorm " + id + " vs jvm");
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void layerNormAddResidualUpdatesResidualThenNormalisesIt(String id) {
        Device dev = device(id);
        for (int dim : DIMS) {
            FloatArray x = random(ROWS * dim, 2f, 41), residual = random(ROWS * dim, 2f, 42);
            FloatArray w = random(dim, 1f, 43), b = random(dim, 1f, 44);
            FloatArray sum = floatSum(residual, x);
            FloatArray expected = layerReference(sum, w, b, ROWS, dim);
            for (int local : LOCAL_SIZES) {
                FloatArray[] r = layerAdd(dev, Grid.groups(ROWS, local), x, residual, w, b, dim);
                assertClose(sum, r[1], 0f, 0f, "updated residual, local " + local);
                assertClose(expected, r[0], LAYER_ATOL, RTOL, "layerNormAddResidual dim " + dim + " local " + local);
            }
            FloatArray[] launched = layerAdd(dev, null, x, residual, w, b, dim);
            assertClose(sum, launched[1], 0f, 0f, "updated residual");
            assertClose(expected, launched[0], LAYER_ATOL, RTOL, "launchLayerNormAddResidual dim " + dim);
            if (!isJvm(dev)) {
                FloatArray[] jvm = layerAdd(TestDevices.jvm(), null, x, residual, w, b, dim);
                assertClose(jvm[0], launched[0], 2 * LAYER_ATOL, 2 * RTOL, "layerNormAddResidual " + id + " vs jvm");
            }
        }
    }

    /**
     * A 16-bit output (what a tensor-core GEMM reads next, Matmul.activationType) is the f32 output rounded to nearest
     * even as it is stored, bit for bit: the model writes it instead of narrowing the f32 one in a launch of its own.
     * Both norms, plain and with the residual add; rows of a multiple of 4 (runs of 4) and not.
     */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void sixteenBitOutputsAreTheF32OutputsRounded(String id) {
        Device dev = device(id);
        for (int dim : DIMS) {
            FloatArray x = random(ROWS * dim, 2f, 51), residual = random(ROWS * dim, 2f, 52);
            FloatArray w = random(dim, 1f, 53), b = random(dim, 1f, 54);
            for (DType type : new DType[] {DType.BF16, DType.F16}) {
                for (int kernel = 0; kernel < 4; kernel++) {
                    float[] wide = null;
                    for (DType outType : new DType[] {DType.F32, type}) {
                        DeviceBuffer out = dev.allocate(outType, x.getSize()), xb = copyOf(dev, x), rb = copyOf(dev, residual);
                        DeviceBuffer wb = copyOf(dev, w), bb = copyOf(dev, b);
                        switch (kernel) {
                            case 0 -> Norms.launchRmsNorm(dev, out, xb, wb, EPS, ROWS, dim);
                            case 1 -> Norms.launchRmsNormAddResidual(dev, out, rb, xb, wb, EPS, ROWS, dim);
                            case 2 -> Norms.launchLayerNorm(dev, out, xb, wb, bb, EPS, ROWS, dim);
                            default -> Norms.launchLayerNormAddResidual(dev, out, rb, xb, wb, bb, EPS, ROWS, dim);
                        }
                        NativeArray got = dev.download(out);
                        if (outType == DType.F32) {
                            wide = ((FloatArray) got).toArray();
                        } else {
                            NativeArray rounded = NativeArray.allocate(type, wide.length);
                            for (int i = 0; i < wide.length; i++) {
                                rounded.setFloat(i, wide[i]);
                            }
                            for (int i = 0; i < wide.length; i++) {
                                assertEquals(rounded.getFloat(i), got.getFloat(i), 0f, id + " norm kernel " + kernel + " dim " + dim + " " + type + " at " + i);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void launchersRefuseShortBuffers() {
        Device dev = TestDevices.jvm();
        DeviceBuffer x = dev.allocate(DType.F32, 10), w = dev.allocate(DType.F32, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Norms.launchRmsNorm(dev, x, x, w, EPS, 2, 5));
        assertEquals("weight holds 4 elements, needs 5", e.getMessage());
    }

    @Test
    void compilesToCuda() {
        for (DType w : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            assertCompilesToCuda(Norms.RMS_NORM, DType.F32, DType.F32, w, null, null);
            assertCompilesToCuda(Norms.RMS_NORM_ADD_RESIDUAL, DType.F32, DType.F32, DType.F32, w, null, null);
            assertCompilesToCuda(Norms.LAYER_NORM, DType.F32, DType.F32, w, w, null, null);
            assertCompilesToCuda(Norms.LAYER_NORM_ADD_RESIDUAL, DType.F32, DType.F32, DType.F32, w, w, null, null);
            assertCompilesToCuda(Norms.RMS_NORM_ADD_RESIDUAL, DType.BF16, DType.F32, DType.F32, w, null, null);
        }
    }

    @Test
    void rowKernelsRefuseLocalSizesTheirLocalArraysCannotHold() {
        GroupReduce.checkLocalSize(1);
        GroupReduce.checkLocalSize(GroupReduce.MAX_LOCAL);
        for (long bad : new long[] {0, 3, 2 * GroupReduce.MAX_LOCAL}) {
            assertEquals("a row kernel needs a power-of-two local size from 1 to 256, got " + bad,
                    assertThrows(IllegalArgumentException.class, () -> GroupReduce.checkLocalSize(bad)).getMessage());
        }
    }

    // ---- runs (grid null: through the launcher) -----------------------------------

    private static FloatArray rms(Device dev, Grid grid, FloatArray x, NativeArray w, int dim) {
        DeviceBuffer out = dev.allocate(DType.F32, x.getSize()), xb = copyOf(dev, x), wb = copyOf(dev, w);
        if (grid == null) {
            Norms.launchRmsNorm(dev, out, xb, wb, EPS, ROWS, dim);
        } else {
            dev.launch(Norms.RMS_NORM, grid, out, xb, wb, EPS, dim);
        }
        return (FloatArray) dev.download(out);
    }

    private static FloatArray[] rmsAdd(Device dev, Grid grid, FloatArray x, FloatArray residual, NativeArray w, int dim) {
        DeviceBuffer out = dev.allocate(DType.F32, x.getSize()), rb = copyOf(dev, residual), xb = copyOf(dev, x), wb = copyOf(dev, w);
        if (grid == null) {
            Norms.launchRmsNormAddResidual(dev, out, rb, xb, wb, EPS, ROWS, dim);
        } else {
            dev.launch(Norms.RMS_NORM_ADD_RESIDUAL, grid, out, rb, xb, wb, EPS, dim);
        }
        return new FloatArray[] {(FloatArray) dev.download(out), (FloatArray) dev.download(rb)};
    }

    private static FloatArray layer(Device dev, Grid grid, FloatArray x, NativeArray w, NativeArray b, int dim) {
        DeviceBuffer out = dev.allocate(DType.F32, x.getSize()), xb = copyOf(dev, x), wb = copyOf(dev, w), bb = copyOf(dev, b);
        if (grid == null) {
            Norms.launchLayerNorm(dev, out, xb, wb, bb, EPS, ROWS, dim);
        } else {
            dev.launch(Norms.LAYER_NORM, grid, out, xb, wb, bb, EPS, dim);
        }
        return (FloatArray) dev.download(out);
    }

    private static FloatArray[] layerAdd(Device dev, Grid grid, FloatArray x, FloatArray residual, NativeArray w, NativeArray b, int dim) {
        DeviceBuffer out = dev.allocate(DType.F32, x.getSize()), rb = copyOf(dev, residual), xb = copyOf(dev, x);
        DeviceBuffer wb = copyOf(dev, w), bb = copyOf(dev, b);
        if (grid == null) {
            Norms.launchLayerNormAddResidual(dev, out, rb, xb, wb, bb, EPS, ROWS, dim);
        } else {
            dev.launch(Norms.LAYER_NORM_ADD_RESIDUAL, grid, out, rb, xb, wb, bb, EPS, dim);
        }
        return new FloatArray[] {(FloatArray) dev.download(out), (FloatArray) dev.download(rb)};
    }

    // ---- scalar references, in double -----------------------------------------------

    private static FloatArray rmsReference(FloatArray x, NativeArray w, int rows, int dim) {
        FloatArray out = FloatArray.allocate(rows * dim);
        for (int r = 0; r < rows; r++) {
            double squares = 0;
            for (int i = 0; i < dim; i++) {
                squares += (double) x.get(r * dim + i) * x.get(r * dim + i);
            }
            double inv = 1 / Math.sqrt(squares / dim + EPS);
            for (int i = 0; i < dim; i++) {
                out.set(r * dim + i, (float) (x.get(r * dim + i) * inv * w.getFloat(i)));
            }
        }
        return out;
    }

    private static FloatArray layerReference(FloatArray x, NativeArray w, NativeArray b, int rows, int dim) {
        FloatArray out = FloatArray.allocate(rows * dim);
        for (int r = 0; r < rows; r++) {
            double mean = 0;
            for (int i = 0; i < dim; i++) {
                mean += x.get(r * dim + i);
            }
            mean /= dim;
            double var = 0;
            for (int i = 0; i < dim; i++) {
                double d = x.get(r * dim + i) - mean;
                var += d * d;
            }
            double inv = 1 / Math.sqrt(var / dim + EPS);
            for (int i = 0; i < dim; i++) {
                out.set(r * dim + i, (float) ((x.get(r * dim + i) - mean) * inv * w.getFloat(i) + b.getFloat(i)));
            }
        }
        return out;
    }

    private static FloatArray floatSum(FloatArray a, FloatArray b) {
        FloatArray s = FloatArray.allocate(a.getSize());
        for (int i = 0; i < a.getSize(); i++) {
            s.set(i, a.get(i) + b.get(i));
        }
        return s;
    }

    /** The same random weights as f32, f16 and bf16 (the reference reads back the rounded values). */
    private static NativeArray[] weights(int dim, long seed) {
        return new NativeArray[] {fill(FloatArray.allocate(dim), 1f, seed), fill(HalfArray.allocate(dim), 1f, seed),
            fill(BFloat16Array.allocate(dim), 1f, seed)};
    }
}
