package io.lightllm.models.decoder;

import io.lightllm.kernels.Attention;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.ChangedWrites;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Scratch of one step, sized for a number of tokens and requests and reused while they fit. A
 * recorded decode step holds these addresses, so they change only together with the recordings
 * ({@link DecoderModel} drops both when a step needs more room).
 */
final class StepBuffers implements AutoCloseable {
    final int tokens, requests, logitRows;
    final DeviceBuffer ids, positions, kvSlots, tokenRows;
    final DeviceBuffer requestRows, starts, newCounts, seqLens, prefixes, lastIndex;
    /**
     * The requests after a prefill step's leading decodes ({@link NopadBatch#decodes}), which decode
     * attention serves: their rows, starts, new counts and prefixes, for the prefill attention of the rest.
     */
    final DeviceBuffer tailRequestRows, tailStarts, tailNewCounts, tailPrefixes;
    final DeviceBuffer residual, normed, qkv, q, k, v, attention, projected, gateUp, act;
    final DeviceBuffer lastNormed, logits;
    private final Device device;
    private final ModelConfig config;
    private final Shard shard;
    private final List<DeviceBuffer> all = new ArrayList<>();
    /** The per-step int arrays go up only where they changed (a decode step of the same requests: half of them). */
    private final ChangedWrites uploads;
    private final Map<Object, AutoCloseable> blockScratch = new HashMap<>();
    private Attention.DecodeScratch decodeScratch;
    private int decodeScratchMaxLen;

    StepBuffers(Device device, ModelConfig c, Shard shard, int tokens, int requests, int logitRows) {
        this.device = device;
        this.config = c;
        this.shard = shard;
        this.tokens = tokens;
        this.requests = requests;
        this.logitRows = logitRows;
        this.uploads = new ChangedWrites(device);
        int hidden = c.hiddenSize();
        ids = i32(tokens);
        positions = i32(tokens);
        kvSlots = i32(tokens);
        tokenRows = i32(tokens);
        requestRows = i32(requests);
        starts = i32(requests);
        newCounts = i32(requests);
        seqLens = i32(requests);
        prefixes = i32(requests);
        lastIndex = i32(logitRows);
        tailRequestRows = i32(requests);
        tailStarts = i32(requests);
        tailNewCounts = i32(requests);
        tailPrefixes = i32(requests);
        residual = f32((long) tokens * hidden);
        normed = f32((long) tokens * hidden);
        qkv = f32((long) tokens * (shard.heads() + 2 * shard.kvHeads()) * c.headDim());
        q = f32((long) tokens * shard.heads() * c.headDim());
        k = f32((long) tokens * shard.kvHeads() * c.headDim());
        v = f32((long) tokens * shard.kvHeads() * c.headDim());
        attention = f32((long) tokens * shard.heads() * c.headDim());
        projected = f32((long) tokens * hidden);
        gateUp = f32(2L * tokens * shard.intermediate());
        act = f32((long) tokens * shard.intermediate());
        lastNormed = f32((long) logitRows * hidden);
        logits = f32((long) logitRows * shard.vocab());
    }

    /** Split-k scratch of decode attention, sized for this step's requests and the table's longest row. */
    Attention.DecodeScratch decodeScratch(Attention.Heads heads, int maxLen) {
        if (decodeScratch == null || decodeScratchMaxLen < maxLen) {
            if (decodeScratch != null) {
                decodeScratch.close();
            }
            decodeScratch = Attention.DecodeScratch.allocateFor(device, requests, heads, maxLen);
            decodeScratchMaxLen = maxLen;
        }
        return decodeScratch;
    }

    /** Drops the decode scratch: its size follows the attention tunings ({@code attention.split_len}, ...), which changed. */
    void tuningChanged() {
        if (decodeScratch != null) {
            decodeScratch.close();
            decodeScratch = null;
        }
    }

    /** {@link #normed} where {@code type} is f32, else a 16-bit buffer of its size for a norm to write the next GEMM's input in. */
    DeviceBuffer normedIn(DType type) {
        return type == DType.F32 ? normed : sixteenBit("normed", type, (long) tokens * config.hiddenSize());
    }

    /** {@link #act} where {@code type} is f32, else a 16-bit buffer of its size (the down projection's input). */
    DeviceBuffer actIn(DType type) {
        return type == DType.F32 ? act : sixteenBit("act", type, (long) tokens * shard.intermediate());
    }

    /** {@link #q} where {@code type} is f32, else an f16 buffer of its size (prefill attention's query operand). */
    DeviceBuffer queriesIn(DType type) {
        return type == DType.F32 ? q : sixteenBit("q", type, (long) tokens * shard.heads() * config.headDim());
    }

    /** {@link #attention} where {@code type} is f32, else a 16-bit buffer of its size (the o projection's input, written by prefill attention). */
    DeviceBuffer attentionIn(DType type) {
        return type == DType.F32 ? attention : sixteenBit("attention", type, (long) tokens * shard.heads() * config.headDim());
    }

    /**
     * The 16-bit twin of a buffer, made on first use: the activations a tensor-core GEMM reads as they are
     * ({@link io.lightllm.kernels.Matmul#activationType}) instead of narrowing the f32 ones in a launch of its own.
     */
    private DeviceBuffer sixteenBit(String name, DType type, long elements) {
        return (DeviceBuffer) blockScratch.computeIfAbsent(name + " " + type, k -> device.allocate(type, elements));
    }

    /**
     * Scratch a block needs beyond these buffers (a mixture's routing), made on first use for
     * {@link #tokens} tokens and shared by the blocks that ask with the same key.
     */
    @SuppressWarnings("unchecked")
    <T extends AutoCloseable> T blockScratch(Object key, Supplier<T> make) {
        return (T) blockScratch.computeIfAbsent(key, k -> make.get());
    }

    Device device() {
        return device;
    }

    private DeviceBuffer i32(long n) {
        DeviceBuffer b = device.allocate(DType.I32, n);
        all.add(b);
        return b;
    }

    private DeviceBuffer f32(long n) {
        DeviceBuffer b = device.allocate(DType.F32, n);
        all.add(b);
        return b;
    }

    void upload(NopadBatch batch) {
        int t = batch.tokens(), b = batch.requests();
        int[] rows = new int[t];
        int[] prefix = new int[b];
        for (int r = 0; r < b; r++) {
            for (int i = 0; i < batch.newCounts()[r]; i++) {
                rows[batch.starts()[r] + i] = batch.requestRows()[r];
            }
            prefix[r] = batch.prefix(r);
        }
        put(ids, batch.tokenIds());
        put(positions, batch.positions());
        put(kvSlots, batch.kvSlots());
        put(tokenRows, rows);
        put(requestRows, batch.requestRows());
        put(starts, batch.starts());
        put(newCounts, batch.newCounts());
        put(seqLens, batch.seqLens());
        put(prefixes, prefix);
        put(lastIndex, batch.logitTokens());
        int decodes = batch.decodes();
        if (decodes > 0 && decodes < b) {
            put(tailRequestRows, java.util.Arrays.copyOfRange(batch.requestRows(), decodes, b));
            put(tailStarts, java.util.Arrays.copyOfRange(batch.starts(), decodes, b));
            put(tailNewCounts, java.util.Arrays.copyOfRange(batch.newCounts(), decodes, b));
            put(tailPrefixes, java.util.Arrays.copyOfRange(prefix, decodes, b));
        }
    }

    private void put(DeviceBuffer dst, int[] values) {
        uploads.write(IntArray.fromArray(values), dst);
    }

    @Override
    public void close() {
        all.forEach(DeviceBuffer::close);
        if (decodeScratch != null) {
            decodeScratch.close();
        }
        for (AutoCloseable c : blockScratch.values()) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
