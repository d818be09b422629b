package io.lightllm.models.decoder;

import io.lightllm.kernels.Matmul;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.config.RopeConfig;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Puts a model's tensors on one device, cut to one tensor-parallel rank's part: the blocks ask
 * for their tensors by name and say how they split. Matrices keep their stored dtype (f32, f16 or
 * bf16; the kernels convert) or become int8 with per-row scales when weight-only quantisation is on.
 * Everything uploaded is owned here and freed by {@link #close}.
 */
public final class WeightLoader implements AutoCloseable {
    private final Device device;
    private final WeightSource source;
    private final Shard shard;
    private final boolean int8;
    private final LongConsumer onBytes;
    private final List<DeviceBuffer> owned = new ArrayList<>();

    WeightLoader(Device device, WeightSource source, Shard shard, boolean int8, LongConsumer onBytes) {
        this.device = device;
        this.source = source;
        this.shard = shard;
        this.int8 = int8;
        this.onBytes = onBytes;
    }

    Device device() {
        return device;
    }

    Shard shard() {
        return shard;
    }

    boolean int8() {
        return int8;
    }

    boolean has(String name) {
        return source.has(name);
    }

    Tensor tensor(String name) {
        return source.get(name);
    }

    /** Output rows {@code rows} of a linear layer [out, in] with the same rows of its bias (q, k, v, gate, up: a rank's heads or MLP rows). */
    Linear rowSplit(String prefix, int out, int in, Range rows) {
        Tensor w = weightOf(prefix, out, in);
        Tensor b = biasOf(prefix);
        if (rows.from() == 0 && rows.count() == out) {
            return linear(tensorArray(w), b == null ? null : b.toFloat(), out, in, w.name());
        }
        return linear(rows(w, rows.from(), rows.count()), b == null ? null : (FloatArray) rows(b.toFloat(), 1, rows), rows.count(), in, w.name());
    }

    /**
     * Linear layers made of row ranges of one stored matrix [storedRows, in] (and of its bias), each
     * the ranges of its list stacked in order: q, k and v of a fused projection. Copies, as the parts
     * are not contiguous.
     */
    List<Linear> rowParts(String prefix, int storedRows, int in, List<List<Range>> linears) {
        Tensor w = weightOf(prefix, storedRows, in);
        Tensor b = biasOf(prefix);
        NativeArray all = tensorArray(w);
        FloatArray biasAll = b == null ? null : b.toFloat();
        long rowBytes = (long) in * all.dtype().bytes();
        List<Linear> out = new ArrayList<>();
        for (List<Range> parts : linears) {
            int count = parts.stream().mapToInt(Range::count).sum();
            NativeArray rows = NativeArray.allocate(all.dtype(), (long) count * in);
            FloatArray bias = b == null ? null : FloatArray.allocate(count);
            int at = 0;
            for (Range r : parts) {
                MemorySegment.copy(all.segment(), r.from() * rowBytes, rows.segment(), at * rowBytes, r.count() * rowBytes);
                for (int i = 0; bias != null && i < r.count(); i++) {
                    bias.set(at + i, biasAll.get(r.from() + i));
                }
                at += r.count();
            }
            out.add(linear(rows, bias, count, in, w.name()));
        }
        return out;
    }

    /**
     * Input columns {@code columns} of a linear layer [out, in] (o, down: a partial product the
     * ranks sum); the bias joins on rank 0 only, so that it is added once.
     */
    Linear columnSplit(String prefix, int out, int in, Range columns) {
        Tensor w = weightOf(prefix, out, in);
        Tensor b = biasOf(prefix);
        FloatArray bias = shard.rank() == 0 && b != null ? b.toFloat() : null;
        NativeArray all = tensorArray(w);
        if (columns.from() == 0 && columns.count() == in) {
            return linear(all, bias, out, in, w.name());
        }
        return linear(columns(all, out, in, columns), bias, out, columns.count(), w.name());
    }

    /**
     * The same rows (or columns) of several matrices [out, in] stacked into one device array
     * [n, ...] in their stored dtype: a mixture's experts, which one kernel reads by expert number.
     */
    DeviceBuffer stacked(List<String> prefixes, int out, int in, Range rows, Range columns) {
        NativeArray first = null;
        List<NativeArray> parts = new ArrayList<>();
        for (String prefix : prefixes) {
            Tensor w = weightOf(prefix, out, in);
            NativeArray a = tensorArray(w);
            a = rows.count() == out ? a : rows(a, in, rows);
            a = columns.count() == in ? a : columns(a, rows.count(), in, columns);
            first = first == null ? a : first;
            if (a.dtype() != first.dtype()) {
                throw new ModelLoadException("tensor " + w.name() + " is " + a.dtype() + ", the others of its group " + first.dtype());
            }
            parts.add(a);
        }
        long partBytes = first.segment().byteSize();
        NativeArray all = NativeArray.allocate(first.dtype(), first.getSize() * parts.size());
        for (int i = 0; i < parts.size(); i++) {
            MemorySegment.copy(parts.get(i).segment(), 0, all.segment(), i * partBytes, partBytes);
        }
        return own(device.upload(all));
    }

    /** A vector (norm weight or bias) in its stored dtype. */
    DeviceBuffer vector(String name) {
        Tensor t = source.get(name);
        onBytes.accept(t.data().byteSize());
        return own(device.upload(tensorArray(t)));
    }

    /** Rows {@code rows} of a table in its stored dtype (an embedding: a rank's vocabulary rows). */
    DeviceBuffer tableRows(String name, Range rows) {
        Tensor t = source.get(name);
        onBytes.accept(t.data().byteSize());
        return own(device.upload(rows.from() == 0 && rows.count() == t.dim(0) ? tensorArray(t) : rows(t, rows.from(), rows.count())));
    }

    /** A head [rows, in] from a table's rows: int8 quantises a copy, otherwise the buffer itself is read. */
    Linear headOver(DeviceBuffer table, String name, Range rows, int in) {
        if (int8) {
            return linear(rows(source.get(name), rows.from(), rows.count()), null, rows.count(), in, name);
        }
        return new Linear(table, null, null, rows.count(), in);
    }

    /** Rows of a head with each row divided by its L2 norm (Baichuan2's NormHead: F.normalize, eps 1e-12). */
    Linear normalizedRows(String prefix, int out, int in, Range rows) {
        Tensor w = weightOf(prefix, out, in);
        FloatArray all = w.toFloat();
        for (int r = 0; r < out; r++) {
            double sumSq = 0;
            for (int c = 0; c < in; c++) {
                double v = all.get(r * in + c);
                sumSq += v * v;
            }
            float inv = (float) (1.0 / Math.max(Math.sqrt(sumSq), 1e-12));
            for (int c = 0; c < in; c++) {
                all.set(r * in + c, all.get(r * in + c) * inv);
            }
        }
        return linear(rows(all, in, rows), null, rows.count(), in, w.name());
    }

    /**
     * The per-pair divisors of the inverse frequencies of a GGUF llama3 file
     * ({@code rope_freqs.weight}; llama.cpp's convert script stores there the llama3 rope scaling
     * that HF keeps in config.json), or null when the file has none.
     */
    FloatArray ropeFrequencyFactors(ModelConfig config) {
        if (!source.has(ROPE_FREQS)) {
            return null;
        }
        Tensor t = source.get(ROPE_FREQS);
        int pairs = config.rotaryDim() / 2;
        if (t.elementCount() != pairs) {
            throw new ModelLoadException(ROPE_FREQS + " in " + source.location() + " has " + t.elementCount()
                    + " values, but the model rotates " + pairs + " pairs per head");
        }
        if (config.rope().type() != RopeConfig.Type.DEFAULT && config.rope().type() != RopeConfig.Type.LINEAR) {
            throw new ModelLoadException(source.location() + " has both " + ROPE_FREQS + " and rope scaling "
                    + config.rope().type() + "; the two would scale the frequencies twice");
        }
        return t.toFloat();
    }

    private static final String ROPE_FREQS = "rope_freqs.weight";

    /** Bytes the weights take on the device (for reports of what quantisation saves). */
    long deviceBytes() {
        return owned.stream().mapToLong(DeviceBuffer::byteSize).sum();
    }

    DeviceBuffer own(DeviceBuffer b) {
        owned.add(b);
        return b;
    }

    private Tensor weightOf(String prefix, int out, int in) {
        Tensor w = source.get(prefix + ".weight");
        if (w.elementCount() != (long) out * in) {
            throw new ModelLoadException("tensor " + w.name() + " has " + w.elementCount() + " elements, expected " + out + " x " + in);
        }
        Tensor b = biasOf(prefix);
        onBytes.accept(w.data().byteSize() + (b == null ? 0 : b.data().byteSize()));
        return w;
    }

    private Tensor biasOf(String prefix) {
        return source.has(prefix + ".bias") ? source.get(prefix + ".bias") : null;
    }

    private Linear linear(NativeArray w, FloatArray bias, int out, int in, String name) {
        if ((long) out * in != w.getSize()) {
            throw new ModelLoadException("tensor " + name + " has " + w.getSize() + " elements, expected " + out + " x " + in);
        }
        DeviceBuffer b = bias == null ? null : own(device.upload(bias));
        if (int8) {
            Matmul.Int8Weights q = Matmul.quantizeInt8(w, out, in);
            return new Linear(own(device.upload(q.weights())), own(device.upload(q.scales())), b, out, in);
        }
        return new Linear(own(device.upload(w)), null, b, out, in);
    }

    /** Rows [from, from + count) of a 2-D tensor, sharing its memory. */
    private static NativeArray rows(Tensor t, int from, int count) {
        return rows(tensorArray(t), (int) t.dim(1), new Range(from, count));
    }

    /** Rows {@code rows} of a row-major array of {@code width} columns, sharing its memory. */
    private static NativeArray rows(NativeArray all, int width, Range rows) {
        long rowBytes = (long) width * all.dtype().bytes();
        return NativeArray.wrap(all.segment().asSlice(rows.from() * rowBytes, rows.count() * rowBytes), all.dtype());
    }

    /** Columns {@code columns} of a row-major [out, in] array: a copy. */
    private static NativeArray columns(NativeArray all, int out, int in, Range columns) {
        long elementBytes = all.dtype().bytes();
        NativeArray part = NativeArray.allocate(all.dtype(), (long) out * columns.count());
        for (int r = 0; r < out; r++) {
            MemorySegment.copy(all.segment(), ((long) r * in + columns.from()) * elementBytes,
                    part.segment(), (long) r * columns.count() * elementBytes, columns.count() * elementBytes);
        }
        return part;
    }

    /** The tensor as an array of its dtype; quantised GGUF blocks are expanded to f32. */
    private static NativeArray tensorArray(Tensor t) {
        return t.type().isQuantized() ? t.toFloat() : t.view();
    }

    @Override
    public void close() {
        owned.forEach(DeviceBuffer::close);
    }
}
