package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.testing.TestProperties;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The norm that writes int8 activation codes ({@link ActivationCodes}) and the batch-1 GEMVs that read them: the codes
 * against the f32 norm's output rounded in Java as the int8-activation GEMVs round it, and each GEMV on codes against the
 * dequantised product of that f32 row (within the activations' rounding), and on the JVM against the GEMV that rounds
 * the row itself, to the bit.
 */
class ActivationCodesTest {
    private static final float EPS = 1e-5f;

    /** The launchers take the codes paths on every backend under these (work-groups of whole warps: their shuffles need them). */
    private static Map<String, String> tunings() {
        Map<String, String> t = new HashMap<>();
        for (String backend : new String[] {"jvm", "opencl", "cuda"}) {
            for (String key : new String[] {"matmul.int8_q8", "matmul.int4_q8", "matmul.q8_codes", "matmul.gemv_gated"}) {
                t.put("lightllm.tuning." + backend + "." + key, "1");
            }
        }
        t.put("lightllm.tuning.jvm.reduce.local", "64");
        t.put("lightllm.tuning.opencl.reduce.local", "64");
        return t;
    }

    /** A row's normalised values, as the f32 norm writes them (with the residual add first when {@code delta} is given). */
    private static FloatArray normed(Device device, FloatArray residual, FloatArray delta, FloatArray weight, int rows, int dim) {
        DeviceBuffer out = device.allocate(DType.F32, (long) rows * dim);
        DeviceBuffer stream = device.upload(copy(residual)); // the JVM's buffers may be the host array itself, which the add changes
        if (delta == null) {
            Norms.launchRmsNorm(device, out, stream, device.upload(weight), EPS, rows, dim);
        } else {
            Norms.launchRmsNormAddResidual(device, out, stream, device.upload(delta), device.upload(weight), EPS, rows, dim);
        }
        return (FloatArray) device.download(out);
    }

    private static FloatArray copy(FloatArray a) {
        FloatArray c = FloatArray.allocate(a.getSize());
        c.copyFrom(a);
        return c;
    }

    /** The norm's codes and scales against {@link #normed}'s floats rounded as {@link Matmul#int8Codes} rounds them. */
    @Test
    void normWritesTheCodesTheGemvsWouldRound() {
        TestProperties.with(tunings(), () -> {
            for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
                for (int group : new int[] {ActivationCodes.INT8_ROWS_GROUP, ActivationCodes.INT4_BLOCKS_GROUP}) {
                    for (int dim : new int[] {128, 1152}) {
                        for (boolean add : new boolean[] {false, true}) {
                            int rows = 2;
                            FloatArray residual = TensorAssert.random(rows * dim, 1f, 1), delta = TensorAssert.random(rows * dim, 1f, 2);
                            FloatArray weight = TensorAssert.random(dim, 1f, 3);
                            FloatArray expected = normed(device, residual, add ? delta : null, weight, rows, dim);
                            DeviceBuffer stream = device.upload(copy(residual));
                            ActivationCodes codes = ActivationCodes.allocate(device, (long) rows * dim, group);
                            if (add) {
                                Norms.launchRmsNormAddResidualCodes(device, codes, stream, device.upload(delta), device.upload(weight), EPS, rows, dim);
                            } else {
                                Norms.launchRmsNormCodes(device, codes, stream, device.upload(weight), EPS, rows, dim);
                            }
                            String what = device.id() + " group " + group + " dim " + dim + (add ? " adding" : "");
                            if (add) { // the residual stream is stored back as the f32 norm stores it
                                FloatArray sum = FloatArray.allocate(rows * dim);
                                for (int i = 0; i < rows * dim; i++) {
                                    sum.set(i, residual.get(i) + delta.get(i));
                                }
                                assertClose(sum, device.download(stream), 0f, 0f, what + " residual");
                            }
                            assertCodes(expected, (ByteArray) device.download(codes.codes()), (FloatArray) device.download(codes.scales()), group,
                                    device.id().startsWith("jvm"), what);
                        }
                    }
                }
            }
        });
    }

    /**
     * Codes and scales against x rounded per group in Java: scale = max |x| / 127, code = x 127 / max rounded half to even. On
     * the JVM to the bit; a device's compiler may fuse the multiply and the add of the rounding (OpenCL C and CUDA allow it),
     * which rounds a product lying within an ulp of a half the other way, so there a code may be one off and a scale one
     * rounding of its division off.
     */
    private static void assertCodes(FloatArray x, ByteArray codes, FloatArray scales, int group, boolean exact, String what) {
        int mismatches = 0;
        for (int g = 0; g < x.getSize() / group; g++) {
            float most = 0f;
            for (int i = g * group; i < (g + 1) * group; i++) {
                most = Math.max(most, Math.abs(x.get(i)));
            }
            float inverse = most > 0f ? 127f / most : 0f;
            assertClose(FloatArray.fromArray(new float[] {most / 127f}), FloatArray.fromArray(new float[] {scales.get(g)}), 0f,
                    exact ? 0f : 0x1p-22f, what + " scale of group " + g);
            for (int i = g * group; i < (g + 1) * group; i++) {
                int code = (byte) (Float.floatToRawIntBits(x.get(i) * inverse + 0x1.8p23f) & 255);
                int diff = Math.abs(code - codes.get(i));
                assertTrue(diff <= (exact ? 0 : 1), what + " code " + i + ": " + codes.get(i) + ", expected " + code);
                mismatches += diff;
            }
        }
        assertTrue(mismatches <= x.getSize() / 1000, what + ": " + mismatches + " codes one off");
    }

    /** The int8 GEMVs (plain and gated) on the norm's codes, for rows of 64 and 1,040 (65 groups of 16). */
    @Test
    void int8GemvsOnCodesMatchTheProductOfTheNormedRow() {
        TestProperties.with(tunings(), () -> {
            for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
                for (int k : new int[] {64, 1040}) {
                    assertTrue(Matmul.int8CodesApply(device, k), device.id() + ": the int8 GEMV reads codes");
                    for (int width : new int[] {13, 40}) {
                        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(2 * width * k, 0.5f, 72), 2 * width, k);
                        FloatArray weights = FloatArray.allocate(2 * width * k);
                        for (int e = 0; e < 2 * width * k; e++) {
                            weights.set(e, q.weights().get(e) * q.scales().get(e / k));
                        }
                        FloatArray bias = width == 13 ? TensorAssert.random(2 * width, 1f, 73) : null;
                        DeviceBuffer w = device.upload(q.weights()), scales = device.upload(q.scales()), b = bias == null ? null : device.upload(bias);
                        checkGemvs(device, k, width, ActivationCodes.INT8_ROWS_GROUP, weights, bias,
                                (out, codes) -> Matmul.launchMatmulInt8Codes(device, out, codes, w, scales, b, 2 * width, k),
                                (out, x) -> Matmul.launchMatmulInt8(device, out, x, w, scales, b, 1, 2 * width, k),
                                (out, codes, act) -> Matmul.launchGatedGemvInt8Codes(device, out, codes, w, scales, b, act, width, k),
                                (out, x, act) -> Matmul.launchGatedGemvInt8(device, out, x, w, scales, b, act, width, k));
                    }
                }
            }
        });
    }

    /** The int4 GEMVs (plain and gated, INT4 and INT4_ZP blocks) on the norm's codes, for rows of 1 and 9 groups of 128. */
    @Test
    void int4GemvsOnCodesMatchTheProductOfTheNormedRow() {
        TestProperties.with(tunings(), () -> {
            for (Device device : TestDevices.jvmAndAcceleratorDevices()) {
                for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
                    for (int k : new int[] {128, 1152}) {
                        assertTrue(QuantMatmul.int4CodesApply(device, format, k), device.id() + ": the int4 GEMV reads codes");
                        for (int width : new int[] {13, 40}) {
                            ByteArray blocks = QuantMatmulTest.randomBlocks(format, 2 * width, k, 82);
                            FloatArray bias = width == 13 ? TensorAssert.random(2 * width, 1f, 83) : null;
                            DeviceBuffer w = device.upload(blocks), b = bias == null ? null : device.upload(bias);
                            checkGemvs(device, k, width, ActivationCodes.INT4_BLOCKS_GROUP, format.dequantize(blocks.segment(), 2 * width, k), bias,
                                    (out, codes) -> QuantMatmul.launchCodes(device, out, codes, w, format, b, 2 * width, k),
                                    (out, x) -> QuantMatmul.launch(device, out, x, w, format, b, 1, 2 * width, k),
                                    (out, codes, act) -> QuantMatmul.launchGatedCodes(device, out, codes, w, format, b, act, width, k),
                                    (out, x, act) -> QuantMatmul.launchGated(device, out, x, w, format, b, act, width, k));
                        }
                    }
                }
            }
        });
    }

    private interface OnCodes {
        void launch(DeviceBuffer out, ActivationCodes codes);
    }

    private interface OnFloats {
        void launch(DeviceBuffer out, DeviceBuffer x);
    }

    private interface GatedOnCodes {
        void launch(DeviceBuffer out, ActivationCodes codes, Activations.Kind act);
    }

    private interface GatedOnFloats {
        void launch(DeviceBuffer out, DeviceBuffer x, Activations.Kind act);
    }

    /**
     * A row normed to codes, then the GEMV of [2 width, k] on them, and the gated GEMV on them: within the dequantised
     * product of the f32 normed row plus the activations' rounding (the independent expectation), and on the JVM equal to
     * the GEMVs that round that f32 row themselves.
     */
    private static void checkGemvs(Device device, int k, int width, int group, FloatArray weights, FloatArray bias, OnCodes plain,
            OnFloats plainOnFloats, GatedOnCodes gated, GatedOnFloats gatedOnFloats) {
        FloatArray residual = TensorAssert.random(k, 1f, 91), delta = TensorAssert.random(k, 1f, 92), normWeight = TensorAssert.random(k, 1f, 93);
        FloatArray x = normed(device, residual, delta, normWeight, 1, k);
        ActivationCodes codes = ActivationCodes.allocate(device, k, group);
        Norms.launchRmsNormAddResidualCodes(device, codes, device.upload(copy(residual)), device.upload(delta), device.upload(normWeight), EPS, 1, k);
        MatmulReference ref = MatmulReference.of(x, weights, null, bias, 1, 2 * width, k);
        // the device's codes may be one off the row's own rounding (see assertCodes): twice the rounding bound covers that
        float bound = 2 * ref.errorBound() + 2 * QuantMatmulTest.activationRoundingBound(x, weights, 1, 2 * width, k, group);
        String what = device.id() + " group " + group + " k " + k + " width " + width;
        DeviceBuffer out = device.allocate(DType.F32, 2 * width);
        plain.launch(out, codes);
        FloatArray product = (FloatArray) device.download(out);
        assertClose(ref.expected(), product, bound, 0f, what + " GEMV on codes");
        Activations.Kind act = width == 13 ? Activations.Kind.SILU : Activations.Kind.GELU_TANH;
        DeviceBuffer activated = device.allocate(DType.F32, width);
        gated.launch(activated, codes, act);
        FloatArray gatedProduct = (FloatArray) device.download(activated);
        MatmulTest.assertActivatedProduct(ref.expected(), bound, width, act, gatedProduct, what + " gated GEMV on codes");
        if (device.id().startsWith("jvm")) {
            DeviceBuffer onFloats = device.allocate(DType.F32, 2 * width);
            plainOnFloats.launch(onFloats, device.upload(x));
            assertClose(device.download(onFloats), product, 0f, 0f, what + ": the GEMV rounding the row itself");
            DeviceBuffer gatedOut = device.allocate(DType.F32, width);
            gatedOnFloats.launch(gatedOut, device.upload(x), act);
            assertClose(device.download(gatedOut), gatedProduct, 0f, 0f, what + ": the gated GEMV rounding the row itself");
        }
    }

    @Test
    void launchersRefuseCodesOfTheOtherGroup() {
        TestProperties.with(tunings(), () -> {
            Device jvm = TestDevices.jvm();
            ActivationCodes sixteens = ActivationCodes.allocate(jvm, 128, ActivationCodes.INT8_ROWS_GROUP);
            ByteArray blocks = QuantMatmulTest.randomBlocks(QuantFormat.INT4, 4, 128, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuantMatmul.launchCodes(jvm, jvm.allocate(DType.F32, 4),
                    sixteens, jvm.upload(blocks), QuantFormat.INT4, null, 4, 128));
            assertTrue(e.getMessage().contains("groups of 128"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ActivationCodes.allocate(jvm, 100, ActivationCodes.INT8_ROWS_GROUP));
            assertEquals(8, ActivationCodes.allocate(jvm, 128, ActivationCodes.INT8_ROWS_GROUP).scales().elements());
        });
    }

    @Test
    void kernelsCompileToCuda() {
        for (DType w : new DType[] {DType.F32, DType.BF16}) {
            KernelTestSupport.assertCompilesToCuda(Norms.RMS_NORM_CODES, DType.I8, DType.F32, DType.F32, w, null, null, null);
            KernelTestSupport.assertCompilesToCuda(Norms.RMS_NORM_ADD_RESIDUAL_CODES, DType.I8, DType.F32, DType.F32, DType.F32, w, null, null, null);
        }
        for (KernelRef kernel : new KernelRef[] {Matmul.MATMUL_INT8_GEMV_CODES,
                Matmul.MATMUL_INT8_GEMV_GATED_CODES, QuantMatmul.GEMV_INT4_CODES, QuantMatmul.GEMV_INT4_GATED_CODES}) {
            CudaCheck.assertCompiles(KernelCompiler.compile(kernel, Dialect.CUDA, null).source(), kernel.name());
        }
    }
}
