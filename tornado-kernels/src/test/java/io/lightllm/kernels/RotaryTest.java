package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.random;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class RotaryTest {
    // The angle is rounded to float by definition (Hugging Face computes it in fp32), and the
    // reference uses that same float angle. The kernel's float cos/sin are within 4 ulps
    // (OpenCL's bound; the JVM rounds the double result), and x0 cos - x1 sin with |x| <= 1
    // adds two roundings and may cancel: a few ulps of 1, far below 1e-6 absolute.
    private static final float ATOL = 1e-6f;
    private static final float RTOL = 1e-6f;
    private static final int TOKENS = 5;
    private static final int Q_HEADS = 3;
    private static final int K_HEADS = 1;
    private static final int HEAD_DIM = 10;
    private static final IntArray POSITIONS = IntArray.fromArray(0, 1, 7, 300, 4095);

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void rotatesHalfSplitAndInterleavedPairsOfFullAndPartialRotaryDims(String id) {
        Device dev = device(id);
        FloatArray q = random(TOKENS * Q_HEADS * HEAD_DIM, 1f, 1), k = random(TOKENS * K_HEADS * HEAD_DIM, 1f, 2);
        for (int rotaryDim : new int[] {HEAD_DIM, 6}) {
            FloatArray invFreq = RopeScaling.none(10000).inverseFrequencies(rotaryDim, 0);
            for (boolean interleaved : new boolean[] {false, true}) {
                for (float scaling : new float[] {1f, 1.25f}) {
                    String what = "rotaryDim " + rotaryDim + (interleaved ? " interleaved" : " half-split") + " scaling " + scaling;
                    FloatArray expectedQ = reference(q, Q_HEADS, invFreq, rotaryDim, interleaved, scaling);
                    FloatArray expectedK = reference(k, K_HEADS, invFreq, rotaryDim, interleaved, scaling);
                    FloatArray[] launched = run(dev, null, q, k, invFreq, rotaryDim, interleaved, scaling);
                    assertClose(expectedQ, launched[0], ATOL, RTOL, "q, " + what);
                    assertClose(expectedK, launched[1], ATOL, RTOL, "k, " + what);
                    assertPassThroughUnchanged(q, launched[0], rotaryDim);
                    assertPassThroughUnchanged(k, launched[1], rotaryDim);
                    FloatArray[] smallGrid = run(dev, Grid.of(2, 1, 2), q, k, invFreq, rotaryDim, interleaved, scaling);
                    assertClose(expectedQ, smallGrid[0], ATOL, RTOL, "q on a small grid, " + what);
                    if (!isJvm(dev)) {
                        FloatArray[] jvm = run(TestDevices.jvm(), null, q, k, invFreq, rotaryDim, interleaved, scaling);
                        assertClose(jvm[0], launched[0], 2 * ATOL, 2 * RTOL, "q " + id + " vs jvm, " + what);
                        assertClose(jvm[1], launched[1], 2 * ATOL, 2 * RTOL, "k " + id + " vs jvm, " + what);
                    }
                }
            }
        }
    }

    @Test
    void compilesToCuda() {
        assertCompilesToCuda(Rotary.ROTARY);
    }

    /** The JVM's override (cos and sin once per token and pair) gives the portable kernel's bits, for both pairings and a partial rotary dim. */
    @Test
    void jvmOverrideGivesThePortableKernelsBits() {
        FloatArray q = random(TOKENS * Q_HEADS * HEAD_DIM, 1f, 3), k = random(TOKENS * K_HEADS * HEAD_DIM, 1f, 4);
        try (io.lightllm.tornado.jvm.JvmDevice vectors = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(vectors);
            for (int rotaryDim : new int[] {HEAD_DIM, 6}) {
                FloatArray invFreq = RopeScaling.none(10000).inverseFrequencies(rotaryDim, 0);
                for (boolean interleaved : new boolean[] {false, true}) {
                    FloatArray[] portable = run(TestDevices.jvm(), null, q, k, invFreq, rotaryDim, interleaved, 1.25f);
                    FloatArray[] override = run(vectors, null, q, k, invFreq, rotaryDim, interleaved, 1.25f);
                    for (int part = 0; part < 2; part++) {
                        for (int i = 0; i < portable[part].getSize(); i++) {
                            assertEquals(Float.floatToRawIntBits(portable[part].get(i)), Float.floatToRawIntBits(override[part].get(i)),
                                    (part == 0 ? "q" : "k") + " element " + i + ", rotaryDim " + rotaryDim + (interleaved ? " interleaved" : ""));
                        }
                    }
                }
            }
        }
    }

    private static FloatArray[] run(Device dev, Grid grid, FloatArray q, FloatArray k, FloatArray invFreq, int rotaryDim,
            boolean interleaved, float scaling) {
        DeviceBuffer qb = copyOf(dev, q), kb = copyOf(dev, k), pb = copyOf(dev, POSITIONS), fb = copyOf(dev, invFreq);
        if (grid == null) {
            Rotary.launchRotary(dev, qb, kb, pb, new Rotary.Rope(fb, rotaryDim, interleaved, scaling), TOKENS, Q_HEADS, K_HEADS, HEAD_DIM);
        } else {
            dev.launch(Rotary.ROTARY, grid, qb, kb, pb, fb, TOKENS, Q_HEADS, K_HEADS, HEAD_DIM, rotaryDim, interleaved, scaling);
        }
        return new FloatArray[] {(FloatArray) dev.download(qb), (FloatArray) dev.download(kb)};
    }

    /** Elements from rotaryDim on are not touched: bit-exact. */
    private static void assertPassThroughUnchanged(FloatArray before, FloatArray after, int rotaryDim) {
        for (int row = 0; row < before.getSize() / HEAD_DIM; row++) {
            for (int d = rotaryDim; d < HEAD_DIM; d++) {
                assertEquals(before.get(row * HEAD_DIM + d), after.get(row * HEAD_DIM + d), 0f, "pass-through element " + d);
            }
        }
    }

    /** Hugging Face's x * cos + rotate_half(x) * sin on the paired elements, in double from the fp32 angle. */
    private static FloatArray reference(FloatArray x, int heads, FloatArray invFreq, int rotaryDim, boolean interleaved, float scaling) {
        FloatArray out = FloatArray.allocate(x.getSize());
        out.copyFrom(x);
        int half = rotaryDim / 2;
        for (int t = 0; t < TOKENS; t++) {
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * HEAD_DIM;
                for (int i = 0; i < half; i++) {
                    float angle = POSITIONS.get(t) * invFreq.get(i); // fp32, as in the definition
                    double cos = Math.cos(angle) * scaling, sin = Math.sin(angle) * scaling;
                    int a = base + (interleaved ? 2 * i : i), b = base + (interleaved ? 2 * i + 1 : i + half);
                    double x0 = x.get(a), x1 = x.get(b);
                    out.set(a, (float) (x0 * cos - x1 * sin));
                    out.set(b, (float) (x1 * cos + x0 * sin));
                }
            }
        }
        return out;
    }
}
