package io.lightllm.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link BatchInvariance}: with it on, a matmul row and a request's attention come out bit for bit
 * the same alone as inside any batch, and a prompt's last tokens the same prefilled after a cached
 * prefix as prefilled whole. On the JVM (its Vector API overrides installed, which the mode must
 * bypass) and every accelerator; on CUDA the tensor-core kernels and cuBLAS are among what is bypassed.
 */
class BatchInvarianceTest {
    private final List<Device> devices = new ArrayList<>();

    /** CUDA's way of splitting decode attention (short splits, as many as fill the device) on every backend here. */
    private static final String[] CUDA_LIKE_SPLITS = {"attention.split_len=16", "attention.decode_units=64"};

    @BeforeEach
    void on() {
        System.setProperty(BatchInvariance.PROPERTY, "true");
        for (String backend : new String[] {"jvm", "opencl"}) {
            for (String tuning : CUDA_LIKE_SPLITS) {
                String[] kv = tuning.split("=");
                System.setProperty("lightllm.tuning." + backend + "." + kv[0], kv[1]);
            }
        }
        io.lightllm.tornado.jvm.JvmDevice jvm = new io.lightllm.tornado.jvm.JvmDevice(2);
        KernelLibrary.installOverrides(jvm);
        devices.add(jvm);
        for (String id : TestDevices.accelerators()) {
            Device d = Devices.get(id);
            KernelLibrary.installOverrides(d);
            devices.add(d);
        }
    }

    @AfterEach
    void off() {
        System.clearProperty(BatchInvariance.PROPERTY);
        for (String backend : new String[] {"jvm", "opencl"}) {
            for (String tuning : CUDA_LIKE_SPLITS) {
                System.clearProperty("lightllm.tuning." + backend + "." + tuning.split("=")[0]);
            }
        }
        devices.getFirst().close();
    }

    /** Rows 0, 5 and 36 of a 37-row product (and of 300 rows), each computed alone: bf16, f16, f32, int8 and int4 weights. */
    @Test
    void aMatmulRowIsTheSameAloneAndInABatch() {
        int n = 40, k = 256;
        for (Device device : devices) {
            for (String weights : new String[] {"BF16", "F16", "F32", "int8", "int4"}) {
                for (int m : new int[] {37, 300}) {
                    FloatArray a = TensorAssert.random(m * k, 1f, 3);
                    DeviceBuffer w = weights(device, weights, n, k);
                    DeviceBuffer scales = device.upload(TensorAssert.random(n, 0.01f, 4));
                    DeviceBuffer all = device.allocate(DType.F32, (long) m * n);
                    multiply(device, weights, all, device.upload(a), w, scales, m, n, k);
                    FloatArray batch = (FloatArray) device.download(all);
                    for (int row : new int[] {0, 5, 36}) {
                        FloatArray one = FloatArray.allocate(k);
                        for (int i = 0; i < k; i++) {
                            one.set(i, a.get(row * k + i));
                        }
                        DeviceBuffer out = device.allocate(DType.F32, n);
                        multiply(device, weights, out, device.upload(one), w, scales, 1, n, k);
                        FloatArray alone = (FloatArray) device.download(out);
                        for (int j = 0; j < n; j++) {
                            assertEquals(Float.floatToRawIntBits(batch.get(row * n + j)), Float.floatToRawIntBits(alone.get(j)),
                                    device.id() + " " + weights + " row " + row + " of " + m + ", column " + j);
                        }
                    }
                }
            }
        }
    }

    private static DeviceBuffer weights(Device device, String kind, int n, int k) {
        return switch (kind) {
            case "int8" -> device.upload(Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 5), n, k).weights());
            case "int4" -> device.upload(QuantFormat.quantizeInt4(TensorAssert.random(n * k, 0.5f, 6), n, k));
            default -> device.upload(TensorAssert.fill(NativeArray.allocate(DType.valueOf(kind), n * k), 0.5f, 7));
        };
    }

    private static void multiply(Device device, String kind, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, int m,
            int n, int k) {
        switch (kind) {
            case "int8" -> Matmul.launchMatmulInt8(device, out, a, w, scales, null, m, n, k);
            case "int4" -> QuantMatmul.launch(device, out, a, w, QuantFormat.INT4, null, m, n, k);
            default -> Matmul.launchMatmul(device, out, a, w, null, m, n, k);
        }
    }

    /**
     * Decode: each of four requests (5 to 300 tokens, GQA) alone against the four together, over f16
     * and int8 pools; the batch's longest request sets no other request's splits.
     */
    @Test
    void aRequestsDecodeAttentionIsTheSameAloneAndInABatch() {
        for (Device device : devices) {
            for (boolean int8 : new boolean[] {false, true}) {
                KvFixture kv = new KvFixture(new int[] {37, 5, 300, 80}, 8, 2, 64, int8 ? DType.F32 : DType.F16, false, 81);
                Attention.KvView pool = int8 ? kv.quantise().upload(device) : AttentionTest.view(device, kv);
                Attention.Heads heads = AttentionTest.heads(device, kv);
                FloatArray q = TensorAssert.random(kv.batch * kv.qHeads * kv.headDim, 1f, 82);
                DeviceBuffer out = device.allocate(DType.F32, q.getSize());
                Attention.launchDecodeAttention(device, out, device.upload(q), pool, AttentionTest.table(device, kv), heads,
                        new Attention.DecodeBatch(device.upload(IntArray.fromArray(kv.tokens)), kv.batch, 300), null);
                FloatArray together = (FloatArray) device.download(out);
                int rowSize = kv.qHeads * kv.headDim;
                for (int b = 0; b < kv.batch; b++) {
                    FloatArray qb = FloatArray.allocate(rowSize);
                    for (int i = 0; i < rowSize; i++) {
                        qb.set(i, q.get(b * rowSize + i));
                    }
                    DeviceBuffer one = device.allocate(DType.F32, rowSize);
                    Attention.TokenTableView row = new Attention.TokenTableView(device.upload(kv.reqToToken),
                            device.upload(IntArray.fromArray(kv.reqRows.get(b))), kv.maxLen);
                    Attention.launchDecodeAttention(device, one, device.upload(qb), pool, row, heads,
                            new Attention.DecodeBatch(device.upload(IntArray.fromArray(kv.tokens[b])), 1, kv.tokens[b]), null);
                    FloatArray alone = (FloatArray) device.download(one);
                    for (int i = 0; i < rowSize; i++) {
                        assertEquals(Float.floatToRawIntBits(together.get(b * rowSize + i)), Float.floatToRawIntBits(alone.get(i)),
                                device.id() + (int8 ? " int8" : " f16") + " pool, request " + b + " element " + i);
                    }
                }
            }
        }
    }

    /** Prefill: a 90-token prompt whole, and its last 30 tokens after the first 60 were cached, give the same last 30 rows. */
    @Test
    void aPromptsLastTokensAreTheSameAfterACachedPrefix() {
        for (Device device : devices) {
            KvFixture kv = new KvFixture(new int[] {90}, 8, 2, 64, DType.F16, false, 83);
            Attention.Heads heads = AttentionTest.heads(device, kv);
            int rowSize = kv.qHeads * kv.headDim;
            FloatArray q = TensorAssert.random(90 * rowSize, 1f, 84);
            DeviceBuffer whole = device.allocate(DType.F32, q.getSize());
            Attention.launchPrefillAttention(device, whole, device.upload(q), AttentionTest.view(device, kv), AttentionTest.table(device, kv), heads,
                    new Attention.PrefillBatch(device.upload(IntArray.fromArray(0)), device.upload(IntArray.fromArray(90)),
                            device.upload(IntArray.fromArray(0)), 1, 90, 90));
            FloatArray tail = FloatArray.allocate(30 * rowSize);
            for (int i = 0; i < tail.getSize(); i++) {
                tail.set(i, q.get(60 * rowSize + i));
            }
            DeviceBuffer cached = device.allocate(DType.F32, tail.getSize());
            Attention.launchPrefillAttention(device, cached, device.upload(tail), AttentionTest.view(device, kv), AttentionTest.table(device, kv),
                    heads, new Attention.PrefillBatch(device.upload(IntArray.fromArray(0)), device.upload(IntArray.fromArray(30)),
                            device.upload(IntArray.fromArray(60)), 1, 30, 30));
            FloatArray a = (FloatArray) device.download(whole), b = (FloatArray) device.download(cached);
            for (int i = 0; i < tail.getSize(); i++) {
                assertEquals(Float.floatToRawIntBits(a.get(60 * rowSize + i)), Float.floatToRawIntBits(b.get(i)), device.id() + " element " + i);
            }
        }
    }
}
