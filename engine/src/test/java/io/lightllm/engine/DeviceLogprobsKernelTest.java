package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The logprob kernel compiled for every accelerator gives the JVM's answer. */
class DeviceLogprobsKernelTest {

    @Test
    void acceleratorsMatchTheJvm() {
        int rows = 3, vocab = 1000, top = SamplingParams.MAX_LOGPROBS;
        FloatArray logits = TensorAssert.random(rows * vocab, 8f, 5);
        logits.set(vocab + 17, logits.get(vocab + 3)); // a tie in row 1
        int[] chosen = {7, 3, 999};
        int[] counts = {0, 5, top};
        List<Device> devices = TestDevices.jvmAndAcceleratorDevices();
        float[][] logprobs = new float[devices.size()][];
        int[][] ids = new int[devices.size()][];
        for (int d = 0; d < devices.size(); d++) {
            Device device = devices.get(d);
            DeviceBuffer chosenLp = device.allocate(DType.F32, rows), topIds = device.allocate(DType.I32, rows * top);
            DeviceBuffer topLp = device.allocate(DType.F32, rows * top), chosenRank = device.allocate(DType.I32, rows);
            device.launch(DeviceLogprobs.CHOSEN_AND_TOP, Grid.groups(rows, d == 0 ? 1 : 64), device.upload(logits),
                    device.upload(IntArray.fromArray(chosen)), device.upload(IntArray.fromArray(counts)), chosenLp, chosenRank, topIds, topLp, vocab);
            int[] ranks = ((IntArray) device.download(chosenRank)).toArray();
            for (int r = 0; r < rows; r++) {
                int above = 0;
                for (int i = 0; i < vocab; i++) {
                    above += logits.get(r * vocab + i) > logits.get(r * vocab + chosen[r]) ? 1 : 0;
                }
                assertEquals(above + 1, ranks[r], device.id() + " rank of row " + r);
            }
            FloatArray a = (FloatArray) device.download(chosenLp), b = (FloatArray) device.download(topLp);
            // only the first counts[r] entries of row r are written
            List<Float> lp = new ArrayList<>();
            List<Integer> id = new ArrayList<>();
            int[] allIds = ((IntArray) device.download(topIds)).toArray();
            for (int r = 0; r < rows; r++) {
                lp.add(a.get(r));
                for (int k = 0; k < counts[r]; k++) {
                    lp.add(b.get(r * top + k));
                    id.add(allIds[r * top + k]);
                }
            }
            logprobs[d] = new float[lp.size()];
            for (int i = 0; i < lp.size(); i++) {
                logprobs[d][i] = lp.get(i);
            }
            ids[d] = id.stream().mapToInt(Integer::intValue).toArray();
        }
        for (int d = 1; d < devices.size(); d++) {
            assertArrayEquals(ids[0], ids[d], devices.get(d).id() + " top ids");
            // log-sum-exp over 1000 values summed in another order, exp differing in the last ulp: 1e-5 absolute
            assertArrayEquals(logprobs[0], logprobs[d], 1e-5f, devices.get(d).id() + " logprobs");
        }
    }

    @Test
    void compilesToCuda() {
        CudaCheck.assertCompiles(KernelCompiler.compile(DeviceLogprobs.CHOSEN_AND_TOP, Dialect.CUDA, null).source(), "logprobs kernel");
    }
}
