package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Norms;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's RMSNorms ({@link Norms#rmsNorm}, {@link Norms#rmsNormAddResidual}) in vectors, a row a task: the residual add
 * and the sum of squares in one pass, then the scaled row. The portable kernels ran a row on one item element by element
 * on the JVM: 17-25 us a 4096-element row at batch 1 on two cores (2026-12-08), 65 launches a step of an 8B model.
 * f32 outputs over f32 or bf16 weights (a 16-bit output, the input of a tensor-core GEMM, and f16 weights take the
 * portable kernel). The sum of squares adds lane-wise, so a row's factor may differ from the kernel's in its last bits
 * (NormsTest's bound covers both).
 */
final class VectorNorms {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** As many bf16 weights as F has lanes, widened to F's ints. */
    private static final VectorSpecies<Short> HALF_SHORTS = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private VectorNorms() {
    }

    /** Whether the vector path takes these buffers: an f32 output, f32 or bf16 weights. */
    static boolean vectorized(NativeArray out, NativeArray weight) {
        return out.dtype() == DType.F32 && (weight.dtype() == DType.F32 || weight.dtype() == DType.BF16);
    }

    /** {@link Norms#rmsNorm}'s arguments (out, x, weight, eps, dim), {@code rows} rows. */
    static void rmsNorm(JvmDevice device, int rows, Object[] args) {
        FloatArray out = (FloatArray) args[0], x = (FloatArray) args[1];
        NativeArray weight = (NativeArray) args[2];
        float eps = (Float) args[3];
        int dim = (Integer) args[4];
        device.parallelFor(rows, r -> row(out.segment(), x.segment(), null, weight, eps, (long) r * dim, dim));
    }

    /** {@link Norms#rmsNormAddResidual}'s arguments (out, residual, x, weight, eps, dim), {@code rows} rows. */
    static void rmsNormAddResidual(JvmDevice device, int rows, Object[] args) {
        FloatArray out = (FloatArray) args[0], residual = (FloatArray) args[1], x = (FloatArray) args[2];
        NativeArray weight = (NativeArray) args[3];
        float eps = (Float) args[4];
        int dim = (Integer) args[5];
        device.parallelFor(rows, r -> row(out.segment(), residual.segment(), x.segment(), weight, eps, (long) r * dim, dim));
    }

    /** One row at element {@code base}: row += added (where given, stored back), then out = row * rsqrt(mean(row^2) + eps) * weight. */
    private static void row(MemorySegment out, MemorySegment row, MemorySegment added, NativeArray weight, float eps, long base, int dim) {
        int bound = F.loopBound(dim);
        FloatVector squares = FloatVector.zero(F);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector v = FloatVector.fromMemorySegment(F, row, 4 * (base + i), ORDER);
            if (added != null) {
                v = v.add(FloatVector.fromMemorySegment(F, added, 4 * (base + i), ORDER));
                v.intoMemorySegment(row, 4 * (base + i), ORDER);
            }
            squares = v.fma(v, squares);
        }
        float sum = squares.reduceLanes(VectorOperators.ADD);
        for (; i < dim; i++) {
            float v = row.getAtIndex(ValueLayout.JAVA_FLOAT, base + i);
            if (added != null) {
                v += added.getAtIndex(ValueLayout.JAVA_FLOAT, base + i);
                row.setAtIndex(ValueLayout.JAVA_FLOAT, base + i, v);
            }
            sum += v * v;
        }
        float inv = KMath.rsqrt(sum / dim + eps);
        boolean bf16 = weight.dtype() == DType.BF16;
        MemorySegment w = weight.segment();
        for (i = 0; i < bound; i += F.length()) {
            FloatVector g = bf16
                    ? ((IntVector) ShortVector.fromMemorySegment(HALF_SHORTS, w, 2L * i, ORDER).convertShape(VectorOperators.S2I, I, 0))
                            .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()
                    : FloatVector.fromMemorySegment(F, w, 4L * i, ORDER);
            FloatVector.fromMemorySegment(F, row, 4 * (base + i), ORDER).mul(inv).mul(g).intoMemorySegment(out, 4 * (base + i), ORDER);
        }
        for (; i < dim; i++) {
            out.setAtIndex(ValueLayout.JAVA_FLOAT, base + i,
                    row.getAtIndex(ValueLayout.JAVA_FLOAT, base + i) * inv * weight.getFloat(i));
        }
    }
}
