package io.lightllm.tornado.api;

/**
 * Math intrinsics for kernels (TornadoVM's {@code TornadoMath}). On the JVM these are the
 * Java definitions below; the kernel compiler maps each to the device's built-in
 * ({@code exp}, {@code rsqrt}, {@code fma}, ...), so results may differ in the last ulps,
 * which is why tests compare backends with tolerances.
 */
public final class KMath {
    private KMath() {
    }

    public static float exp(float x) {
        return (float) Math.exp(x);
    }

    /** 2 to the power x (the GPU's native exponential: scale by log2(e) to get exp). */
    public static float exp2(float x) {
        return (float) Math.pow(2, x);
    }

    public static float log(float x) {
        return (float) Math.log(x);
    }

    public static float sqrt(float x) {
        return (float) Math.sqrt(x);
    }

    public static float rsqrt(float x) {
        return (float) (1.0 / Math.sqrt(x));
    }

    public static float tanh(float x) {
        return (float) Math.tanh(x);
    }

    public static float pow(float x, float y) {
        return (float) Math.pow(x, y);
    }

    public static float sin(float x) {
        return (float) Math.sin(x);
    }

    public static float cos(float x) {
        return (float) Math.cos(x);
    }

    public static float erf(float x) {
        // Abramowitz-Stegun 7.1.26 is too coarse for a reference; use the series/continued
        // fraction through Math's double precision instead.
        double t = 1.0 / (1.0 + 0.5 * Math.abs(x));
        double y = 1.0 - t * Math.exp(-x * (double) x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277)))))))));
        return (float) (x >= 0 ? y : -y);
    }

    public static float fma(float a, float b, float c) {
        return Math.fma(a, b, c);
    }

    public static float max(float a, float b) {
        return Math.max(a, b);
    }

    public static float min(float a, float b) {
        return Math.min(a, b);
    }

    public static int max(int a, int b) {
        return Math.max(a, b);
    }

    public static int min(int a, int b) {
        return Math.min(a, b);
    }

    public static float abs(float x) {
        return Math.abs(x);
    }

    public static float floor(float x) {
        return (float) Math.floor(x);
    }

    /** Rounds half away from zero, like C's {@code round}. */
    public static float round(float x) {
        return (float) (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5));
    }

    /** Half precision bits to float. */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** Float to half precision bits, round to nearest even. */
    public static short floatToF16(float x) {
        return Float.floatToFloat16(x);
    }

    /** Two floats as a pair of halves in one int, {@code lo} in the low 16 bits (round to nearest even): an f16 MMA operand. */
    public static int packHalf2(float lo, float hi) {
        return (Float.floatToFloat16(lo) & 0xffff) | Float.floatToFloat16(hi) << 16;
    }

    /** Two floats as a pair of bfloat16 in one int, {@code lo} in the low 16 bits (round to nearest even): a bf16 MMA operand. */
    public static int packBf16x2(float lo, float hi) {
        return (floatToBf16(lo) & 0xffff) | floatToBf16(hi) << 16;
    }

    /** bfloat16 bits to float: the high half of an IEEE float. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** Float to bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
    public static short floatToBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }
}
