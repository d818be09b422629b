package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Structured output's bitmask kernel: exactly the tokens a row's set does not allow become -infinity, on every device. */
class ConstraintMaskKernelTest {
    @Test
    void disallowedTokensAndOnlyThoseGetMinusInfinity() {
        int rows = 4, vocab = 1000; // not a multiple of 32: the last word is partial
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        SplittableRandom r = new SplittableRandom(3);
        Map<Integer, BitSet> allowed = new LinkedHashMap<>();
        for (int row : new int[] {3, 1}) { // two of the four rows, out of order; rows 0 and 2 are left alone
            BitSet b = new BitSet();
            for (int t = 0; t < vocab; t++) {
                if (r.nextInt(5) == 0 || t == vocab - 1) {
                    b.set(t);
                }
            }
            allowed.put(row, b);
        }
        FloatArray logits = TensorAssert.random(rows * vocab, 4f, 9);
        for (Device device : devices) {
            DeviceBuffer buf = device.upload(logits);
            try (StepArrays arrays = new StepArrays(device)) {
                LogitPenalties.maskToAllowed(device, arrays, buf, allowed, vocab);
            }
            FloatArray out = (FloatArray) device.download(buf);
            for (int row = 0; row < rows; row++) {
                for (int t = 0; t < vocab; t++) {
                    BitSet b = allowed.get(row);
                    float expected = b == null || b.get(t) ? logits.get(row * vocab + t) : Float.NEGATIVE_INFINITY;
                    assertEquals(expected, out.get(row * vocab + t), device.id() + " row " + row + " token " + t);
                }
            }
        }
    }

    @Test
    void compilesToCuda() {
        CudaCheck.assertCompiles(KernelCompiler.compile(LogitPenalties.MASK, Dialect.CUDA, null).source(), "constraint mask kernel");
    }
}
