package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Writes into the Token Attention KV pool, LightLLM's layout: a pool of [slots, heads, headDim]
 * where each token owns one slot, chosen by the memory manager. New K (or V) of T tokens,
 * f32 [T, heads, headDim], goes to slots destIndex[T]. Pools hold f32, f16 or bf16
 * ({@link #COPY_TO_POOL}), or int8 with one f32 scale per slot and head ({@link #COPY_TO_POOL_INT8}).
 * A slot index outside [0, slots) cannot be reported from a kernel: its token is skipped, so
 * it never writes outside the pool.
 */
public final class KvCache {
    public static final KernelRef COPY_TO_POOL = KernelRef.of(KvCache.class, "copyToPool");
    public static final KernelRef COPY_TO_POOL_INT8 = KernelRef.of(KvCache.class, "copyToPoolInt8");
    public static final KernelRef GATHER_FROM_POOL = KernelRef.of(KvCache.class, "gatherFromPool");
    public static final KernelRef DEQUANTIZE_INT8 = KernelRef.of(KvCache.class, "dequantizeInt8");

    private KvCache() {
    }

    /** pool[destIndex[t]] = src[t], each a row of rowSize = heads * headDim, rounded to the pool's type. */
    public static void copyToPool(NativeArray pool, FloatArray src, IntArray destIndex, int tokens, int rowSize, int slots) {
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int j = 0; j < rowSize; j++) {
                int slot = destIndex.get(t);
                if (slot >= 0 && slot < slots) {
                    pool.setFloat(slot * rowSize + j, src.get(t * rowSize + j));
                }
            }
        }
    }

    /**
     * Symmetric int8 quantisation per token and head: scale = max|x| / 127 (stored in
     * scales[slot * heads + h]), q = round(x / scale) clamped to [-127, 127], rounding half away
     * from zero. An all-zero head gets scale 0 and q = 0. One work-group per (token, head):
     * group g is token g / heads, head g % heads.
     */
    public static void copyToPoolInt8(KernelContext ctx, ByteArray pool, FloatArray scales, FloatArray src, IntArray destIndex, int heads,
            int headDim, int slots) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        int t = ctx.groupIdx / heads;
        int h = ctx.groupIdx % heads;
        int from = (t * heads + h) * headDim;
        float localMax = 0f;
        for (int d = ctx.localIdx; d < headDim; d += ctx.localGroupSizeX) {
            localMax = KMath.max(localMax, KMath.abs(src.get(from + d)));
        }
        float scale = GroupReduce.max(ctx, scratch, localMax) / 127f;
        int slot = destIndex.get(t);
        if (slot >= 0 && slot < slots) {
            int to = (slot * heads + h) * headDim;
            for (int d = ctx.localIdx; d < headDim; d += ctx.localGroupSizeX) {
                float q = 0f;
                if (scale > 0f) {
                    q = KMath.min(KMath.max(KMath.round(src.get(from + d) / scale), -127f), 127f);
                }
                pool.set(to + d, (byte) (int) q);
            }
            if (ctx.localIdx == 0) {
                scales.set(slot * heads + h, scale);
            }
        }
    }

    /** out[c] = pool[slotIndex[c]] as f32, rows of rowSize (f32, f16 or bf16 pools); a slot out of range reads as NaN. */
    public static void gatherFromPool(FloatArray out, NativeArray pool, IntArray slotIndex, int count, int rowSize, int slots) {
        for (@Parallel int c = 0; c < count; c++) {
            for (@Parallel int j = 0; j < rowSize; j++) {
                int slot = slotIndex.get(c);
                float v = Float.NaN;
                if (slot >= 0 && slot < slots) {
                    v = pool.getFloat(slot * rowSize + j);
                }
                out.set(c * rowSize + j, v);
            }
        }
    }

    /**
     * out[c, h, d] = pool[slotIndex[c], h, d] * scales[slotIndex[c], h]: the int8 pool read back
     * as f32; a slot out of range reads as NaN.
     */
    public static void dequantizeInt8(FloatArray out, ByteArray pool, FloatArray scales, IntArray slotIndex, int count, int heads,
            int headDim, int slots) {
        for (@Parallel int c = 0; c < count; c++) {
            for (@Parallel int j = 0; j < heads * headDim; j++) {
                int slot = slotIndex.get(c);
                float v = Float.NaN;
                if (slot >= 0 && slot < slots) {
                    v = pool.get(slot * heads * headDim + j) * scales.get(slot * heads + j / headDim);
                }
                out.set(c * heads * headDim + j, v);
            }
        }
    }

    // ---- host launchers -----------------------------------------------------------

    /** Copies src [tokens, heads, headDim] into pool slots destIndex[tokens] of a f32/f16/bf16 pool [slots, heads, headDim]. */
    public static void launchCopyToPool(Device device, DeviceBuffer pool, DeviceBuffer src, DeviceBuffer destIndex, int tokens, int heads,
            int headDim) {
        int rowSize = checkRow(heads, headDim);
        int slots = slots(pool, rowSize);
        checkTokens(src, destIndex, tokens, rowSize);
        device.launch(COPY_TO_POOL, Grid.of(tokens, rowSize), pool, src, destIndex, tokens, rowSize, slots);
    }

    /** Quantises src [tokens, heads, headDim] into an int8 pool [slots, heads, headDim] with scales [slots, heads]. */
    public static void launchCopyToPoolInt8(Device device, DeviceBuffer pool, DeviceBuffer scales, DeviceBuffer src, DeviceBuffer destIndex,
            int tokens, int heads, int headDim) {
        int rowSize = checkRow(heads, headDim);
        int slots = slots(pool, rowSize);
        Shapes.atLeast(scales, (long) slots * heads, "scales");
        checkTokens(src, destIndex, tokens, rowSize);
        device.launch(COPY_TO_POOL_INT8, Grid.groups((long) tokens * heads, GroupReduce.rowLocalSize(device)), pool, scales, src, destIndex,
                heads, headDim, slots);
    }

    /** Reads pool slots slotIndex[count] of a f32/f16/bf16 pool into f32 out [count, heads, headDim]. */
    public static void launchGatherFromPool(Device device, DeviceBuffer out, DeviceBuffer pool, DeviceBuffer slotIndex, int count, int heads,
            int headDim) {
        int rowSize = checkRow(heads, headDim);
        int slots = slots(pool, rowSize);
        checkTokens(out, slotIndex, count, rowSize);
        device.launch(GATHER_FROM_POOL, Grid.of(count, rowSize), out, pool, slotIndex, count, rowSize, slots);
    }

    /** Reads and dequantises slots slotIndex[count] of an int8 pool into f32 out [count, heads, headDim]. */
    public static void launchDequantizeInt8(Device device, DeviceBuffer out, DeviceBuffer pool, DeviceBuffer scales, DeviceBuffer slotIndex,
            int count, int heads, int headDim) {
        int rowSize = checkRow(heads, headDim);
        int slots = slots(pool, rowSize);
        Shapes.atLeast(scales, (long) slots * heads, "scales");
        checkTokens(out, slotIndex, count, rowSize);
        device.launch(DEQUANTIZE_INT8, Grid.of(count, rowSize), out, pool, scales, slotIndex, count, heads, headDim, slots);
    }

    private static int checkRow(int heads, int headDim) {
        Shapes.positive(heads, "heads");
        Shapes.positive(headDim, "headDim");
        return Shapes.intIndexable((long) heads * headDim, "a pool row");
    }

    private static int slots(DeviceBuffer pool, int rowSize) {
        Shapes.intIndexable(pool.elements(), "the KV pool");
        if (pool.elements() % rowSize != 0) {
            throw new IllegalArgumentException("KV pool of " + pool.elements() + " elements is not a whole number of rows of " + rowSize);
        }
        return (int) (pool.elements() / rowSize);
    }

    private static void checkTokens(DeviceBuffer rows, DeviceBuffer index, int tokens, int rowSize) {
        Shapes.positive(tokens, "tokens");
        Shapes.intIndexable((long) tokens * rowSize, "the token rows");
        Shapes.atLeast(rows, (long) tokens * rowSize, "the token rows");
        Shapes.atLeast(index, tokens, "the slot index");
    }
}
