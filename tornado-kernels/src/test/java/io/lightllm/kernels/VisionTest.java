package io.lightllm.kernels;

import static io.lightllm.kernels.KernelTestSupport.assertCompilesToCuda;
import static io.lightllm.kernels.KernelTestSupport.copyOf;
import static io.lightllm.kernels.KernelTestSupport.device;
import static io.lightllm.kernels.KernelTestSupport.isJvm;
import static io.lightllm.testing.TensorAssert.assertClose;
import static io.lightllm.testing.TensorAssert.fill;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The vision-encoder kernels against scalar references, on the JVM and every accelerator (and against the JVM there). */
class VisionTest {
    private static final int IMAGES = 3, PATCHES = 5, DIM = 12, HEADS = 3, HEAD_DIM = 4;

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void assembleTokensPutsTheClassEmbeddingFirstAndAddsPositions(String id) {
        Device dev = device(id);
        FloatArray patches = fill(FloatArray.allocate(IMAGES * PATCHES * DIM), 1f, 1);
        NativeArray cls = fill(BFloat16Array.allocate(DIM), 1f, 2);
        NativeArray positions = fill(BFloat16Array.allocate((PATCHES + 1) * DIM), 1f, 3);
        FloatArray expected = FloatArray.allocate(IMAGES * (PATCHES + 1) * DIM);
        for (int i = 0; i < IMAGES; i++) {
            for (int p = 0; p <= PATCHES; p++) {
                for (int d = 0; d < DIM; d++) {
                    float v = p == 0 ? cls.getFloat(d) : patches.get((i * PATCHES + p - 1) * DIM + d);
                    expected.set((i * (PATCHES + 1) + p) * DIM + d, v + positions.getFloat(p * DIM + d));
                }
            }
        }
        DeviceBuffer out = dev.allocate(DType.F32, expected.getSize());
        Vision.launchAssemble(dev, out, copyOf(dev, patches), copyOf(dev, cls), copyOf(dev, positions), IMAGES, PATCHES, DIM);
        assertClose(expected, read(dev, out), 0f, 0f, "assembled tokens on " + id);
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void imageAttentionIsSoftmaxAttentionWithinEachImage(String id) {
        Device dev = device(id);
        // a short sequence (one tile of keys) and one of 70 (two tiles of queries, three of keys, the last partial)
        for (int seq : new int[] {PATCHES + 1, 70}) {
            int n = IMAGES * seq * HEADS * HEAD_DIM;
            FloatArray q = fill(FloatArray.allocate(n), 2f, 4), k = fill(FloatArray.allocate(n), 2f, 5), v = fill(FloatArray.allocate(n), 1f, 6);
            FloatArray expected = expectedAttention(q, k, v, IMAGES, seq);
            FloatArray launched = attention(dev, q, k, v, IMAGES, seq);
            assertClose(expected, launched, 1e-5f, 1e-5f, "image attention on " + id + ", seq " + seq);
            if (isJvm(dev)) {
                // the portable kernel itself (the JVM device may run the Vector API override instead)
                DeviceBuffer out = dev.allocate(DType.F32, n);
                int tiles = (seq + Vision.QUERY_TILE - 1) / Vision.QUERY_TILE;
                dev.launchPortable(Vision.ATTENTION, io.lightllm.tornado.runtime.Grid.groups((long) IMAGES * HEADS * tiles, Vision.QUERY_TILE), out,
                        copyOf(dev, q), copyOf(dev, k), copyOf(dev, v), IMAGES, seq, HEADS, HEAD_DIM, (float) (1 / Math.sqrt(HEAD_DIM)), tiles);
                assertClose(expected, read(dev, out), 1e-5f, 1e-5f, "portable image attention, seq " + seq);
            } else {
                assertClose(attention(TestDevices.jvm(), q, k, v, IMAGES, seq), launched, 1e-6f, 1e-6f, "image attention " + id + " vs jvm");
            }
        }
    }

    /** Head dimension 64 (CLIP ViT-L's) runs its own kernel, whose row loops the C compiler unrolls. */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void headDimension64HasItsOwnKernel(String id) {
        Device dev = device(id);
        int images = 2, seq = 40, heads = 2, headDim = 64, n = images * seq * heads * headDim;
        FloatArray q = fill(FloatArray.allocate(n), 1f, 24), k = fill(FloatArray.allocate(n), 1f, 25), v = fill(FloatArray.allocate(n), 1f, 26);
        assertClose(expectedAttention(q, k, v, images, seq, heads, headDim), attention(dev, q, k, v, images, seq, heads, headDim), 1e-5f, 1e-5f,
                "image attention, d 64, on " + id);
    }

    /** The JVM's Vector API override (kernels.jvm.VectorVision) against the same reference: several query blocks a head. */
    @Test
    void jvmVectorOverrideMatchesTheReference() {
        try (io.lightllm.tornado.jvm.JvmDevice dev = new io.lightllm.tornado.jvm.JvmDevice(2)) {
            KernelLibrary.installOverrides(dev);
            org.junit.jupiter.api.Assertions.assertTrue(dev.hasOverride(Vision.ATTENTION));
            int images = 2, seq = 70, n = images * seq * HEADS * HEAD_DIM;
            FloatArray q = fill(FloatArray.allocate(n), 2f, 14), k = fill(FloatArray.allocate(n), 2f, 15), v = fill(FloatArray.allocate(n), 1f, 16);
            assertClose(expectedAttention(q, k, v, images, seq), attention(dev, q, k, v, images, seq), 1e-5f, 1e-5f, "vector image attention");
        }
    }

    private static FloatArray attention(Device dev, FloatArray q, FloatArray k, FloatArray v, int images, int seq) {
        return attention(dev, q, k, v, images, seq, HEADS, HEAD_DIM);
    }

    private static FloatArray attention(Device dev, FloatArray q, FloatArray k, FloatArray v, int images, int seq, int heads, int headDim) {
        DeviceBuffer out = dev.allocate(DType.F32, q.getSize());
        Vision.launchAttention(dev, out, copyOf(dev, q), copyOf(dev, k), copyOf(dev, v), images, seq, heads, headDim);
        return read(dev, out);
    }

    /** softmax(q kᵀ / sqrt(d)) v per image and head, in double. */
    private static FloatArray expectedAttention(FloatArray q, FloatArray k, FloatArray v, int images, int seq) {
        return expectedAttention(q, k, v, images, seq, HEADS, HEAD_DIM);
    }

    private static FloatArray expectedAttention(FloatArray q, FloatArray k, FloatArray v, int images, int seq, int heads, int headDim) {
        final int HEADS = heads, HEAD_DIM = headDim;
        FloatArray expected = FloatArray.allocate(q.getSize());
        double scale = 1 / Math.sqrt(HEAD_DIM);
        int width = HEADS * HEAD_DIM;
        for (int r = 0; r < images * seq; r++) {
            int first = r / seq * seq;
            for (int h = 0; h < HEADS; h++) {
                double[] s = new double[seq];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j < seq; j++) {
                    for (int d = 0; d < HEAD_DIM; d++) {
                        s[j] += (double) q.get(r * width + h * HEAD_DIM + d) * k.get((first + j) * width + h * HEAD_DIM + d);
                    }
                    s[j] *= scale;
                    max = Math.max(max, s[j]);
                }
                for (int j = 0; j < seq; j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int d = 0; d < HEAD_DIM; d++) {
                    double o = 0;
                    for (int j = 0; j < seq; j++) {
                        o += s[j] / sum * v.get((first + j) * width + h * HEAD_DIM + d);
                    }
                    expected.set(r * width + h * HEAD_DIM + d, (float) o);
                }
            }
        }
        return expected;
    }

    /** Qwen-VL's Resampler: the same queries over each image's keys (fewer queries than keys, and more; several tiles of both). */
    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void crossAttentionIsSoftmaxAttentionOfSharedQueriesOverEachImage(String id) {
        Device dev = device(id);
        for (int[] shape : new int[][] {{7, 20}, {9, 4}, {70, 45}}) { // one tile of queries, more than a tile of each (the last partial)
            int queries = shape[0], keys = shape[1], width = HEADS * HEAD_DIM;
            FloatArray q = fill(FloatArray.allocate(queries * width), 2f, 31);
            FloatArray k = fill(FloatArray.allocate(IMAGES * keys * width), 2f, 32), v = fill(FloatArray.allocate(IMAGES * keys * width), 1f, 33);
            FloatArray expected = FloatArray.allocate(IMAGES * queries * width);
            double scale = 1 / Math.sqrt(HEAD_DIM);
            for (int i = 0; i < IMAGES; i++) {
                for (int r = 0; r < queries; r++) {
                    for (int h = 0; h < HEADS; h++) {
                        double[] s = new double[keys];
                        double max = Double.NEGATIVE_INFINITY, sum = 0;
                        for (int j = 0; j < keys; j++) {
                            for (int d = 0; d < HEAD_DIM; d++) {
                                s[j] += (double) q.get(r * width + h * HEAD_DIM + d) * k.get((i * keys + j) * width + h * HEAD_DIM + d);
                            }
                            s[j] *= scale;
                            max = Math.max(max, s[j]);
                        }
                        for (int j = 0; j < keys; j++) {
                            s[j] = Math.exp(s[j] - max);
                            sum += s[j];
                        }
                        for (int d = 0; d < HEAD_DIM; d++) {
                            double o = 0;
                            for (int j = 0; j < keys; j++) {
                                o += s[j] / sum * v.get((i * keys + j) * width + h * HEAD_DIM + d);
                            }
                            expected.set((i * queries + r) * width + h * HEAD_DIM + d, (float) o);
                        }
                    }
                }
            }
            DeviceBuffer out = dev.allocate(DType.F32, expected.getSize());
            Vision.launchCrossAttention(dev, out, copyOf(dev, q), copyOf(dev, k), copyOf(dev, v), IMAGES, queries, keys, HEADS, HEAD_DIM);
            assertClose(expected, read(dev, out), 1e-5f, 1e-5f, "cross-attention on " + id + ", " + queries + " queries, " + keys + " keys");
        }
    }

    @ParameterizedTest
    @MethodSource("io.lightllm.kernels.KernelTestSupport#deviceIds")
    void scatterRowsWritesOnlyTheNamedRows(String id) {
        Device dev = device(id);
        FloatArray target = fill(FloatArray.allocate(7 * DIM), 1f, 7);
        FloatArray rows = fill(FloatArray.allocate(3 * DIM), 1f, 8);
        IntArray rowsOf = IntArray.fromArray(5, 0, 3);
        FloatArray expected = FloatArray.fromArray(target.toArray());
        for (int i = 0; i < 3; i++) {
            for (int d = 0; d < DIM; d++) {
                expected.set(rowsOf.get(i) * DIM + d, rows.get(i * DIM + d));
            }
        }
        DeviceBuffer out = copyOf(dev, target);
        Vision.launchScatter(dev, out, copyOf(dev, rows), copyOf(dev, rowsOf), 3, DIM);
        assertClose(expected, read(dev, out), 0f, 0f, "scattered rows on " + id);
    }

    @Test
    void compileToCuda() {
        assertCompilesToCuda(Vision.ASSEMBLE, DType.F32, DType.F32, DType.BF16, DType.BF16, null, null, null);
        assertCompilesToCuda(Vision.ATTENTION);
        assertCompilesToCuda(Vision.ATTENTION_D64);
        assertCompilesToCuda(Vision.SCATTER);
        assertCompilesToCuda(Vision.CROSS_ATTENTION);
    }

    private static FloatArray read(Device dev, DeviceBuffer b) {
        FloatArray host = FloatArray.allocate((int) b.elements());
        dev.read(b, 0, host.segment());
        return host;
    }
}
