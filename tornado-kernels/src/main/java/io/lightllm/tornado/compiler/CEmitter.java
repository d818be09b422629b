package io.lightllm.tornado.compiler;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.compiler.Ir.Array;
import io.lightllm.tornado.compiler.Ir.Binary;
import io.lightllm.tornado.compiler.Ir.Call;
import io.lightllm.tornado.compiler.Ir.Compare;
import io.lightllm.tornado.compiler.Ir.Compare3;
import io.lightllm.tornado.compiler.Ir.Const;
import io.lightllm.tornado.compiler.Ir.Convert;
import io.lightllm.tornado.compiler.Ir.Expr;
import io.lightllm.tornado.compiler.Ir.Load;
import io.lightllm.tornado.compiler.Ir.Space;
import io.lightllm.tornado.compiler.Ir.Stmt;
import io.lightllm.tornado.compiler.Ir.Type;
import io.lightllm.tornado.compiler.Ir.Unary;
import io.lightllm.tornado.compiler.Ir.Var;
import java.util.Map;
import java.util.stream.Collectors;

/** Writes the IR as OpenCL C or CUDA C. The two differ only in spelling, which lives here. */
final class CEmitter {
    private final Dialect d;
    private final boolean cl;

    private CEmitter(Dialect d) {
        this.d = d;
        this.cl = d == Dialect.OPENCL;
    }

    static String emit(Translator t, Dialect dialect, String entry) {
        return new CEmitter(dialect).source(t, entry);
    }

    private String source(Translator t, String entry) {
        StringBuilder sb = new StringBuilder();
        sb.append(cl ? OPENCL_PRELUDE : CUDA_PRELUDE);
        if (cl && t.usesDouble) {
            sb.insert(0, "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n");
        }
        sb.append(cl ? "__kernel void " : "extern \"C\" __global__ void ").append(entry).append('(');
        String params = t.parameters.stream().map(p -> p instanceof Array a
                ? pointerType(a.dtype()) + " " + a.name()
                : scalarType(((Var) p).type()) + " " + ((Var) p).name()).collect(Collectors.joining(", "));
        sb.append(params).append(") {\n");
        java.util.Set<String> paramNames = t.parameters.stream().filter(p -> p instanceof Var).map(p -> ((Var) p).name())
                .collect(Collectors.toSet());
        for (Map.Entry<String, Type> v : t.variables.entrySet()) {
            if (!paramNames.contains(v.getKey())) {
                sb.append("  ").append(scalarType(v.getValue())).append(' ').append(v.getKey()).append(";\n");
            }
        }
        for (Array a : t.localArrays) {
            sb.append(cl ? "  __local " : "  __shared__ ").append(scalarType(a.elementType())).append(' ').append(a.name())
                    .append('[').append(a.size()).append("];\n");
        }
        for (Array a : t.privateArrays) {
            sb.append("  ").append(scalarType(a.elementType())).append(' ').append(a.name()).append('[').append(a.size()).append("];\n");
        }
        if (!t.privateArrays.isEmpty()) {
            sb.append("  int lj_z;\n");
        }
        for (Stmt s : t.body) {
            sb.append(statement(s)).append('\n');
        }
        return sb.append("}\n").toString();
    }

    // ---- types ---------------------------------------------------------------------------

    private String scalarType(Type t) {
        return switch (t) {
            case INT -> "int";
            case LONG -> cl ? "long" : "long long";
            case FLOAT -> "float";
            case DOUBLE -> "double";
        };
    }

    private String pointerType(DType dt) {
        String e = switch (dt) {
            case F32 -> "float";
            case F16 -> cl ? "half" : "unsigned short";
            case BF16 -> cl ? "ushort" : "unsigned short";
            case I8 -> cl ? "char" : "signed char";
            case I32 -> "int";
            case I64 -> cl ? "long" : "long long";
        };
        return (cl ? "__global " : "") + e + "*";
    }

    // ---- statements ----------------------------------------------------------------------

    private String statement(Stmt s) {
        return switch (s) {
            case Ir.Assign a -> "  " + a.target().name() + " = " + expr(a.value()) + ";";
            case Ir.Store st -> "  " + store(st.array(), expr(st.index()), st.value()) + ";";
            case Ir.Label l -> l.name() + ": ;";
            case Ir.Goto g -> "  goto " + g.label() + ";";
            case Ir.IfGoto i -> "  if (" + expr(i.condition()) + ") goto " + i.label() + ";";
            case Ir.Switch sw -> {
                StringBuilder b = new StringBuilder("  switch (" + expr(sw.key()) + ") {");
                for (int i = 0; i < sw.keys().length; i++) {
                    b.append(" case ").append(sw.keys()[i]).append(": goto ").append(sw.labels()[i]).append(';');
                }
                yield b.append(" default: goto ").append(sw.defaultLabel()).append("; }").toString();
            }
            case Ir.Effect e -> "  " + call(e.call()) + ";";
            case Ir.Return r -> "  return;";
            case Ir.ZeroArray z -> "  for (lj_z = 0; lj_z < " + z.array().size() + "; lj_z++) " + z.array().name() + "[lj_z] = 0;";
        };
    }

    private String store(Array a, String index, Expr value) {
        String v = expr(value);
        if (a.space() != Space.GLOBAL) {
            return a.name() + "[" + index + "] = " + convertTo(value.type(), a.elementType(), v);
        }
        String p = a.name();
        return switch (a.dtype()) {
            case F32 -> p + "[" + index + "] = " + convertTo(value.type(), Type.FLOAT, v);
            case F16 -> cl ? "vstore_half_rte(" + convertTo(value.type(), Type.FLOAT, v) + ", " + index + ", " + p + ")"
                    : p + "[" + index + "] = lj_f32_to_f16(" + convertTo(value.type(), Type.FLOAT, v) + ")";
            case BF16 -> p + "[" + index + "] = lj_f32_to_bf16(" + convertTo(value.type(), Type.FLOAT, v) + ")";
            case I8 -> p + "[" + index + "] = (" + (cl ? "char" : "signed char") + ")" + convertTo(value.type(), Type.INT, v);
            case I32 -> p + "[" + index + "] = " + convertTo(value.type(), Type.INT, v);
            case I64 -> p + "[" + index + "] = " + convertTo(value.type(), Type.LONG, v);
        };
    }

    /** Java's implicit conversion of a stored value (setFloat on an int array truncates like a cast). */
    private String convertTo(Type from, Type to, String v) {
        if (from == to) {
            return v;
        }
        return expr(new Convert(new Var(v, from), to, null));
    }

    // ---- expressions ---------------------------------------------------------------------

    private String expr(Expr e) {
        return switch (e) {
            case Const c -> constant(c);
            case Var v -> v.name();
            case Binary b -> binary(b);
            case Unary u -> "(" + u.op() + expr(u.operand()) + ")";
            case Compare c -> "(" + expr(c.left()) + " " + c.op() + " " + expr(c.right()) + ")";
            case Compare3 c -> {
                String l = expr(c.left()), r = expr(c.right());
                yield "((" + l + " > " + r + ") ? 1 : (" + l + " < " + r + ") ? -1 : (" + l + " == " + r + ") ? 0 : " + c.nanResult() + ")";
            }
            case Convert c -> convert(c);
            case Call c -> call(c);
            case Load l -> load(l);
        };
    }

    private String constant(Const c) {
        return switch (c.type()) {
            case INT -> {
                int v = ((Number) c.value()).intValue();
                yield v == Integer.MIN_VALUE ? "(-2147483647-1)" : v < 0 ? "(" + v + ")" : Integer.toString(v);
            }
            case LONG -> {
                long v = ((Number) c.value()).longValue();
                String suffix = cl ? "L" : "LL";
                yield v == Long.MIN_VALUE ? "(-9223372036854775807" + suffix + "-1" + suffix + ")"
                        : v < 0 ? "(" + v + suffix + ")" : v + suffix;
            }
            case FLOAT -> {
                float v = ((Number) c.value()).floatValue();
                if (Float.isNaN(v) || Float.isInfinite(v)) {
                    yield bitsToFloat("0x" + Integer.toHexString(Float.floatToRawIntBits(v)));
                }
                yield "(" + Float.toHexString(v) + "f)";
            }
            case DOUBLE -> {
                double v = ((Number) c.value()).doubleValue();
                if (Double.isNaN(v) || Double.isInfinite(v)) {
                    yield cl ? "as_double(0x" + Long.toHexString(Double.doubleToRawLongBits(v)) + "L)"
                            : "__longlong_as_double(0x" + Long.toHexString(Double.doubleToRawLongBits(v)) + "LL)";
                }
                yield "(" + Double.toHexString(v) + ")";
            }
        };
    }

    private String bitsToFloat(String bits) {
        return cl ? "as_float(" + bits + ")" : "__int_as_float(" + bits + ")";
    }

    private String binary(Binary b) {
        String l = expr(b.left()), r = expr(b.right());
        boolean isLong = b.type() == Type.LONG;
        String mask = isLong ? "63" : "31";
        return switch (b.op()) {
            case "<<", ">>" -> "(" + l + " " + b.op() + " (" + r + " & " + mask + "))";
            case ">>>" -> {
                String u = isLong ? (cl ? "ulong" : "unsigned long long") : (cl ? "uint" : "unsigned int");
                yield "((" + scalarType(b.type()) + ")((" + u + ")" + l + " >> (" + r + " & " + mask + ")))";
            }
            default -> "(" + l + " " + b.op() + " " + r + ")";
        };
    }

    private String convert(Convert c) {
        String x = expr(c.operand());
        Type from = c.operand().type();
        if (c.narrow() != null) {
            String t = switch (c.narrow()) {
                case "byte" -> cl ? "char" : "signed char";
                case "short" -> "short";
                default -> cl ? "ushort" : "unsigned short";
            };
            return "((int)(" + t + ")" + x + ")";
        }
        boolean fromFloating = from == Type.FLOAT || from == Type.DOUBLE;
        if (cl && fromFloating && (c.type() == Type.INT || c.type() == Type.LONG)) {
            // Java truncates and saturates, NaN gives 0: exactly OpenCL's _sat_rtz conversions
            return "convert_" + scalarType(c.type()) + "_sat_rtz(" + x + ")";
        }
        return "((" + scalarType(c.type()) + ")" + x + ")";
    }

    private String load(Load l) {
        Array a = l.array();
        String idx = expr(l.index());
        if (a.space() != Space.GLOBAL) {
            return convertTo(a.elementType(), l.type(), a.name() + "[" + idx + "]");
        }
        String p = a.name();
        if (l.raw()) {
            String ushort = cl ? "__global ushort*" : "unsigned short*";
            return "((int)(short)((" + ushort + ")" + p + ")[" + idx + "])";
        }
        String v = switch (a.dtype()) {
            case F32 -> p + "[" + idx + "]";
            case F16 -> cl ? "vload_half(" + idx + ", " + p + ")" : "lj_f16_to_f32(" + p + "[" + idx + "])";
            case BF16 -> "lj_bf16_to_f32(" + p + "[" + idx + "])";
            case I8 -> "((int)" + p + "[" + idx + "])";
            case I32, I64 -> p + "[" + idx + "]";
        };
        Type stored = switch (a.dtype()) {
            case F32, F16, BF16 -> Type.FLOAT;
            case I8, I32 -> Type.INT;
            case I64 -> Type.LONG;
        };
        return convertTo(stored, l.type(), v);
    }

    private String call(Call c) {
        var args = c.args().stream().map(this::expr).toList();
        String a0 = args.isEmpty() ? "" : args.get(0);
        String all = String.join(", ", args);
        boolean dbl = c.type() == Type.DOUBLE || (!c.args().isEmpty() && c.args().get(0).type() == Type.DOUBLE);
        String f = !cl && !dbl ? "f" : ""; // CUDA's single-precision math functions end in f
        return switch (c.intrinsic()) {
            case "globalId" -> cl ? "((int)get_global_id(" + a0 + "))" : "((int)(blockIdx." + axis(c) + " * blockDim." + axis(c) + " + threadIdx." + axis(c) + "))";
            case "localId" -> cl ? "((int)get_local_id(" + a0 + "))" : "((int)threadIdx." + axis(c) + ")";
            case "groupId" -> cl ? "((int)get_group_id(" + a0 + "))" : "((int)blockIdx." + axis(c) + ")";
            case "localSize" -> cl ? "((int)get_local_size(" + a0 + "))" : "((int)blockDim." + axis(c) + ")";
            case "globalSize" -> cl ? "((int)get_global_size(" + a0 + "))" : "((int)(gridDim." + axis(c) + " * blockDim." + axis(c) + "))";
            case "localBarrier" -> cl ? "barrier(CLK_LOCAL_MEM_FENCE)" : "__syncthreads()";
            case "globalBarrier" -> cl ? "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)" : "__syncthreads()";
            case "atomicAdd" -> atomicAdd(c);
            case "subGroupSize" -> cl ? "lj_sub_group_size()" : "lj_warp_width()";
            case "subGroupReduceAdd" -> cl ? "lj_sub_group_sum(" + a0 + ")" : "lj_warp_sum(" + a0 + ")";
            case "exp", "log", "sqrt", "tanh", "pow", "sin", "cos", "erf", "fma", "floor", "round", "fmax", "fmin", "fabs", "ceil" ->
                    c.intrinsic() + f + "(" + all + ")";
            case "rsqrt" -> "rsqrt" + f + "(" + all + ")";
            case "fmodf", "fmod" -> cl ? "fmod(" + all + ")" : c.intrinsic() + "(" + all + ")";
            case "imax" -> "max(" + all + ")";
            case "imin" -> "min(" + all + ")";
            case "iabs" -> c.type() == Type.LONG ? (cl ? "((long)abs(" + a0 + "))" : "llabs(" + a0 + ")") : (cl ? "((int)abs(" + a0 + "))" : "abs(" + a0 + ")");
            case "floatBits" -> cl ? "as_int(" + a0 + ")" : "__float_as_int(" + a0 + ")";
            case "bitsFloat" -> bitsToFloat(a0);
            case "isnan" -> "(isnan(" + a0 + ") ? 1 : 0)";
            case "f16ToFloat" -> "lj_f16_to_f32((" + (cl ? "ushort" : "unsigned short") + ")" + a0 + ")";
            case "bf16ToFloat" -> "lj_bf16_to_f32((" + (cl ? "ushort" : "unsigned short") + ")" + a0 + ")";
            case "floatToF16" -> "((int)(short)lj_f32_to_f16(" + a0 + "))";
            case "floatToBf16" -> "((int)(short)lj_f32_to_bf16(" + a0 + "))";
            default -> throw new IllegalStateException("no spelling for intrinsic " + c.intrinsic());
        };
    }

    private static String axis(Call c) {
        int dim = ((Number) ((Const) c.args().getFirst()).value()).intValue();
        return switch (dim) {
            case 0 -> "x";
            case 1 -> "y";
            default -> "z";
        };
    }

    private String atomicAdd(Call c) {
        Load target = (Load) c.args().get(0);
        String addr = "&" + target.array().name() + "[" + expr(target.index()) + "]";
        String delta = expr(c.args().get(1));
        if (!cl) {
            return "atomicAdd(" + addr + ", " + delta + ")";
        }
        if (c.type() == Type.FLOAT) {
            return (target.array().space() == Space.LOCAL ? "lj_atomic_add_f32_local(" : "lj_atomic_add_f32(") + addr + ", " + delta + ")";
        }
        return "atomic_add(" + addr + ", " + delta + ")";
    }

    private static final String OPENCL_PRELUDE = """
            // generated by lightllm-java's kernel compiler from Java bytecode
            #ifdef cl_khr_subgroups
            #pragma OPENCL EXTENSION cl_khr_subgroups : enable
            int lj_sub_group_size() { return (int)get_sub_group_size(); }
            float lj_sub_group_sum(float v) { return sub_group_reduce_add(v); }
            #else
            // no sub-groups on this device: each work-item is its own sub-group
            int lj_sub_group_size() { return 1; }
            float lj_sub_group_sum(float v) { return v; }
            #endif
            float lj_bf16_to_f32(ushort b) { return as_float(((uint)b) << 16); }
            ushort lj_f32_to_bf16(float f) {
              uint u = as_uint(f);
              if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
              return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            }
            float lj_f16_to_f32(ushort h) { return vload_half(0, (const __private half*)&h); }
            ushort lj_f32_to_f16(float f) { ushort r; vstore_half_rte(f, 0, (__private half*)&r); return r; }
            float lj_atomic_add_f32(volatile __global float* p, float d) {
              union { uint u; float f; } o, n;
              do { o.f = *p; n.f = o.f + d; } while (atomic_cmpxchg((volatile __global uint*)p, o.u, n.u) != o.u);
              return o.f;
            }
            float lj_atomic_add_f32_local(volatile __local float* p, float d) {
              union { uint u; float f; } o, n;
              do { o.f = *p; n.f = o.f + d; } while (atomic_cmpxchg((volatile __local uint*)p, o.u, n.u) != o.u);
              return o.f;
            }
            """;

    private static final String CUDA_PRELUDE = """
            // generated by lightllm-java's kernel compiler from Java bytecode
            // sub-groups are warps, or the whole block when it is smaller than a warp (local sizes are powers of two)
            __device__ __forceinline__ int lj_warp_width() { return blockDim.x * blockDim.y * blockDim.z < 32 ? (int)(blockDim.x * blockDim.y * blockDim.z) : 32; }
            __device__ __forceinline__ float lj_warp_sum(float v) {
              int w = lj_warp_width();
              unsigned mask = __activemask();
              for (int o = w / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o, w);
              return v;
            }
            __device__ __forceinline__ float lj_bf16_to_f32(unsigned short b) { return __int_as_float(((unsigned int)b) << 16); }
            __device__ __forceinline__ unsigned short lj_f32_to_bf16(float f) {
              unsigned int u = __float_as_uint(f);
              if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
              return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            }
            __device__ __forceinline__ float lj_f16_to_f32(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
            __device__ __forceinline__ unsigned short lj_f32_to_f16(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
            """;
}
