package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Sampling;
import io.lightllm.kernels.Softmax;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Softmax#softmax} and {@link Sampling#temperatureSoftmax} on the JVM with the Vector API's exponential (within
 * an ulp or two of Math.exp), where the portable kernel, one thread a row on the JVM, calls Math.exp an element: 1 ms
 * for a 128k vocabulary row on this machine's 2 cores. The same three passes (the row's maximum, the exponentials and
 * their compensated sum, the division), each lane summing with compensation as the portable kernel does.
 */
final class VectorSoftmax {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = F.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private VectorSoftmax() {
    }

    /** {@link Softmax#softmax}'s arguments (x, n), a row a work-group of the grid's {@code rows}. */
    static void softmax(JvmDevice device, int rows, Object[] args) {
        MemorySegment x = ((FloatArray) args[0]).segment();
        int n = (Integer) args[1];
        device.parallelFor(rows, r -> row(x, (long) r * n, n, 1f));
    }

    /** {@link Sampling#temperatureSoftmax}'s arguments (logits, temperatures, vocab): rows at temperature <= 0 become one-hot. */
    static void temperatureSoftmax(JvmDevice device, int rows, Object[] args) {
        MemorySegment x = ((FloatArray) args[0]).segment();
        FloatArray temperatures = (FloatArray) args[1];
        int n = (Integer) args[2];
        device.parallelFor(rows, r -> {
            float t = temperatures.get(r);
            if (t > 0f) {
                row(x, (long) r * n, n, 1f / t);
            } else {
                oneHot(x, (long) r * n, n);
            }
        });
    }

    /** x[base .. base+n) = softmax(x * scale); a row whose maximum is -inf becomes NaN, as the portable kernel's. */
    private static void row(MemorySegment x, long base, int n, float scale) {
        int bound = F.loopBound(n);
        FloatVector maxes = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < bound; i += LANES) {
            maxes = maxes.max(load(x, base + i).mul(scale));
        }
        float max = maxes.reduceLanes(VectorOperators.MAX);
        for (int i = bound; i < n; i++) {
            max = Math.max(max, get(x, base + i) * scale);
        }
        FloatVector sums = FloatVector.zero(F), compensations = FloatVector.zero(F);
        for (int i = 0; i < bound; i += LANES) {
            FloatVector e = load(x, base + i).mul(scale).sub(max).lanewise(VectorOperators.EXP);
            e.intoMemorySegment(x, 4 * (base + i), ORDER);
            FloatVector y = e.sub(compensations), t = sums.add(y);
            compensations = t.sub(sums).sub(y);
            sums = t;
        }
        double sum = 0;
        for (int lane = 0; lane < LANES; lane++) {
            sum += sums.lane(lane);
        }
        for (int i = bound; i < n; i++) {
            float e = (float) Math.exp(get(x, base + i) * scale - max);
            x.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i, e);
            sum += e;
        }
        float inv = 1f / (float) sum;
        for (int i = 0; i < bound; i += LANES) {
            load(x, base + i).mul(inv).intoMemorySegment(x, 4 * (base + i), ORDER);
        }
        for (int i = bound; i < n; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i, get(x, base + i) * inv);
        }
    }

    /** One-hot at the first largest value (NaN ignored; the first element where none is larger), as the portable kernel's argmax. */
    private static void oneHot(MemorySegment x, long base, int n) {
        int best = JvmSampling.argmaxRow(x, base, n);
        for (int i = 0; i < n; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i, i == best ? 1f : 0f);
        }
    }

    private static FloatVector load(MemorySegment x, long index) {
        return FloatVector.fromMemorySegment(F, x, 4 * index, ORDER);
    }

    private static float get(MemorySegment x, long index) {
        return x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, index);
    }
}
