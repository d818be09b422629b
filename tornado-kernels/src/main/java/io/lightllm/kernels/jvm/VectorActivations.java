package io.lightllm.kernels.jvm;

import io.lightllm.kernels.Activations;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.jvm.JvmDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The JVM's gated activation ({@link Activations#gatedActivation}: out = act(gate) * up) for SiLU and
 * tanh-GELU, with the Vector API's exponential. Run as Java, the portable kernel calls Math.exp once an
 * element, which made it the second most expensive kernel of a batch-8 CPU step (0.7 ms for 8 x 8192);
 * the vector exponential (within an ulp or two of Math.exp) takes a few nanoseconds for 16 lanes.
 * GELU with erf keeps the portable kernel.
 */
final class VectorActivations {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = F.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** Elements of one task: a row is cut so that a batch of one still uses every thread. */
    private static final int CHUNK = 1024;
    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2 / Math.PI);

    private VectorActivations() {
    }

    /** Whether this kind has a vector path (else the caller runs the portable kernel). */
    static boolean vectorized(int kind) {
        return kind == Activations.SILU || kind == Activations.GELU_TANH;
    }

    /** The portable kernel's arguments: (out, gate, up, tokens, width, gateStride, gateOffset, upStride, upOffset, kind). */
    static void gated(JvmDevice device, Object[] args) {
        FloatArray out = (FloatArray) args[0], gate = (FloatArray) args[1], up = (FloatArray) args[2];
        int tokens = (Integer) args[3], width = (Integer) args[4], gateStride = (Integer) args[5], gateOffset = (Integer) args[6];
        int upStride = (Integer) args[7], upOffset = (Integer) args[8];
        boolean silu = (Integer) args[9] == Activations.SILU;
        int chunks = (width + CHUNK - 1) / CHUNK;
        MemorySegment o = out.segment(), g = gate.segment(), u = up.segment();
        device.parallelFor(tokens * chunks, task -> {
            int t = task / chunks, from = task % chunks * CHUNK, to = Math.min(width, from + CHUNK);
            long gAt = (long) t * gateStride + gateOffset, uAt = (long) t * upStride + upOffset, oAt = (long) t * width;
            int i = from;
            for (int bound = from + F.loopBound(to - from); i < bound; i += LANES) {
                FloatVector x = FloatVector.fromMemorySegment(F, g, 4 * (gAt + i), ORDER);
                // SiLU: x / (1 + exp(-x)); tanh-GELU: x / (1 + exp(-2a)), a = sqrt(2/pi) (x + 0.044715 x^3), as the portable kernel
                FloatVector e = silu ? x.neg() : x.mul(x).mul(x).mul(0.044715f).add(x).mul(-2f * SQRT_2_OVER_PI);
                FloatVector y = x.div(e.lanewise(VectorOperators.EXP).add(1f));
                y.mul(FloatVector.fromMemorySegment(F, u, 4 * (uAt + i), ORDER)).intoMemorySegment(o, 4 * (oAt + i), ORDER);
            }
            for (; i < to; i++) {
                float x = g.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, gAt + i);
                float e = silu ? -x : -2f * SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
                o.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, oAt + i, x / (1f + (float) Math.exp(e)) * u.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, uAt + i));
            }
        });
    }
}
