package io.lightllm.tornado.api;

/**
 * Element types of off-heap arrays and device buffers. {@link #F8_E4M3} is OCP fp8 E4M3 in its
 * "fn" variant (torch's {@code float8_e4m3fn}): no infinities, largest finite 448, NaN only at
 * S.1111.111 ({@link KMath#e4m3ToFloat} has the encoding).
 */
public enum DType {
    F32(4), F16(2), BF16(2), F8_E4M3(1), I8(1), I32(4), I64(8);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** Parses the names used by safetensors and GGUF ("F32", "BF16", "F8_E4M3", ...) and torch's ("float8_e4m3fn"). */
    public static DType fromName(String name) {
        return switch (name.toUpperCase(java.util.Locale.ROOT)) {
            case "F32", "FLOAT32" -> F32;
            case "F16", "FLOAT16", "HALF" -> F16;
            case "BF16", "BFLOAT16" -> BF16;
            case "F8_E4M3", "FP8", "FLOAT8_E4M3FN" -> F8_E4M3;
            case "I8", "INT8" -> I8;
            case "I32", "INT32" -> I32;
            case "I64", "INT64" -> I64;
            default -> throw new IllegalArgumentException("unsupported dtype: " + name);
        };
    }
}
