package io.lightllm.models.llama;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Int8 KV for attention kernels that read f32 pools: before a layer's attention, the K (or V)
 * of exactly the tokens the step's requests attend to (their table rows up to seqLen) is
 * dequantised into an f32 pool of one layer, at the same slots. The attention kernels and the
 * request table are then used unchanged; the int8 pool keeps every layer, the f32 copy only
 * the layer being computed.
 */
public final class Int8KvReader {
    public static final KernelRef DEQUANTIZE_REQUESTS = KernelRef.of(Int8KvReader.class, "dequantizeRequests");

    private Int8KvReader() {
    }

    /**
     * out[slot, h, d] = pool[slot, h, d] * scales[slot, h] for every slot = reqToToken[reqRows[r],
     * i], i < seqLens[r]; other slots of out are left as they are. Slots shared by several
     * requests (n > 1) are written with the same value by each. A slot out of range is skipped.
     */
    public static void dequantizeRequests(FloatArray out, ByteArray pool, FloatArray scales, IntArray reqToToken, IntArray reqRows,
            IntArray seqLens, int requests, int maxSeqLen, int maxLen, int heads, int headDim, int slots) {
        for (@Parallel int r = 0; r < requests; r++) {
            for (@Parallel int i = 0; i < maxSeqLen; i++) {
                for (@Parallel int j = 0; j < heads * headDim; j++) {
                    if (i < seqLens.get(r)) {
                        int slot = reqToToken.get(reqRows.get(r) * maxLen + i);
                        if (slot >= 0 && slot < slots) {
                            int at = slot * heads * headDim + j;
                            out.set(at, pool.get(at) * scales.get(slot * heads + j / headDim));
                        }
                    }
                }
            }
        }
    }

    /** Dequantises the tokens of {@code requests} table rows (seqLens after this step) from an int8 pool into f32 {@code out} of the same shape. */
    public static void launchDequantizeRequests(Device device, DeviceBuffer out, DeviceBuffer pool, DeviceBuffer scales,
            DeviceBuffer reqToToken, DeviceBuffer reqRows, DeviceBuffer seqLens, int requests, int maxSeqLen, int maxLen, int heads,
            int headDim) {
        long rowSize = (long) heads * headDim;
        if (pool.elements() % rowSize != 0 || out.elements() < pool.elements() || scales.elements() < pool.elements() / headDim) {
            throw new IllegalArgumentException("int8 pool of " + pool.elements() + " elements, scales of " + scales.elements()
                    + " and f32 pool of " + out.elements() + " do not fit rows of " + heads + " x " + headDim);
        }
        if (maxSeqLen > maxLen || reqRows.elements() < requests || seqLens.elements() < requests) {
            throw new IllegalArgumentException("maxSeqLen " + maxSeqLen + " over the table's rows of " + maxLen + ", or fewer than "
                    + requests + " request rows / lengths");
        }
        int slots = Math.toIntExact(pool.elements() / rowSize);
        device.launch(DEQUANTIZE_REQUESTS, Grid.of(requests, maxSeqLen, (int) rowSize), out, pool, scales, reqToToken, reqRows, seqLens,
                requests, maxSeqLen, maxLen, heads, headDim, slots);
    }
}
