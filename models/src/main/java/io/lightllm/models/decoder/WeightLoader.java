package io.lightllm.models.decoder;

import io.lightllm.kernels.Matmul;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.models.Models.Quantization;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.config.RopeConfig;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.TensorType;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Puts a model's tensors on one device, cut to one tensor-parallel rank's part: the blocks ask
 * for their tensors by name and say how they split. Matrices keep their stored dtype (f32, f16 or
 * bf16; the kernels convert) or become int8 with per-row scales or int4 blocks when weight-only
 * quantisation is on; GGUF block-quantised matrices stay packed in their blocks ({@link Linear.Packed}).
 * Everything uploaded is owned here and freed by {@link #close}.
 */
public final class WeightLoader implements AutoCloseable {
    private final Device device;
    private final WeightSource source;
    private final Shard shard;
    private final Quantization quant;
    private final LongConsumer onBytes;
    private final List<DeviceBuffer> owned = new ArrayList<>();

    public WeightLoader(Device device, WeightSource source, Shard shard, Quantization quant, LongConsumer onBytes) {
        this.device = device;
        this.source = source;
        this.shard = shard;
        this.quant = quant;
        this.onBytes = onBytes;
    }

    Device device() {
        return device;
    }

    Shard shard() {
        return shard;
    }

    Quantization quantization() {
        return quant;
    }

    public boolean has(String name) {
        return source.has(name);
    }

    /** A stored tensor as it is, for a caller that derives weights from it ({@link #derivedLinear}); counted as loaded. */
    public Tensor tensor(String name) {
        Tensor t = source.get(name);
        onBytes.accept(t.data().byteSize());
        return t;
    }

    /** A whole linear layer [out, in] and its bias, if it has one. */
    public Linear linear(String prefix, int out, int in) {
        return rowSplit(prefix, out, in, Range.all(out));
    }

    /** Output rows {@code rows} of a linear layer [out, in] with the same rows of its bias (q, k, v, gate, up: a rank's heads or MLP rows). */
    Linear rowSplit(String prefix, int out, int in, Range rows) {
        Matrix w = weightOf(prefix, out, in);
        Tensor b = biasOf(prefix);
        FloatArray bias = b == null ? null : b.toFloat();
        return linear(w.rows(rows), bias == null || rows.count() == out ? bias : (FloatArray) rowsOf(bias, 1, rows), prefix);
    }

    /** Rows {@code rows} of the stored matrix [storedRows, in] named {@code prefix}: a part of a {@link #stackedRows} layer. */
    record RowsOf(String prefix, int storedRows, Range rows) {
    }

    /**
     * One linear layer whose rows are the given parts of stored matrices (and of their biases, zeros where a
     * matrix has none), stacked in order: q, k and v as one projection, so that a decode step runs one GEMV
     * where it ran three, from three matrices or from row ranges of one fused matrix (each matrix read once).
     * A copy, as the parts are not contiguous. Null when the parts are stored in different formats (a GGUF
     * file may keep v in another block type than q and k): the caller then keeps them apart.
     */
    Linear stackedRows(List<RowsOf> parts, int in) {
        TensorType type = source.get(parts.getFirst().prefix() + ".weight").type();
        for (RowsOf part : parts) {
            if (source.get(part.prefix() + ".weight").type() != type) {
                return null;
            }
        }
        Map<String, Matrix> stored = new HashMap<>();
        Map<String, FloatArray> storedBias = new HashMap<>();
        List<Matrix> matrices = new ArrayList<>();
        for (RowsOf part : parts) {
            matrices.add(stored.computeIfAbsent(part.prefix(), p -> weightOf(p, part.storedRows(), in)).rows(part.rows()));
            Tensor b = biasOf(part.prefix());
            if (b != null) {
                storedBias.computeIfAbsent(part.prefix(), p -> b.toFloat());
            }
        }
        Matrix all = Matrix.concat(matrices);
        FloatArray bias = storedBias.isEmpty() ? null : FloatArray.allocate(all.rows());
        int at = 0;
        for (RowsOf part : parts) {
            FloatArray from = storedBias.get(part.prefix());
            for (int r = 0; from != null && r < part.rows().count(); r++) {
                bias.set(at + r, from.get(part.rows().from() + r));
            }
            at += part.rows().count();
        }
        return linear(all, bias, parts.getFirst().prefix());
    }

    /**
     * Input columns {@code columns} of a linear layer [out, in] (o, down: a partial product the
     * ranks sum); the bias joins on rank 0 only, so that it is added once.
     */
    Linear columnSplit(String prefix, int out, int in, Range columns) {
        Tensor b = biasOf(prefix);
        FloatArray bias = shard.rank() == 0 && b != null ? b.toFloat() : null;
        return linear(weightOf(prefix, out, in).columns(columns), bias, prefix);
    }

    /**
     * The same rows (or columns) of several matrices [out, in] stacked into one device array
     * [n, ...] in their stored dtype: a mixture's experts, which one kernel reads by expert number.
     */
    DeviceBuffer stacked(List<String> prefixes, int out, int in, Range rows, Range columns) {
        List<NativeArray> parts = parts(prefixes, out, in, rows, columns);
        long partBytes = parts.getFirst().segment().byteSize();
        NativeArray all = NativeArray.allocate(parts.getFirst().dtype(), parts.getFirst().getSize() * parts.size());
        for (int i = 0; i < parts.size(); i++) {
            MemorySegment.copy(parts.get(i).segment(), 0, all.segment(), i * partBytes, partBytes);
        }
        return own(device.upload(all));
    }

    /**
     * The same rows and columns of several matrices [out, in] side by side in one device array [rows, n · columns], in
     * their stored dtype: a mixture's down projections, whose columns of all experts one matmul reads as one matrix.
     */
    DeviceBuffer sideBySide(List<String> prefixes, int out, int in, Range rows, Range columns) {
        List<NativeArray> parts = parts(prefixes, out, in, rows, columns);
        long rowBytes = parts.getFirst().segment().byteSize() / rows.count();
        NativeArray all = NativeArray.allocate(parts.getFirst().dtype(), parts.getFirst().getSize() * parts.size());
        for (int r = 0; r < rows.count(); r++) {
            for (int i = 0; i < parts.size(); i++) {
                MemorySegment.copy(parts.get(i).segment(), r * rowBytes, all.segment(), (r * parts.size() + i) * rowBytes, rowBytes);
            }
        }
        return own(device.upload(all));
    }

    /** The given rows and columns of each matrix, dense, all of one dtype. */
    private List<NativeArray> parts(List<String> prefixes, int out, int in, Range rows, Range columns) {
        List<NativeArray> parts = new ArrayList<>();
        for (String prefix : prefixes) {
            NativeArray a = weightOf(prefix, out, in).rows(rows).columns(columns).dense();
            if (!parts.isEmpty() && a.dtype() != parts.getFirst().dtype()) {
                throw new ModelLoadException("tensor " + prefix + ".weight is " + a.dtype() + ", the others of its group "
                        + parts.getFirst().dtype());
            }
            parts.add(a);
        }
        return parts;
    }

    /**
     * A linear layer [out, in] (and bias, or null) of values the caller derived from stored tensors (a matrix
     * stored transposed, as Qwen-VL's {@code x @ proj}; rows of a fused projection in another order), the weight in
     * the float dtype it is given in (the stored one, so nothing is widened on the device).
     */
    public Linear derivedLinear(NativeArray weight, FloatArray bias, int out, int in) {
        if (weight.getSize() != out * in || (bias != null && bias.getSize() != out)) {
            throw new IllegalArgumentException("a derived linear layer [" + out + ", " + in + "] of " + weight.getSize() + " values");
        }
        return new Linear(new Linear.Dense(own(device.upload(weight))), bias == null ? null : own(device.upload(bias)), out, in);
    }

    /** Values the caller derived from stored tensors (an interpolated position table), in f32, on the device. */
    public DeviceBuffer derived(FloatArray values) {
        return own(device.upload(values));
    }

    /** A vector (norm weight or bias) in its stored dtype. */
    public DeviceBuffer vector(String name) {
        Tensor t = source.get(name);
        onBytes.accept(t.data().byteSize());
        return own(device.upload(tensorArray(t)));
    }

    /** Rows {@code rows} of a table in its stored dtype (an embedding: a rank's vocabulary rows). */
    DeviceBuffer tableRows(String name, Range rows) {
        Tensor t = source.get(name);
        onBytes.accept(t.data().byteSize());
        NativeArray all = tensorArray(t);
        return own(device.upload(rows.from() == 0 && rows.count() == t.dim(0) ? all : rowsOf(all, (int) t.dim(1), rows)));
    }

    /**
     * A head [rows, in] from a table's rows: the table's buffer itself, or, where matrices are
     * quantised (--quant, or a block-quantised GGUF table, which the embedding holds dequantised),
     * the table's rows quantised or packed as any linear layer's.
     */
    Linear headOver(DeviceBuffer table, String name, Range rows, int in) {
        Tensor t = source.get(name);
        Matrix m = matrix(t, (int) t.dim(0), in);
        if (quant != Quantization.NONE || m.format() != null) {
            return linear(m.rows(rows), null, name);
        }
        return new Linear(new Linear.Dense(table), null, rows.count(), in);
    }

    /** Rows of a head with each row divided by its L2 norm (Baichuan2's NormHead: F.normalize, eps 1e-12). */
    Linear normalizedRows(String prefix, int out, int in, Range rows) {
        FloatArray all = weightOf(prefix, out, in).toFloat();
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
        return linear(new Matrix(rowsOf(all, in, rows), null, rows.count(), in), null, prefix);
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
    public long deviceBytes() {
        return owned.stream().mapToLong(DeviceBuffer::byteSize).sum();
    }

    DeviceBuffer own(DeviceBuffer b) {
        owned.add(b);
        return b;
    }

    private Matrix weightOf(String prefix, int out, int in) {
        Tensor w = source.get(prefix + ".weight");
        Tensor b = biasOf(prefix);
        onBytes.accept(w.data().byteSize() + (b == null ? 0 : b.data().byteSize()));
        return matrix(w, out, in);
    }

    private static Matrix matrix(Tensor w, int out, int in) {
        if (w.elementCount() != (long) out * in) {
            throw new ModelLoadException("tensor " + w.name() + " has " + w.elementCount() + " elements, expected " + out + " x " + in);
        }
        QuantFormat format = w.type().quantFormat();
        return new Matrix(format == null ? w.view() : NativeArray.wrap(w.data(), DType.I8), format, out, in);
    }

    private Tensor biasOf(String prefix) {
        return source.has(prefix + ".bias") ? source.get(prefix + ".bias") : null;
    }

    /** A linear layer of a stored matrix: packed blocks as they are, float matrices quantised as --quant asks. */
    private Linear linear(Matrix w, FloatArray bias, String name) {
        DeviceBuffer b = bias == null ? null : own(device.upload(bias));
        Linear.Weight weight;
        if (w.format() != null) {
            weight = new Linear.Packed(own(device.upload(w.data())), w.format());
        } else if (quant == Quantization.INT8) {
            Matmul.Int8Weights q = Matmul.quantizeInt8(w.data(), w.rows(), w.cols());
            weight = new Linear.Int8Rows(own(device.upload(q.weights())), own(device.upload(q.scales())));
        } else if (quant == Quantization.INT4) {
            weight = new Linear.Packed(own(device.upload(QuantFormat.quantizeInt4(w.data(), w.rows(), w.cols()))), QuantFormat.INT4);
        } else {
            weight = new Linear.Dense(own(device.upload(w.data())));
        }
        return new Linear(weight, b, w.rows(), w.cols());
    }

    /** Rows {@code rows} of a row-major array of {@code width} columns, sharing its memory. */
    private static NativeArray rowsOf(NativeArray all, int width, Range rows) {
        long rowBytes = (long) width * all.dtype().bytes();
        return NativeArray.wrap(all.segment().asSlice(rows.from() * rowBytes, rows.count() * rowBytes), all.dtype());
    }

    /** The tensor as an array of its dtype; quantised GGUF blocks are expanded to f32. */
    private static NativeArray tensorArray(Tensor t) {
        return t.type().isQuantized() ? t.toFloat() : t.view();
    }

    /**
     * A stored matrix [rows, cols]: elements of a float dtype ({@code format} null), or rows of
     * blocks of a {@link QuantFormat} (the raw bytes). Cuts share memory where they can.
     */
    private record Matrix(NativeArray data, QuantFormat format, int rows, int cols) {
        long rowBytes() {
            return format == null ? (long) cols * data.dtype().bytes() : format.rowBytes(cols);
        }

        Matrix rows(Range r) {
            if (r.from() == 0 && r.count() == rows) {
                return this;
            }
            return new Matrix(NativeArray.wrap(data.segment().asSlice(r.from() * rowBytes(), r.count() * rowBytes()), data.dtype()),
                    format, r.count(), cols);
        }

        /** The rows of matrices of one format and width, stacked in order (a copy). */
        static Matrix concat(List<Matrix> parts) {
            Matrix first = parts.getFirst();
            long bytes = parts.stream().mapToLong(m -> m.rows() * m.rowBytes()).sum();
            NativeArray out = NativeArray.allocate(first.data().dtype(), bytes / first.data().dtype().bytes());
            long at = 0;
            for (Matrix m : parts) {
                if (m.cols() != first.cols() || m.format() != first.format() || m.data().dtype() != first.data().dtype()) {
                    throw new IllegalArgumentException("stacking matrices of different widths or formats");
                }
                MemorySegment.copy(m.data().segment(), 0, out.segment(), at, m.rows() * m.rowBytes());
                at += m.rows() * m.rowBytes();
            }
            return new Matrix(out, first.format(), parts.stream().mapToInt(Matrix::rows).sum(), first.cols());
        }

        /**
         * Columns {@code c} (a copy): of packed rows, whole blocks when the cut falls on block
         * boundaries; otherwise the columns of the dequantised matrix (f32), as blocks cannot be cut.
         */
        Matrix columns(Range c) {
            if (c.from() == 0 && c.count() == cols) {
                return this;
            }
            int unit = format == null ? 1 : format.blockSize();
            if (c.from() % unit != 0 || c.count() % unit != 0) {
                return new Matrix(dense(), null, rows, cols).columns(c);
            }
            if (format != null) {
                return new Matrix(format.columns(data.segment(), rows, cols, c.from(), c.count()), format, rows, c.count());
            }
            long unitBytes = data.dtype().bytes();
            long partBytes = c.count() * unitBytes;
            NativeArray out = NativeArray.allocate(data.dtype(), rows * partBytes / data.dtype().bytes());
            for (int r = 0; r < rows; r++) {
                MemorySegment.copy(data.segment(), r * rowBytes() + c.from() * unitBytes, out.segment(), r * partBytes, partBytes);
            }
            return new Matrix(out, format, rows, c.count());
        }

        /** A new f32 copy of the elements (dequantised for packed rows). */
        FloatArray toFloat() {
            if (format != null) {
                return format.dequantize(data.segment(), rows, cols);
            }
            FloatArray out = FloatArray.allocate(rows * cols);
            for (int i = 0; i < rows * cols; i++) {
                out.set(i, data.getFloat(i));
            }
            return out;
        }

        /** The elements in a float dtype: the data itself, or the blocks dequantised to f32. */
        NativeArray dense() {
            return format == null ? data : format.dequantize(data.segment(), rows, cols);
        }
    }

    @Override
    public void close() {
        owned.forEach(DeviceBuffer::close);
    }
}
