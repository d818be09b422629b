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

    /**
     * 2 to the power x (the GPU's native exponential: scale by log2(e) to get exp). On CUDA the hardware's
     * approximation (ex2.approx.ftz: about 2 ulp, results below 2^-126 are 0), for softmaxes.
     */
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

    /**
     * Bytes {@code 2 pair} and {@code 2 pair + 1} of {@code word} (pair 0 or 1), as signed int8, as a
     * pair of halves packed as {@link #packHalf2} packs them; exact, as every int8 is an f16. On CUDA
     * a byte permute and one f16x2 subtraction (the 0x6400 exponent trick), where converting through
     * floats took two int-to-float and a pack conversion, quarter-rate instructions, per pair.
     */
    public static int int8x2ToHalf2(int word, int pair) {
        int shift = 16 * pair;
        return packHalf2((byte) (word >> shift), (byte) (word >> (shift + 8)));
    }

    /**
     * {@link #int8x2ToHalf2} as a pair of bfloat16, packed as {@link #packBf16x2} packs them; exact, as every
     * int8 is a bfloat16. On CUDA two byte permutes place the codes (biased by 128) under the float 2^23's
     * exponent, two float subtractions leave the codes, a third permute keeps their high halves (vLLM's
     * Marlin does the same): no int-to-float conversion, a quarter-rate instruction.
     */
    public static int int8x2ToBf16x2(int word, int pair) {
        int shift = 16 * pair;
        return packBf16x2((byte) (word >> shift), (byte) (word >> (shift + 8)));
    }

    /**
     * The nibbles at bits {@code shift..shift+3} and {@code shift+8..shift+11} of {@code word}, each minus
     * {@code centre} (0 to 15), as a pair of bfloat16 packed as {@link #packBf16x2} packs them; exact. On CUDA
     * a shift, a byte permute and a logic op place the nibbles in the mantissas of the bf16 128.0, and one
     * bf16x2 multiply-add subtracts 128 + centre (Marlin's int4 trick): no int-to-float conversion.
     */
    public static int nibblesToBf16x2(int word, int shift, int centre) {
        return packBf16x2(((word >>> shift) & 15) - centre, ((word >>> (shift + 8)) & 15) - centre);
    }

    /**
     * {@code a * b + c} for each of two pairs of packed bfloat16, rounded to bfloat16 (CUDA's {@code fma.rn.bf16x2});
     * here computed in float and rounded, which is the same whenever the float result is exact, as it is for
     * small integer codes times bf16 scales plus bf16 offsets: how int4 weights are dequantised into MMA fragments.
     */
    public static int fmaBf16x2(int a, int b, int c) {
        float lo = bf16ToFloat((short) a) * bf16ToFloat((short) b) + bf16ToFloat((short) c);
        float hi = bf16ToFloat((short) (a >>> 16)) * bf16ToFloat((short) (b >>> 16)) + bf16ToFloat((short) (c >>> 16));
        return packBf16x2(lo, hi);
    }

    /**
     * Bytes {@code 2 pair} and {@code 2 pair + 1} of {@code word}, fp8 e4m3 codes, as a pair of
     * packed halves, exactly (every e4m3 value but NaN is an f16; the NaN codes 0x7f and 0xff are
     * not decoded as NaN on CUDA). On CUDA a byte permute, two logic ops and one f16x2 multiply:
     * the code's exponent and mantissa bits placed in a half's, then moved from bias 7 to 15.
     */
    public static int e4m3x2ToHalf2(int word, int pair) {
        int shift = 16 * pair;
        return packHalf2(e4m3ToFloat((byte) (word >> shift)), e4m3ToFloat((byte) (word >> (shift + 8))));
    }

    /**
     * Bytes picked from the eight of {@code lo} (bytes 0-3) and {@code hi} (bytes 4-7): byte i of the
     * result is the byte numbered by nibble i of {@code selector} (nibbles 0-7; CUDA's {@code __byte_perm}
     * without its sign modes). With {@link #int8x2ToHalf2} it pairs bytes of two words, as an MMA
     * fragment that takes one element from each of two rows wants: {@code bytePerm(a, b, 0x5140)} is
     * a0 b0 a1 b1. On CUDA one {@code prmt}.
     */
    public static int bytePerm(int lo, int hi, int selector) {
        long bytes = (lo & 0xffffffffL) | (long) hi << 32;
        int r = 0;
        for (int i = 0; i < 4; i++) {
            r |= (int) (bytes >>> (8 * ((selector >>> (4 * i)) & 7)) & 0xff) << (8 * i);
        }
        return r;
    }

    /**
     * {@code acc} plus the dot product of the four signed bytes of {@code a} with those of {@code b} (byte i with
     * byte i): four integer multiply-adds in one instruction on CUDA ({@code dp4a}, sm_61 and newer), exact.
     */
    public static int dot4I8(int a, int b, int acc) {
        return acc + (byte) a * (byte) b + (byte) (a >> 8) * (byte) (b >> 8) + (byte) (a >> 16) * (byte) (b >> 16)
                + (byte) (a >> 24) * (byte) (b >> 24);
    }

    /** The products of two pairs of packed halves, each rounded to the nearest half (f16x2 multiply). */
    public static int mulHalf2(int a, int b) {
        float lo = Float.float16ToFloat((short) a) * Float.float16ToFloat((short) b); // exact: 11 x 11 significant bits
        float hi = Float.float16ToFloat((short) (a >>> 16)) * Float.float16ToFloat((short) (b >>> 16));
        return packHalf2(lo, hi);
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

    // ---- fp8 E4M3 ("fn": no infinities) -------------------------------------------------------
    //
    // The one definition of the format: Float8Array, the JVM's Vector API kernels and the C helpers
    // lj_e4m3_to_f32 / lj_f32_to_e4m3 of the kernel compiler's OpenCL and CUDA preludes follow these
    // two methods step by step (Fp8E4m3Test checks all of them against torch's float8_e4m3fn).
    // A code is S.EEEE.MMM with exponent bias 7: E > 0 gives (1 + M/8) 2^(E-7), E = 0 the
    // subnormals M 2^-9; S.1111.111 is NaN, so the largest finite value is 1.75 * 2^8 = 448.

    /** Largest finite e4m3 value. */
    public static final float E4M3_MAX = 448f;

    /** An e4m3 code to float, exactly (NaN codes to a quiet NaN of the same sign; -0 stays -0). */
    public static float e4m3ToFloat(byte code) {
        int m = code & 0x7f;
        // a normal code is the top of a float's exponent and mantissa once the bias moves from 7 to 127;
        // subnormals are scaled in float arithmetic, which never leaves float's normal range here
        int magnitude = m == 0x7f ? 0x7fc00000 : m >= 0x08 ? (m << 20) + (120 << 23) : Float.floatToRawIntBits(m * 0x1p-9f);
        return Float.intBitsToFloat(magnitude | (code & 0x80) << 24);
    }

    /**
     * A float to the nearest e4m3 code, ties to even. Finite values beyond +-448 and infinities
     * saturate to +-448 (as vLLM's scaled conversion and PTX's cvt.satfinite do; e4m3fn has no
     * infinity, and its only other choice would be NaN); NaN gives NaN (S.1111.111); the sign of
     * zero is kept.
     */
    public static byte floatToE4m3(float x) {
        int bits = Float.floatToRawIntBits(x);
        int a = bits & 0x7fffffff;
        int code;
        if (a > 0x7f800000) {
            code = 0x7f; // NaN
        } else if (a >= 0x43e00000) {
            code = 0x7e; // 448 and beyond: saturate
        } else if (a >= 0x3c800000) {
            // normal (from 2^-6): round the 23-bit mantissa to 3 bits, ties to even (a carry moves into the
            // exponent, as it should), then rebias the exponent from 127 to 7
            code = ((a + 0x7ffff + ((a >> 20) & 1)) >> 20) - (120 << 3);
        } else {
            // subnormal: a multiple of 2^-9 (x * 512 is exact); 8 there is the smallest normal code, 0x08
            code = (int) Math.rint(Float.intBitsToFloat(a) * 512f);
        }
        return (byte) ((bits >>> 24 & 0x80) | code);
    }
}
