package io.lightllm.models.infer;

import io.lightllm.kernels.KvCache;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Token Attention's KV memory: one pool of token slots per model. Slot s holds, for every
 * layer, the K and V of one token ({@code [slots, kvHeads, headDim]} per layer), so a request
 * uses exactly as many slots as it has tokens: no padding, no blocks, no waste. Slots are
 * reference counted so that requests sharing a prompt ({@code n > 1}) share its slots.
 *
 * <p>With {@link DType#I8} or {@link DType#F8_E4M3} the pool stores K and V as int8 or fp8 e4m3
 * codes with one f32 scale per token and head ({@code [slots, kvHeads]}; {@link KvCache#hasScales}).
 */
public final class TokenKvPool implements AutoCloseable {
    private final java.util.List<AutoCloseable> companions = new java.util.ArrayList<>();
    private final Device device;
    private final DType dtype;
    private final int layers;
    private final int kvHeads;
    private final int headDim;
    private final int capacity;
    private final List<DeviceBuffer> keys = new ArrayList<>();
    private final List<DeviceBuffer> values = new ArrayList<>();
    private final List<DeviceBuffer> keyScales = new ArrayList<>();
    private final List<DeviceBuffer> valueScales = new ArrayList<>();
    private final int[] freeSlots;
    private final int[] refCounts;
    private int freeCount;
    private int highWater;

    public TokenKvPool(Device device, int layers, int kvHeads, int headDim, int capacity, DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F16 && !KvCache.hasScales(dtype)) {
            throw new IllegalArgumentException("KV pool dtype must be F32, F16, I8 or F8_E4M3, not " + dtype);
        }
        if (capacity <= 0) {
            throw new IllegalArgumentException("KV pool needs at least one slot");
        }
        this.device = device;
        this.dtype = dtype;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.capacity = capacity;
        // one slot more than the capacity: the padding slot, never handed out ({@link #paddingSlot})
        long elements = (long) (capacity + 1) * kvHeads * headDim;
        if (elements > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a KV pool of " + capacity + " slots (and a padding slot) of " + kvHeads + " x " + headDim
                    + " elements is past what kernels index with int in a layer: at most " + (Integer.MAX_VALUE / ((long) kvHeads * headDim) - 1)
                    + " slots");
        }
        for (int l = 0; l < layers; l++) {
            keys.add(device.allocate(dtype, elements));
            values.add(device.allocate(dtype, elements));
            if (KvCache.hasScales(dtype)) {
                keyScales.add(device.allocate(DType.F32, (long) (capacity + 1) * kvHeads));
                valueScales.add(device.allocate(DType.F32, (long) (capacity + 1) * kvHeads));
            }
        }
        this.freeSlots = new int[capacity];
        this.refCounts = new int[capacity];
        // hand out low slots first: easier to read in tests and dumps
        for (int i = 0; i < capacity; i++) {
            freeSlots[i] = capacity - 1 - i;
        }
        this.freeCount = capacity;
    }

    /** Bytes of KV memory one token takes across all layers (what sizing from free memory divides by). */
    public static long bytesPerToken(int layers, int kvHeads, int headDim, DType dtype) {
        long perLayer = 2L * kvHeads * headDim * dtype.bytes();
        if (KvCache.hasScales(dtype)) {
            perLayer += 2L * kvHeads * Float.BYTES;
        }
        return perLayer * layers;
    }

    /** {@code n} free slots, or null (and nothing taken) when fewer are free. */
    public synchronized int[] alloc(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("negative slot count " + n);
        }
        if (n > freeCount) {
            return null;
        }
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int s = freeSlots[--freeCount];
            refCounts[s] = 1;
            out[i] = s;
        }
        highWater = Math.max(highWater, capacity - freeCount);
        return out;
    }

    /** Adds a reference to each slot (a second request sharing them). */
    public synchronized void retain(int[] slots) {
        for (int s : slots) {
            if (refCounts[s] <= 0) {
                throw new IllegalStateException("slot " + s + " is not allocated");
            }
            refCounts[s]++;
        }
    }

    /** Drops a reference to each slot; slots without references become free. */
    public synchronized void free(int[] slots) {
        for (int s : slots) {
            if (refCounts[s] <= 0) {
                throw new IllegalStateException("slot " + s + " freed twice");
            }
            if (--refCounts[s] == 0) {
                freeSlots[freeCount++] = s;
            }
        }
    }

    public synchronized boolean isAllocated(int slot) {
        return refCounts[slot] > 0;
    }

    public synchronized int freeSlots() {
        return freeCount;
    }

    public synchronized int usedSlots() {
        return capacity - freeCount;
    }

    /** The most slots ever in use at once. */
    public synchronized int highWater() {
        return highWater;
    }

    public int capacity() {
        return capacity;
    }

    /**
     * A slot past the capacity that no request gets: the K and V of a recorded decode step's padding requests
     * (DecoderModel pads a decode batch to a recorded size, as vLLM pads to its CUDA graph capture sizes) go there.
     */
    public int paddingSlot() {
        return capacity;
    }

    public DType dtype() {
        return dtype;
    }

    public int layers() {
        return layers;
    }

    public int kvHeads() {
        return kvHeads;
    }

    public int headDim() {
        return headDim;
    }

    public Device device() {
        return device;
    }

    public DeviceBuffer keys(int layer) {
        return keys.get(layer);
    }

    public DeviceBuffer values(int layer) {
        return values.get(layer);
    }

    /** Per token-and-head scales of an int8 or fp8 pool (absent for other dtypes). */
    public DeviceBuffer keyScales(int layer) {
        return keyScales.get(layer);
    }

    public DeviceBuffer valueScales(int layer) {
        return valueScales.get(layer);
    }

    /**
     * Closes {@code companion} with this object: what a tensor-parallel model keeps on its other
     * ranks' devices beside this rank-0 object (their pools or copies of the table).
     */
    public synchronized void closeWith(AutoCloseable companion) {
        companions.add(companion);
    }

    @Override
    public void close() {
        keys.forEach(DeviceBuffer::close);
        for (AutoCloseable c : companions) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing a companion of " + this + " failed", e);
            }
        }
        values.forEach(DeviceBuffer::close);
        keyScales.forEach(DeviceBuffer::close);
        valueScales.forEach(DeviceBuffer::close);
    }
}
