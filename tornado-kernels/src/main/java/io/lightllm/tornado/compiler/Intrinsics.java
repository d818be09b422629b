package io.lightllm.tornado.compiler;

import io.lightllm.tornado.compiler.Ir.Call;
import io.lightllm.tornado.compiler.Ir.Expr;
import io.lightllm.tornado.compiler.Ir.Type;
import java.lang.constant.MethodTypeDesc;
import java.util.List;

/**
 * Static methods of the JDK and of the kernel API that kernels may call, mapped to the
 * compiler's intrinsic names (spelled per dialect by {@link CEmitter}). Everything else of
 * the JDK is refused; static methods of user classes are inlined instead.
 */
final class Intrinsics {
    /**
     * The KMath methods on packed 16-bit pairs and bytes (MMA operands), named as themselves; their C helpers are in
     * the warp model's prelude, so a kernel that calls one gets it.
     */
    static final java.util.Set<String> PACKED_PAIRS = java.util.Set.of("packHalf2", "packBf16x2", "int8x2ToHalf2", "int8x2ToBf16x2",
            "nibblesToBf16x2", "fmaBf16x2", "e4m3x2ToHalf2", "mulHalf2", "bytePerm", "dot4I8");

    private Intrinsics() {
    }

    static boolean isUserCode(String internalName) {
        return !internalName.startsWith("java/") && !internalName.startsWith("jdk/")
                && !internalName.startsWith("io/lightllm/tornado/api/");
    }

    /** The intrinsic call for {@code owner.name(type)}, or null when there is none. */
    static Call map(String owner, String name, MethodTypeDesc type, List<Expr> args) {
        String desc = type.descriptorString();
        Type ret = switch (type.returnType().descriptorString()) {
            case "I", "Z", "S", "B", "C" -> Type.INT;
            case "J" -> Type.LONG;
            case "F" -> Type.FLOAT;
            case "D" -> Type.DOUBLE;
            default -> null;
        };
        if (ret == null) {
            return null;
        }
        String intrinsic = switch (owner) {
            case "io/lightllm/tornado/api/KMath" -> switch (name) {
                case "exp", "exp2", "log", "sqrt", "rsqrt", "tanh", "pow", "sin", "cos", "erf", "fma", "floor", "round" -> name;
                case "max", "min" -> ret == Type.FLOAT ? "f" + name : "i" + name;
                case "abs" -> "fabs";
                case "f16ToFloat" -> "f16ToFloat";
                case "floatToF16" -> "floatToF16";
                case "bf16ToFloat" -> "bf16ToFloat";
                case "floatToBf16" -> "floatToBf16";
                case "e4m3ToFloat" -> "e4m3ToFloat";
                case "floatToE4m3" -> "floatToE4m3";
                default -> PACKED_PAIRS.contains(name) ? name : null;
            };
            case "java/lang/Math", "java/lang/StrictMath" -> switch (name + desc) {
                case "max(II)I", "max(JJ)J" -> "imax";
                case "min(II)I", "min(JJ)J" -> "imin";
                case "max(FF)F", "max(DD)D" -> "fmax";
                case "min(FF)F", "min(DD)D" -> "fmin";
                case "abs(I)I", "abs(J)J" -> "iabs";
                case "abs(F)F", "abs(D)D" -> "fabs";
                case "fma(FFF)F", "fma(DDD)D" -> "fma";
                case "sqrt(D)D", "exp(D)D", "log(D)D", "tanh(D)D", "sin(D)D", "cos(D)D", "floor(D)D", "ceil(D)D", "pow(DD)D" -> name;
                default -> null;
            };
            case "java/lang/Float" -> switch (name) {
                case "floatToRawIntBits", "floatToIntBits" -> "floatBits";
                case "intBitsToFloat" -> "bitsFloat";
                case "isNaN" -> "isnan";
                case "float16ToFloat" -> "f16ToFloat";
                case "floatToFloat16" -> "floatToF16";
                default -> null;
            };
            default -> null;
        };
        return intrinsic == null ? null : new Call(intrinsic, args, ret);
    }
}
