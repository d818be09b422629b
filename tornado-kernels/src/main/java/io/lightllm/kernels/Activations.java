package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * MLP activations on f32 tensors: gated ones, out = act(gate) * up, reading gate and up either
 * from one fused [tokens, 2 * width] gate_up tensor (gate in the first half of each row, up
 * in the second) or from two [tokens, width] tensors; and plain ones applied in place.
 * The kernels take the activation as an int code ({@link Kind#code}) so one kernel serves all.
 */
public final class Activations {
    /** x * sigmoid(x) (HF "silu"). */
    public static final int SILU = 0;
    /** 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (HF "gelu_pytorch_tanh", "gelu_new", "gelu_fast"). */
    public static final int GELU_TANH = 1;
    /** 0.5 x (1 + erf(x / sqrt 2)) (HF "gelu"). */
    public static final int GELU_ERF = 2;
    /** x sigmoid(1.702 x) (HF "quick_gelu": CLIP's vision towers). */
    public static final int QUICK_GELU = 3;

    public static final KernelRef GATED = KernelRef.of(Activations.class, "gatedActivation");
    public static final KernelRef IN_PLACE = KernelRef.of(Activations.class, "activationInPlace");

    private static final float SQRT_2_OVER_PI = 0.7978845608028654f;
    private static final float INV_SQRT_2 = 0.7071067811865476f;

    /** The activations, by the names Hugging Face configs use in {@code hidden_act}. */
    public enum Kind {
        SILU(Activations.SILU), GELU_TANH(Activations.GELU_TANH), GELU_ERF(Activations.GELU_ERF), QUICK_GELU(Activations.QUICK_GELU);

        public final int code;

        Kind(int code) {
            this.code = code;
        }

        /** Parses a {@code hidden_act} / {@code hidden_activation} value. */
        public static Kind fromConfig(String name) {
            return switch (name) {
                case "silu", "swish" -> SILU;
                case "gelu_pytorch_tanh", "gelu_new", "gelu_fast" -> GELU_TANH;
                case "gelu" -> GELU_ERF;
                case "quick_gelu" -> QUICK_GELU;
                default -> throw new IllegalArgumentException("unsupported activation: " + name);
            };
        }
    }

    private Activations() {
    }

    /**
     * out[t, i] = act(gate[t * gateStride + gateOffset + i]) * up[t * upStride + upOffset + i]
     * for i < width; out is packed [tokens, width]. For a fused gate_up tensor pass it as both
     * gate and up with strides 2 * width and offsets 0 and width. out may be f32, or bf16/f16 rounded as
     * stored: the input of a down projection on tensor cores ({@link Matmul#activationType}).
     * A work-item takes a run of 4 elements of a row: with {@code vectors} (width, strides and offsets
     * multiples of 4, so every run starts 16-byte aligned) as 16-byte loads, else one by one. Element by
     * element an 8B prefill's activation (8,192 x 14,336) moved ~1.5 TB/s on an H100, half its copy rate.
     */
    public static void gatedActivation(NativeArray out, FloatArray gate, FloatArray up, int tokens, int width, int gateStride,
            int gateOffset, int upStride, int upOffset, int kind, boolean vectors) {
        float[] g = new float[4];
        float[] u = new float[4];
        for (@Parallel int t = 0; t < tokens; t++) {
            for (@Parallel int r = 0; r < (width + 3) / 4; r++) {
                int i = 4 * r;
                if (vectors) {
                    gate.getFloats(t * gateStride + gateOffset + i, g, 0, 4);
                    up.getFloats(t * upStride + upOffset + i, u, 0, 4);
                    for (int e = 0; e < 4; e++) {
                        g[e] = activate(g[e], kind) * u[e];
                    }
                    out.setFloats(t * width + i, g, 0, 4);
                } else {
                    for (int j = i; j < Math.min(i + 4, width); j++) {
                        float x = gate.get(t * gateStride + gateOffset + j);
                        out.setFloat(t * width + j, activate(x, kind) * up.get(t * upStride + upOffset + j));
                    }
                }
            }
        }
    }

    /** x[i] = act(x[i]) for i < n. */
    public static void activationInPlace(FloatArray x, int n, int kind) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, activate(x.get(i), kind));
        }
    }

    static float activate(float x, int kind) {
        float y;
        if (kind == SILU) {
            // exp(-x) overflows to +inf for x < -88, which gives the correct limit -0
            y = x / (1f + KMath.exp(-x));
        } else if (kind == GELU_TANH) {
            // 0.5 (1 + tanh(a)) = 1 / (1 + exp(-2a)): the same function without the cancellation of
            // 1 + tanh(a) for negative a, where a tanh a few ulps off -1 would dominate the result
            float a = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
            y = x / (1f + KMath.exp(-2f * a));
        } else if (kind == QUICK_GELU) {
            y = x / (1f + KMath.exp(-1.702f * x));
        } else {
            y = 0.5f * x * onePlusErf(x * INV_SQRT_2);
        }
        return y;
    }

    /**
     * 1 + erf(z), through erfc(|z|) (Numerical Recipes' erfcc: fractional error below 1.2e-7
     * everywhere) so that negative z keeps its relative accuracy instead of cancelling in 1 + erf(z),
     * and every backend computes the same approximation.
     */
    static float onePlusErf(float z) {
        float a = KMath.abs(z);
        float t = 1f / (1f + 0.5f * a);
        float poly = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
                + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
        float erfcA = t * KMath.exp(-a * a + poly);
        return z >= 0f ? 2f - erfcA : erfcA;
    }

    // ---- host launchers -----------------------------------------------------------

    /** out [tokens, width] = act(gate) * up from a fused gate_up [tokens, 2 * width] tensor. */
    public static void launchGatedFused(Device device, Kind kind, DeviceBuffer out, DeviceBuffer gateUp, int tokens, int width) {
        checkRows(tokens, width);
        Shapes.intIndexable(2L * tokens * width, "gate_up");
        Shapes.atLeast(gateUp, 2L * tokens * width, "gate_up");
        Shapes.atLeast(out, (long) tokens * width, "out");
        device.launch(GATED, grid(tokens, width), out, gateUp, gateUp, tokens, width, 2 * width, 0, 2 * width, width, kind.code, width % 4 == 0);
    }

    /** out [tokens, width] = act(gate) * up from separate gate and up [tokens, width] tensors. */
    public static void launchGated(Device device, Kind kind, DeviceBuffer out, DeviceBuffer gate, DeviceBuffer up, int tokens, int width) {
        checkRows(tokens, width);
        Shapes.atLeast(gate, (long) tokens * width, "gate");
        Shapes.atLeast(up, (long) tokens * width, "up");
        Shapes.atLeast(out, (long) tokens * width, "out");
        device.launch(GATED, grid(tokens, width), out, gate, up, tokens, width, width, 0, width, 0, kind.code, width % 4 == 0);
    }

    /** The grid of {@link #gatedActivation}: a work-item per (token, run of 4 elements). */
    public static Grid grid(int tokens, int width) {
        return Grid.of(tokens, (width + 3) / 4);
    }

    /** x = act(x) over the first n elements. */
    public static void launchInPlace(Device device, Kind kind, DeviceBuffer x, int n) {
        Shapes.positive(n, "n");
        Shapes.atLeast(x, n, "x");
        device.launch(IN_PLACE, Grid.of(n), x, n, kind.code);
    }

    private static void checkRows(int tokens, int width) {
        Shapes.positive(tokens, "tokens");
        Shapes.positive(width, "width");
        Shapes.intIndexable((long) tokens * width, "out");
    }
}
