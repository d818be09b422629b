package io.lightllm.models.weights;

import io.lightllm.models.ModelLoadException;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.jvm.HugePages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;

/**
 * Random weights for any architecture's tensors ({@code --load-format dummy}), so benchmarks at full
 * size need no download. Values are a fixed hash of the tensor name and index, uniform in
 * [-0.02, 0.02) (norm weights 1, biases 0), made on first use in parallel and kept until close.
 */
public final class DummyWeights implements WeightSource {
    private final Map<String, long[]> shapes = new TreeMap<>();
    private final Map<String, Tensor> made = new ConcurrentHashMap<>();
    private final DType dtype;
    private final Arena arena = Arena.ofShared();

    /** Random tensors of the given names and shapes (an architecture's, from {@code TensorShapes}). */
    public DummyWeights(Map<String, long[]> tensorShapes, DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new ModelLoadException("dummy weights are f32, f16 or bf16, not " + dtype);
        }
        this.dtype = dtype;
        shapes.putAll(tensorShapes);
    }

    @Override
    public Tensor get(String hfName) {
        long[] shape = shapes.get(hfName);
        if (shape == null) {
            throw new ModelLoadException("tensor " + hfName + " not found in dummy weights");
        }
        return made.computeIfAbsent(hfName, n -> make(n, shape));
    }

    private Tensor make(String name, long[] shape) {
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        MemorySegment seg = HugePages.allocate(count * dtype.bytes(), arena); // what the JVM device would copy a file's weights into
        boolean bias = name.endsWith(".bias");
        boolean norm = !bias && shape.length == 1; // the 1-D weights are the norms'

        long seed = name.hashCode() * 0x9E3779B97F4A7C15L;
        final long n = count;
        int chunks = (int) Math.min(4096, Math.max(1, n >> 16));
        IntStream.range(0, chunks).parallel().forEach(chunk -> {
            long from = n * chunk / chunks, to = n * (chunk + 1) / chunks;
            for (long i = from; i < to; i++) {
                float v = bias ? 0f : norm ? 1f : (float) (((mix(seed + i) >>> 11) * 0x1.0p-53 * 2 - 1) * 0.02);
                switch (dtype) {
                    case F32 -> seg.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
                    case F16 -> seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(v));
                    default -> seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, KMath.floatToBf16(v));
                }
            }
        });
        return new Tensor(name, TensorType.of(dtype), shape, seg);
    }

    /** SplitMix64's finaliser: a good 64-bit hash of a counter. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public boolean has(String hfName) {
        return shapes.containsKey(hfName);
    }

    @Override
    public SortedSet<String> names() {
        return new TreeSet<>(shapes.keySet());
    }

    @Override
    public String location() {
        return "dummy weights";
    }

    @Override
    public void close() {
        made.clear();
        arena.close();
    }
}
