package io.lightllm.tornado.api;

/** Element types of off-heap arrays and device buffers. */
public enum DType {
    F32(4), F16(2), BF16(2), I8(1), I32(4), I64(8);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** Parses the names used by safetensors and GGUF ("F32", "BF16", ...). */
    public static DType fromName(String name) {
        return switch (name.toUpperCase(java.util.Locale.ROOT)) {
            case "F32", "FLOAT32" -> F32;
            case "F16", "FLOAT16", "HALF" -> F16;
            case "BF16", "BFLOAT16" -> BF16;
            case "I8", "INT8" -> I8;
            case "I32", "INT32" -> I32;
            case "I64", "INT64" -> I64;
            default -> throw new IllegalArgumentException("unsupported dtype: " + name);
        };
    }
}
