package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.Float8Array;
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
 * ({@link #COPY_TO_POOL}), or codes with one f32 scale per slot and head ({@link #hasScales}):
 * int8 ({@link #COPY_TO_POOL_INT8}) or fp8 e4m3 ({@link #COPY_TO_POOL_FP8}), which share the
 * quantisation but for the codes' range and rounding. {@link #SPLIT_QKV} is a fused q/k/v projection's
 * epilogue: it splits the projection's rows, rotates q and k, and writes k and v to a pool of values in
 * the same launch.
 * A slot index outside [0, slots) cannot be reported from a kernel: its token is skipped, so
 * it never writes outside the pool.
 */
public final class KvCache {
    public static final KernelRef COPY_TO_POOL = KernelRef.of(KvCache.class, "copyToPool");
    public static final KernelRef SPLIT_QKV = KernelRef.of(KvCache.class, "splitQkv");
    public static final KernelRef COPY_TO_POOL_INT8 = KernelRef.of(KvCache.class, "copyToPoolInt8");
    public static final KernelRef COPY_TO_POOL_FP8 = KernelRef.of(KvCache.class, "copyToPoolFp8");
    public static final KernelRef GATHER_FROM_POOL = KernelRef.of(KvCache.class, "gatherFromPool");
    public static final KernelRef DEQUANTIZE_INT8 = KernelRef.of(KvCache.class, "dequantizeInt8");
    public static final KernelRef DEQUANTIZE_FP8 = KernelRef.of(KvCache.class, "dequantizeFp8");

    /** Largest int8 code: symmetric, so -128 is never written. */
    static final float INT8_MAX = 127f;

    private KvCache() {
    }

    /**
     * Whether a pool of {@code dtype} holds codes with one f32 scale per slot and head (int8 and
     * fp8 e4m3) rather than the values themselves (f32, f16, bf16).
     */
    public static boolean hasScales(DType dtype) {
        return dtype == DType.I8 || dtype == DType.F8_E4M3;
    }

    /**
     * The epilogue of a fused q/k/v projection, one launch where a decode step had five (two more
     * GEMVs, the rotary kernel, two pool copies): qkv [tokens, (qHeads + 2 kvHeads) headDim], each
     * token's q heads, then k heads, then v heads, is split into q [tokens, qHeads, headDim], k and v
     * [tokens, kvHeads, headDim]; q and k are rotated on the way when {@code rotaryDim} > 0
     * ({@link Rotary#rotaryEmbedding}'s arithmetic, so the same bits), and with {@code toPool} k and v
     * are also written to the f32/f16/bf16 pools at slots destIndex[t] (a slot outside [0, slots) is
     * skipped). q's elements are times {@code queryScale} (1: f32 rows as they are; an f16 q: the prefill attention's
     * operand, {@link Attention#prefillQueryType}). A work-item per (token, head of q, k or v, pair of elements): a
     * rotated pair, or, past rotaryDim, a pair passed through.
     */
    public static void splitQkv(FloatArray qkv, NativeArray q, FloatArray k, FloatArray v, NativeArray kPool, NativeArray vPool, boolean toPool,
            IntArray destIndex, IntArray positions, FloatArray invFreq, int tokens, int qHeads, int kvHeads, int headDim, int rotaryDim,
            boolean interleaved, float attentionScaling, float queryScale, int slots) {
        int width = (qHeads + 2 * kvHeads) * headDim;
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int h = 0; h < qHeads + 2 * kvHeads; h++) {
                for (@Parallel int i = 0; i < headDim / 2; i++) {
                    float x0 = qkv.get(t * width + h * headDim + pairFirst(i, rotaryDim, interleaved));
                    float x1 = qkv.get(t * width + h * headDim + pairSecond(i, rotaryDim, interleaved));
                    storePair(x0, x1, t, h, i, q, k, v, kPool, vPool, toPool, destIndex, positions, invFreq, qHeads, kvHeads, headDim, rotaryDim,
                            interleaved, attentionScaling, queryScale, slots);
                }
            }
        }
    }

    /**
     * The element of a head that pair i of {@link #splitQkv} starts at: within rotaryDim the pairs the rotation turns
     * together (i and i + rotaryDim / 2, or 2i and 2i + 1 interleaved), past it adjacent pairs.
     */
    public static int pairFirst(int i, int rotaryDim, boolean interleaved) {
        int half = rotaryDim / 2;
        return i < half ? (interleaved ? 2 * i : i) : rotaryDim + 2 * (i - half);
    }

    /** The other element of pair i ({@link #pairFirst}). */
    public static int pairSecond(int i, int rotaryDim, boolean interleaved) {
        int half = rotaryDim / 2;
        return i < half ? (interleaved ? 2 * i + 1 : i + half) : rotaryDim + 2 * (i - half) + 1;
    }

    /**
     * Token t's pair i of head h of a q/k/v projection (x0 and x1, its elements {@link #pairFirst} and {@link #pairSecond}),
     * rotated where it lies in a q or k head's rotary part, into q, k or v, and k and v with {@code toPool} into the
     * pools at slot destIndex[t] as well: {@link #splitQkv}'s work-item.
     */
    static void storePair(float x0, float x1, int t, int h, int i, NativeArray q, FloatArray k, FloatArray v, NativeArray kPool, NativeArray vPool,
            boolean toPool, IntArray destIndex, IntArray positions, FloatArray invFreq, int qHeads, int kvHeads, int headDim, int rotaryDim,
            boolean interleaved, float attentionScaling, float queryScale, int slots) {
        float cos = 1f;
        float sin = 0f;
        if (rotates(h, i, qHeads, kvHeads, rotaryDim)) {
            float angle = positions.get(t) * invFreq.get(i);
            cos = KMath.cos(angle) * attentionScaling;
            sin = KMath.sin(angle) * attentionScaling;
        }
        storeRotated(x0, x1, cos, sin, t, h, i, q, k, v, kPool, vPool, toPool, destIndex, qHeads, kvHeads, headDim, rotaryDim, interleaved,
                queryScale, slots);
    }

    /** Whether pair i of head h turns: in a q or k head (not v) and within rotaryDim. */
    public static boolean rotates(int h, int i, int qHeads, int kvHeads, int rotaryDim) {
        return i < rotaryDim / 2 && h < qHeads + kvHeads;
    }

    /**
     * {@link #storePair} with the pair's cos and sin given (the angle's, times the attention scaling; used only where
     * {@link #rotates}): the JVM's override computes them once per token and pair for all heads.
     */
    public static void storeRotated(float x0, float x1, float cos, float sin, int t, int h, int i, NativeArray q, FloatArray k, FloatArray v,
            NativeArray kPool, NativeArray vPool, boolean toPool, IntArray destIndex, int qHeads, int kvHeads, int headDim, int rotaryDim,
            boolean interleaved, float queryScale, int slots) {
        int rowSize = kvHeads * headDim;
        int first = pairFirst(i, rotaryDim, interleaved);
        int second = pairSecond(i, rotaryDim, interleaved);
        float y0 = x0;
        float y1 = x1;
        if (rotates(h, i, qHeads, kvHeads, rotaryDim)) {
            y0 = x0 * cos - x1 * sin;
            y1 = x1 * cos + x0 * sin;
        }
        int slot = destIndex.get(t);
        boolean store = toPool && slot >= 0 && slot < slots;
        if (h < qHeads) {
            int base = (t * qHeads + h) * headDim;
            q.setFloat(base + first, y0 * queryScale);
            q.setFloat(base + second, y1 * queryScale);
        } else if (h < qHeads + kvHeads) {
            int at = (h - qHeads) * headDim;
            k.set(t * rowSize + at + first, y0);
            k.set(t * rowSize + at + second, y1);
            if (store) {
                kPool.setFloat(slot * rowSize + at + first, y0);
                kPool.setFloat(slot * rowSize + at + second, y1);
            }
        } else {
            int at = (h - qHeads - kvHeads) * headDim;
            v.set(t * rowSize + at + first, y0);
            v.set(t * rowSize + at + second, y1);
            if (store) {
                vPool.setFloat(slot * rowSize + at + first, y0);
                vPool.setFloat(slot * rowSize + at + second, y1);
            }
        }
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
        quantizeHead(ctx, scratch, pool, scales, src, destIndex, heads, headDim, slots, INT8_MAX, true);
    }

    /**
     * Symmetric fp8 e4m3 quantisation per token and head, as {@link #copyToPoolInt8} but with
     * scale = max|x| / 448, so that each head's largest element takes e4m3's largest code and the
     * others the whole range below it; q = x / scale rounded to e4m3 (nearest even; a quotient
     * that float rounding puts just past 448 saturates to 448).
     */
    public static void copyToPoolFp8(KernelContext ctx, Float8Array pool, FloatArray scales, FloatArray src, IntArray destIndex, int heads,
            int headDim, int slots) {
        float[] scratch = ctx.allocateFloatLocalArray(GroupReduce.MAX_LOCAL);
        quantizeHead(ctx, scratch, pool, scales, src, destIndex, heads, headDim, slots, KMath.E4M3_MAX, false);
    }

    /**
     * The quantisation the int8 and fp8 kernels share, by the work-group of (token, head)
     * {@code ctx.groupIdx}: the head's max|x| reduced over the group, scale = max / codeMax, and
     * each code x / scale, stored through the pool's own narrowing ({@code setFloat}). Integer
     * codes are rounded (half away from zero) and clamped to +-codeMax first, since storing a
     * float in an int8 array truncates.
     */
    private static void quantizeHead(KernelContext ctx, float[] scratch, NativeArray pool, FloatArray scales, FloatArray src,
            IntArray destIndex, int heads, int headDim, int slots, float codeMax, boolean integerCodes) {
        int t = ctx.groupIdx / heads;
        int h = ctx.groupIdx % heads;
        int from = (t * heads + h) * headDim;
        float localMax = 0f;
        for (int d = ctx.localIdx; d < headDim; d += ctx.localGroupSizeX) {
            localMax = KMath.max(localMax, KMath.abs(src.get(from + d)));
        }
        float scale = GroupReduce.max(ctx, scratch, localMax) / codeMax;
        int slot = destIndex.get(t);
        if (slot >= 0 && slot < slots) {
            int to = (slot * heads + h) * headDim;
            for (int d = ctx.localIdx; d < headDim; d += ctx.localGroupSizeX) {
                float q = 0f;
                if (scale > 0f) {
                    q = src.get(from + d) / scale;
                    if (integerCodes) {
                        q = KMath.min(KMath.max(KMath.round(q), -codeMax), codeMax);
                    }
                }
                pool.setFloat(to + d, q);
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
                out.set(c * heads * headDim + j, dequantized(pool, scales, slotIndex.get(c), j, heads, headDim, slots));
            }
        }
    }

    /** {@link #dequantizeInt8} for an fp8 e4m3 pool. */
    public static void dequantizeFp8(FloatArray out, Float8Array pool, FloatArray scales, IntArray slotIndex, int count, int heads,
            int headDim, int slots) {
        for (@Parallel int c = 0; c < count; c++) {
            for (@Parallel int j = 0; j < heads * headDim; j++) {
                out.set(c * heads * headDim + j, dequantized(pool, scales, slotIndex.get(c), j, heads, headDim, slots));
            }
        }
    }

    /** Element j of the row of {@code slot} of a pool with scales: its code times its head's scale; NaN for a slot outside the pool. */
    private static float dequantized(NativeArray pool, FloatArray scales, int slot, int j, int heads, int headDim, int slots) {
        float v = Float.NaN;
        if (slot >= 0 && slot < slots) {
            v = pool.getFloat(slot * heads * headDim + j) * scales.get(slot * heads + j / headDim);
        }
        return v;
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

    /** {@link #splitQkv}: q, k and v out of a fused projection's rows qkv [tokens, (qHeads + 2 kvHeads) headDim], as {@code split} says. */
    public static void launchSplitQkv(Device device, DeviceBuffer qkv, QkvSplit split, int tokens) {
        Attention.Heads heads = split.heads();
        Shapes.atLeast(qkv, (long) tokens * split.width(), "qkv");
        device.launch(SPLIT_QKV, Grid.of(tokens, heads.qHeads() + 2 * heads.kvHeads(), heads.headDim() / 2), split.kernelArguments(qkv, tokens));
    }

    /**
     * Where a fused q/k/v projection's output goes ({@link #splitQkv}): q [tokens, qHeads, headDim], k and v [tokens, kvHeads,
     * headDim], q and k rotated by {@code rope} (null: not rotated), and k and v also into the f32, f16 or bf16 pools
     * {@code keys} and {@code values} at slots destIndex[t] (keys null: not pooled). q is f32, or f16 for the prefill
     * attention's query operand ({@link Attention#prefillQueryType}: its elements times {@link Attention#queryOperandScale}).
     */
    public record QkvSplit(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer positions, Rotary.Rope rope, DeviceBuffer keys,
            DeviceBuffer values, DeviceBuffer destIndex, Attention.Heads heads) {
        public QkvSplit {
            if (q.dtype() != DType.F32 && q.dtype() != DType.F16) {
                throw new IllegalArgumentException("splitQkv writes f32 queries or the f16 query operand, not " + q.dtype());
            }
            int headDim = heads.headDim();
            if (headDim % 2 != 0 || (rope != null && rope.rotaryDim() > headDim)) {
                throw new IllegalArgumentException("splitting q/k/v needs an even headDim of at least rotaryDim, got " + headDim);
            }
            if (keys != null && (hasScales(keys.dtype()) || values == null || keys.dtype() != values.dtype())) {
                throw new IllegalArgumentException("splitQkv writes f32, f16 or bf16 pools, not " + keys.dtype() + " / "
                        + (values == null ? null : values.dtype()));
            }
        }

        /** Elements of one token's projection: its q, k and v heads. */
        public int width() {
            return (heads.qHeads() + 2 * heads.kvHeads()) * heads.headDim();
        }

        /** {@link #splitQkv}'s arguments, checked for {@code tokens} tokens. */
        Object[] kernelArguments(DeviceBuffer qkv, int tokens) {
            Object[] epilogue = epilogueArguments(tokens);
            Object[] all = new Object[epilogue.length + 2];
            all[0] = qkv;
            System.arraycopy(epilogue, 0, all, 1, SPLIT_ARGUMENTS_BEFORE_TOKENS);
            all[SPLIT_ARGUMENTS_BEFORE_TOKENS + 1] = tokens;
            System.arraycopy(epilogue, SPLIT_ARGUMENTS_BEFORE_TOKENS, all, SPLIT_ARGUMENTS_BEFORE_TOKENS + 2,
                    epilogue.length - SPLIT_ARGUMENTS_BEFORE_TOKENS);
            return all;
        }

        /** Of {@link #epilogueArguments}, those splitQkv takes before its {@code tokens} (q .. invFreq). */
        private static final int SPLIT_ARGUMENTS_BEFORE_TOKENS = 9;

        /**
         * The split's arguments as a q/k/v projection that does its work takes them ({@link StagedQ8Gemv#int4SplitNormed}):
         * splitQkv's without qkv and tokens (q, k, v, the pools, toPool, destIndex, positions, invFreq, then the heads,
         * the rotary's and the pools' sizes), checked for {@code tokens} tokens.
         */
        Object[] epilogueArguments(int tokens) {
            int headDim = heads.headDim();
            int rowSize = checkRow(heads.kvHeads(), headDim);
            boolean toPool = keys != null;
            int slots = toPool ? slots(keys, rowSize) : 0;
            if (toPool) {
                Shapes.atLeast(values, (long) slots * rowSize, "the value pool");
            }
            checkTokens(k, destIndex, tokens, rowSize);
            Shapes.atLeast(v, (long) tokens * rowSize, "v");
            Shapes.atLeast(q, (long) tokens * heads.qHeads() * headDim, "q");
            Shapes.atLeast(positions, tokens, "positions");
            return new Object[] {q, k, v, toPool ? keys : k, toPool ? values : v, toPool, destIndex, positions, rope == null ? q : rope.invFreq(),
                    heads.qHeads(), heads.kvHeads(), headDim, rope == null ? 0 : rope.rotaryDim(), rope != null && rope.interleaved(),
                    rope == null ? 1f : rope.attentionScaling(), q.dtype() == DType.F16 ? Attention.queryOperandScale(heads) : 1f, slots};
        }
    }

    /**
     * Quantises src [tokens, heads, headDim] into a pool of codes [slots, heads, headDim] with scales
     * [slots, heads]: int8 or fp8 e4m3, by the pool's dtype.
     */
    public static void launchCopyToPoolScaled(Device device, DeviceBuffer pool, DeviceBuffer scales, DeviceBuffer src, DeviceBuffer destIndex,
            int tokens, int heads, int headDim) {
        KernelRef kernel = scaledKernel(pool, COPY_TO_POOL_INT8, COPY_TO_POOL_FP8);
        int rowSize = checkRow(heads, headDim);
        int slots = slots(pool, rowSize);
        Shapes.atLeast(scales, (long) slots * heads, "scales");
        checkTokens(src, destIndex, tokens, rowSize);
        device.launch(kernel, Grid.groups((long) tokens * heads, GroupReduce.rowLocalSize(device)), pool, scales, src, destIndex,
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

    /** Reads and dequantises slots slotIndex[count] of an int8 or fp8 pool with scales into f32 out [count, heads, headDim]. */
    public static void launchDequantize(Device device, DeviceBuffer out, DeviceBuffer pool, DeviceBuffer scales, DeviceBuffer slotIndex,
            int count, int heads, int headDim) {
        KernelRef kernel = scaledKernel(pool, DEQUANTIZE_INT8, DEQUANTIZE_FP8);
        int rowSize = checkRow(heads, headDim);
        int slots = slots(pool, rowSize);
        Shapes.atLeast(scales, (long) slots * heads, "scales");
        checkTokens(out, slotIndex, count, rowSize);
        device.launch(kernel, Grid.of(count, rowSize), out, pool, scales, slotIndex, count, heads, headDim, slots);
    }


    /** The int8 or the fp8 kernel, by the pool's dtype. */
    private static KernelRef scaledKernel(DeviceBuffer pool, KernelRef int8, KernelRef fp8) {
        return switch (pool.dtype()) {
            case I8 -> int8;
            case F8_E4M3 -> fp8;
            default -> throw new IllegalArgumentException("a KV pool with scales holds I8 or F8_E4M3 codes, not " + pool.dtype());
        };
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
