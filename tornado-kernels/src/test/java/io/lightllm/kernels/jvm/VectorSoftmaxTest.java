package io.lightllm.kernels.jvm;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.kernels.KernelLibrary;
import io.lightllm.kernels.Sampling;
import io.lightllm.kernels.Softmax;
import io.lightllm.testing.TensorAssert;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The JVM's vector softmax ({@link VectorSoftmax}) against the portable kernels on the same JVM device: within 2e-5
 * relative (the bound SamplingTest allows between devices: the vector exponential is within an ulp or two of
 * Math.exp, the sums are compensated lane by lane), rows at temperature <= 0 one-hot at the same index, and a row of
 * -inf NaN in both.
 */
class VectorSoftmaxTest {
    private static final float[] TEMPERATURES = {1f, 0.7f, 0f, 2f, -1f, 1.3f};
    private final JvmDevice device = new JvmDevice(2);

    @AfterEach
    void close() {
        device.close();
    }

    @Test
    void matchesThePortableKernels() {
        KernelLibrary.installOverrides(device);
        assertTrue(device.hasOverride(Softmax.SOFTMAX));
        assertTrue(device.hasOverride(Sampling.TEMPERATURE_SOFTMAX));
        int rows = TEMPERATURES.length;
        for (int vocab : new int[] {3, 1001, 152064}) {
            FloatArray logits = TensorAssert.random(rows * vocab, 10f, 7 + vocab);
            logits.set(2 * vocab + vocab / 2, 40f); // the greedy row's argmax, with a tie after it
            logits.set(2 * vocab + vocab - 1, 40f);
            Grid grid = Grid.groups(rows, 1);
            DeviceBuffer temperatures = device.upload(FloatArray.fromArray(TEMPERATURES));
            DeviceBuffer vector = device.upload(logits), portable = device.upload(logits);
            device.launch(Sampling.TEMPERATURE_SOFTMAX, grid, vector, temperatures, vocab);
            device.launchPortable(Sampling.TEMPERATURE_SOFTMAX, grid, portable, temperatures, vocab);
            FloatArray expected = (FloatArray) device.download(portable), actual = (FloatArray) device.download(vector);
            assertClose(expected, actual, 1e-30f, 2e-5f, "temperatureSoftmax vocab " + vocab);
            assertEquals(1f, actual.get(2 * vocab + vocab / 2), "the greedy row is one-hot at its first largest logit");

            FloatArray withMasked = FloatArray.fromArray(logits.toArray());
            for (int i = 0; i < vocab; i++) {
                withMasked.set(vocab + i, Float.NEGATIVE_INFINITY); // row 1 all masked
            }
            vector = device.upload(withMasked);
            portable = device.upload(withMasked);
            device.launch(Softmax.SOFTMAX, grid, vector, vocab);
            device.launchPortable(Softmax.SOFTMAX, grid, portable, vocab);
            expected = (FloatArray) device.download(portable);
            actual = (FloatArray) device.download(vector);
            assertTrue(Float.isNaN(actual.get(vocab)) && Float.isNaN(expected.get(vocab)), "a row of -inf becomes NaN");
            for (int i = vocab; i < 2 * vocab; i++) {
                expected.set(i, 0f);
                actual.set(i, 0f);
            }
            assertClose(expected, actual, 1e-30f, 2e-5f, "softmax vocab " + vocab);
        }
    }
}
