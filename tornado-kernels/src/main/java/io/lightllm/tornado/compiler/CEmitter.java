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

    /** @param bounds CUDA's launch bounds for the kernel, or null (OpenCL has none) */
    static String emit(Translator t, Dialect dialect, String entry, io.lightllm.tornado.runtime.KernelRef.LaunchBounds bounds) {
        return new CEmitter(dialect).source(t, entry, bounds);
    }

    private String source(Translator t, String entry, io.lightllm.tornado.runtime.KernelRef.LaunchBounds bounds) {
        StringBuilder sb = new StringBuilder();
        sb.append(cl ? OPENCL_PRELUDE : CUDA_PRELUDE);
        if (t.usesWarpModel) {
            sb.append(cl ? OPENCL_WARP_PRELUDE : CUDA_WARP_PRELUDE);
        }
        if (cl && t.usesDouble) {
            sb.insert(0, "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n");
        }
        sb.append(cl ? "__kernel void " : "extern \"C\" __global__ void ");
        if (!cl && bounds != null) {
            sb.append("__launch_bounds__(").append(bounds.items()).append(", ").append(bounds.groupsPerUnit()).append(") ");
        }
        sb.append(entry).append('(');
        String params = t.parameters.stream().map(p -> p instanceof Array a
                ? pointerType(a.dtype()) + " " + a.name()
                : scalarType(((Var) p).type()) + " " + ((Var) p).name()).collect(Collectors.joining(", "));
        sb.append(params).append(") {\n");
        if (!cl) {
            sb.append(PROGRAMMATIC_LAUNCH_WAIT);
        }
        java.util.Set<String> paramNames = t.parameters.stream().filter(p -> p instanceof Var).map(p -> ((Var) p).name())
                .collect(Collectors.toSet());
        for (Map.Entry<String, Type> v : t.variables.entrySet()) {
            if (!paramNames.contains(v.getKey())) {
                sb.append("  ").append(scalarType(v.getValue())).append(' ').append(v.getKey()).append(";\n");
            }
        }
        // 16-byte aligned: vector accesses, asynchronous copies and matrix loads work on whole 16-byte rows; 1024 where
        // warpgroup MMAs read the arrays (their 128-byte swizzle is a function of the address within 1024-byte atoms)
        int align = localAlignment(t);
        int dynamic = dynamicLocalBytes(t, d);
        if (dynamic > 0) {
            // over CUDA's 48 KB of static shared memory: one dynamic block, the arrays at aligned offsets in it
            sb.append("  extern __shared__ __align__(").append(align).append(") unsigned char lj_shared[];\n");
            int offset = 0;
            for (Array a : t.localArrays) {
                String type = scalarType(a.elementType());
                sb.append("  ").append(type).append("* ").append(a.name()).append(" = (").append(type).append("*)(lj_shared + ").append(offset)
                        .append(");\n");
                offset += alignedBytes(a, align);
            }
        } else {
            for (Array a : t.localArrays) {
                sb.append(cl ? "  __local " : "  __shared__ __align__(" + align + ") ").append(scalarType(a.elementType())).append(' ').append(a.name())
                        .append('[').append(a.size()).append(']').append(cl ? " __attribute__((aligned(" + align + ")))" : "").append(";\n");
            }
        }
        if (cl && Feature.exchangesLanes(t.features)) {
            // the exchange through which the emulated warps share their lanes' values
            sb.append("  __local int lj_xchg[").append(WARP_EXCHANGE_INTS).append("];\n");
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

    /** CUDA's limit on static shared memory per block; more is dynamic, opted into per kernel. */
    static final int STATIC_SHARED_LIMIT = 48 * 1024;

    /**
     * The dynamic shared memory a CUDA launch of the kernel needs: 0 when its local arrays fit the
     * static limit (or for OpenCL, whose local arrays are sized in the source), else their bytes.
     */
    static int dynamicLocalBytes(Translator t, Dialect d) {
        if (d != Dialect.CUDA) {
            return 0;
        }
        long total = 0;
        int align = localAlignment(t);
        for (Array a : t.localArrays) {
            total += alignedBytes(a, align);
        }
        return total > STATIC_SHARED_LIMIT ? (int) total : 0;
    }

    private static int localAlignment(Translator t) {
        return t.features.contains(Feature.WARPGROUP_MMA) ? 1024 : 16;
    }

    private static int alignedBytes(Array a, int align) {
        int bytes = a.size() * (a.elementType().wide() ? 8 : 4);
        return (bytes + align - 1) / align * align;
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
            case F8_E4M3 -> cl ? "uchar" : "unsigned char";
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
            case Ir.ArrayIntrinsic ai -> "  " + arrayIntrinsic(ai);
        };
    }

    /**
     * Largest work-group the OpenCL emulation of the warp operations serves: its exchange holds six
     * ints per work-item (a lane's A and B fragments).
     */
    static final int WARP_EXCHANGE_MAX_ITEMS = 256;
    private static final int WARP_EXCHANGE_INTS = WARP_EXCHANGE_MAX_ITEMS * 6;

    private String arrayIntrinsic(Ir.ArrayIntrinsic ai) {
        java.util.List<Object> o = ai.operands();
        return switch (ai.name()) {
            case "mmaF16", "mmaBf16" -> {
                boolean bf16 = ai.name().equals("mmaBf16");
                String args = offset(o, 0) + ", " + offset(o, 2) + ", " + offset(o, 4);
                yield cl ? "lj_mma(" + args + ", lj_xchg, " + (bf16 ? 1 : 0) + ");"
                        : (bf16 ? "lj_mma_bf16(" : "lj_mma_f16(") + args + ");";
            }
            case "loadMatrixA", "loadMatrixB", "loadMatrixBTransposed" -> {
                String f = switch (ai.name()) {
                    case "loadMatrixA" -> "lj_ldmatrix_a";
                    case "loadMatrixB" -> "lj_ldmatrix_b";
                    default -> "lj_ldmatrix_bt";
                };
                yield f + "(" + offset(o, 0) + ", " + ((Array) o.get(2)).name() + ", " + expr((Expr) o.get(3)) + ", " + expr((Expr) o.get(4)) + ");";
            }
            case "warpgroupMmaBf16", "warpgroupMmaF16", "warpgroupMmaF16NMajorB" -> warpgroupMma(ai.name(), o);
            case "warpgroupArrive" -> cl ? "/* warpgroupArrive: the MMA is synchronous here */"
                    : "lj_fence_operands(" + ((Array) o.getFirst()).name() + ", " + ((Array) o.getFirst()).size() + "); asm volatile(\"wgmma.fence.sync.aligned;\" ::: \"memory\");";
            case "warpgroupCommit" -> cl ? "/* warpgroupCommit */" : "asm volatile(\"wgmma.commit_group.sync.aligned;\" ::: \"memory\");";
            case "warpgroupWait" -> cl ? "/* warpgroupWait: the MMA is synchronous here */"
                    : "asm volatile(\"wgmma.wait_group.sync.aligned %0;\" :: \"n\"(" + expr((Expr) o.get(1)) + ") : \"memory\"); lj_fence_operands("
                            + ((Array) o.getFirst()).name() + ", " + ((Array) o.getFirst()).size() + ");";
            case "warpgroupFenceLocal" -> cl ? "/* warpgroupFenceLocal */" : "asm volatile(\"fence.proxy.async.shared::cta;\" ::: \"memory\");";
            case "copyAsync" -> {
                Array src = (Array) o.get(2);
                yield "lj_copy_async(" + offset(o, 0) + ", " + (cl ? "(__global const uint*)" : "(const void*)") + "(" + src.name() + " + "
                        + expr((Expr) o.get(3)) + "));";
            }
            case "copyAsyncCommit" -> cl ? "/* copyAsyncCommit: copies are synchronous here */" : "LJ_CP_ASYNC_COMMIT();";
            case "copyAsyncWait" -> cl ? "/* copyAsyncWait: copies are synchronous here */" : "LJ_CP_ASYNC_WAIT(" + expr((Expr) o.getFirst()) + ");";
            case "getFloats" -> vectorLoad((Array) o.get(0), expr((Expr) o.get(1)), (Array) o.get(2), expr((Expr) o.get(3)), count(o));
            case "setFloats" -> vectorStore((Array) o.get(0), expr((Expr) o.get(1)), (Array) o.get(2), expr((Expr) o.get(3)), count(o));
            case "getWords" -> wordLoad((Array) o.get(0), expr((Expr) o.get(1)), (Array) o.get(2), expr((Expr) o.get(3)), count(o));
            default -> throw new IllegalStateException("no spelling for " + ai.name());
        };
    }

    /**
     * {@code warpgroupMma*(acc, a, aIndex, aStride, b, bIndex, bStride, n[, bBlockStride])}: on CUDA one {@code wgmma.mma_async}
     * with its n / 2 accumulators as register operands and the tiles as matrix descriptors; on OpenCL the product in loops.
     */
    private String warpgroupMma(String name, java.util.List<Object> o) {
        Array acc = (Array) o.getFirst();
        int n = ((Number) ((Const) o.get(7)).value()).intValue();
        boolean bf16 = name.equals("warpgroupMmaBf16");
        boolean nMajorB = name.equals("warpgroupMmaF16NMajorB");
        String aStride = expr((Expr) o.get(3)), bStride = expr((Expr) o.get(6)), bBlock = expr((Expr) o.get(8));
        if (cl) {
            return "lj_wgmma(" + acc.name() + ", " + ((Array) o.get(1)).name() + ", " + expr((Expr) o.get(2)) + ", " + aStride + ", "
                    + ((Array) o.get(4)).name() + ", " + expr((Expr) o.get(5)) + ", " + bStride + ", " + bBlock + ", " + n + ", " + (bf16 ? 1 : 0) + ");";
        }
        int regs = n / 2;
        String type = bf16 ? "bf16" : "f16";
        // an n-major B's descriptor: 8-row groups of k bStride apart (the stride field), column blocks of 64 n bBlock apart (the leading field)
        String db = nMajorB ? "lj_wgmma_desc_nmajor(" + offset(o, 4) + ", " + bStride + ", " + bBlock + ")" : "lj_wgmma_desc(" + offset(o, 4) + ", " + bStride + ")";
        StringBuilder asm = new StringBuilder("{ unsigned long long lj_da = lj_wgmma_desc(" + offset(o, 1) + ", " + aStride
                + "), lj_db = " + db + ";\n    asm volatile(\"{ .reg .pred p; setp.ne.b32 p, %"
                + (regs + 2) + ", 0; wgmma.mma_async.sync.aligned.m64n" + n + "k16.f32." + type + "." + type + " {");
        for (int i = 0; i < regs; i++) {
            asm.append(i == 0 ? "" : ", ").append('%').append(i);
        }
        asm.append("}, %").append(regs).append(", %").append(regs + 1).append(", p, 1, 1, 0, ").append(nMajorB ? 1 : 0).append("; }\"\n      : ");
        for (int i = 0; i < regs; i++) {
            asm.append(i == 0 ? "" : ", ").append("\"+f\"(").append(acc.name()).append('[').append(i).append("])");
        }
        return asm.append(" : \"l\"(lj_da), \"l\"(lj_db), \"r\"(1)); }").toString();
    }

    /** {@code array + index} for the operand pair at {@code i}: where a fragment starts. */
    private String offset(java.util.List<Object> o, int i) {
        return "(" + ((Array) o.get(i)).name() + " + " + expr((Expr) o.get(i + 1)) + ")";
    }

    private static int count(java.util.List<Object> o) {
        return ((Number) ((Const) o.get(4)).value()).intValue();
    }

    /**
     * {@code count} elements of {@code a} from {@code index}, widened to float, into {@code dst}: one
     * vector load (two for 8 floats) of whole 32-bit words on CUDA, OpenCL's vload on OpenCL.
     */
    private String vectorLoad(Array a, String index, Array dst, String dstIndex, int count) {
        StringBuilder b = new StringBuilder("{ int lj_o = " + dstIndex + "; ");
        int bytes = count * a.dtype().bytes();
        if (!cl && bytes >= 4 && a.dtype() != DType.I64) {
            int words = bytes / 4;
            b.append("unsigned int lj_w[").append(words).append("]; ");
            appendWordLoads(b, a, index, words, "lj_w[");
            for (int e = 0; e < count; e++) {
                String v = switch (a.dtype()) {
                    case F32 -> "__uint_as_float(lj_w[" + e + "])";
                    case F16 -> "lj_f16_to_f32((unsigned short)(lj_w[" + e / 2 + "] >> " + 16 * (e % 2) + "))";
                    case BF16 -> "lj_bf16_to_f32((unsigned short)(lj_w[" + e / 2 + "] >> " + 16 * (e % 2) + "))";
                    case F8_E4M3 -> "lj_e4m3_to_f32((unsigned char)(lj_w[" + e / 4 + "] >> " + 8 * (e % 4) + "))";
                    case I8 -> "(float)(signed char)(lj_w[" + e / 4 + "] >> " + 8 * (e % 4) + ")";
                    case I32 -> "(float)(int)lj_w[" + e + "]";
                    case I64 -> throw new IllegalStateException();
                };
                b.append(dst.name()).append("[lj_o + ").append(e).append("] = ").append(v).append("; ");
            }
            return b.append('}').toString();
        }
        if (cl && (a.dtype() == DType.F32 || a.dtype() == DType.F16)) {
            String load = (a.dtype() == DType.F16 ? "vload_half" : "vload") + count + "(0, " + a.name() + " + " + index + ")";
            b.append("float").append(count).append(" lj_v = ").append(load).append("; ");
            for (int e = 0; e < count; e++) {
                b.append(dst.name()).append("[lj_o + ").append(e).append("] = lj_v.s").append(e).append("; ");
            }
            return b.append('}').toString();
        }
        // element by element: the remaining dtypes on OpenCL, and 2-byte vectors of int8 and fp8
        for (int e = 0; e < count; e++) {
            String v = load(new Load(a, new Var("(" + index + " + " + e + ")", Type.INT), Type.FLOAT, false));
            b.append(dst.name()).append("[lj_o + ").append(e).append("] = ").append(v).append("; ");
        }
        return b.append('}').toString();
    }

    /** {@code words} raw 32-bit words from where element {@code index} of {@code a} starts, into the int array {@code dst}. */
    private String wordLoad(Array a, String index, Array dst, String dstIndex, int words) {
        StringBuilder b = new StringBuilder("{ int lj_o = " + dstIndex + "; ");
        appendWordLoads(b, a, index, words, dst.name() + "[lj_o + ");
        return b.append('}').toString();
    }

    /**
     * Statements loading {@code words} raw 32-bit words from where element {@code index} of {@code a}
     * starts, in 16-byte vectors (8 or 4 bytes for a last part), into {@code target + i + "]"} as ints.
     */
    private void appendWordLoads(StringBuilder b, Array a, String index, int words, String target) {
        String base = (cl ? "(__global const uint*)(" : "(const unsigned int*)(") + a.name() + " + " + index + ")";
        for (int w = 0; w < words; w += 4) {
            int n = Math.min(4, words - w);
            String vt = n == 4 ? "uint4" : n == 2 ? "uint2" : cl ? "uint" : "unsigned int";
            b.append(vt).append(" lj_v").append(w).append(" = *(").append(cl ? "__global const " : "const ").append(vt).append("*)(")
                    .append(base).append(" + ").append(w).append("); ");
            for (int i = 0; i < n; i++) {
                String part = n == 1 ? "" : cl ? ".s" + i : "." + "xyzw".charAt(i);
                b.append(target).append(w + i).append("] = (int)lj_v").append(w).append(part).append("; ");
            }
        }
    }

    /** The store that {@link #vectorLoad} mirrors: 16-bit and 32-bit floats as whole words, other dtypes element by element. */
    private String vectorStore(Array a, String index, Array src, String srcIndex, int count) {
        StringBuilder b = new StringBuilder("{ int lj_o = " + srcIndex + "; ");
        boolean words = a.dtype() == DType.F32 || a.dtype() == DType.F16 || a.dtype() == DType.BF16;
        if (!cl && words) {
            int n = count * a.dtype().bytes() / 4;
            b.append("unsigned int lj_w[").append(n).append("]; ");
            for (int w = 0; w < n; w++) {
                String v = switch (a.dtype()) {
                    case F32 -> "__float_as_uint(" + src.name() + "[lj_o + " + w + "])";
                    case F16 -> "((unsigned int)lj_f32_to_f16(" + src.name() + "[lj_o + " + 2 * w + "]) | ((unsigned int)lj_f32_to_f16("
                            + src.name() + "[lj_o + " + (2 * w + 1) + "]) << 16))";
                    default -> "((unsigned int)lj_f32_to_bf16(" + src.name() + "[lj_o + " + 2 * w + "]) | ((unsigned int)lj_f32_to_bf16("
                            + src.name() + "[lj_o + " + (2 * w + 1) + "]) << 16))";
                };
                b.append("lj_w[").append(w).append("] = ").append(v).append("; ");
            }
            String base = "(unsigned int*)(" + a.name() + " + " + index + ")";
            for (int w = 0; w < n; w += 4) {
                int k = Math.min(4, n - w);
                if (k == 4) {
                    b.append("*(uint4*)(").append(base).append(" + ").append(w).append(") = make_uint4(lj_w[").append(w).append("], lj_w[")
                            .append(w + 1).append("], lj_w[").append(w + 2).append("], lj_w[").append(w + 3).append("]); ");
                } else if (k == 2) {
                    b.append("*(uint2*)(").append(base).append(" + ").append(w).append(") = make_uint2(lj_w[").append(w).append("], lj_w[")
                            .append(w + 1).append("]); ");
                } else {
                    b.append("*(").append(base).append(" + ").append(w).append(") = lj_w[").append(w).append("]; ");
                }
            }
            return b.append('}').toString();
        }
        if (cl && (a.dtype() == DType.F32 || a.dtype() == DType.F16)) {
            StringBuilder v = new StringBuilder("(float" + count + ")(");
            for (int e = 0; e < count; e++) {
                v.append(e == 0 ? "" : ", ").append(src.name()).append("[lj_o + ").append(e).append(']');
            }
            v.append(')');
            b.append(a.dtype() == DType.F16 ? "vstore_half" + count + "_rte(" : "vstore" + count + "(").append(v).append(", 0, ")
                    .append(a.name()).append(" + ").append(index).append("); ");
            return b.append('}').toString();
        }
        for (int e = 0; e < count; e++) {
            b.append(store(a, "(" + index + " + " + e + ")", new Var(src.name() + "[lj_o + " + e + "]", Type.FLOAT))).append("; ");
        }
        return b.append('}').toString();
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
            case F8_E4M3 -> p + "[" + index + "] = lj_f32_to_e4m3(" + convertTo(value.type(), Type.FLOAT, v) + ")";
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
            if (a.dtype().bytes() == 1) {
                return "((int)(" + (cl ? "char" : "signed char") + ")" + p + "[" + idx + "])";
            }
            String ushort = cl ? "__global ushort*" : "unsigned short*";
            return "((int)(short)((" + ushort + ")" + p + ")[" + idx + "])";
        }
        String v = switch (a.dtype()) {
            case F32 -> p + "[" + idx + "]";
            case F16 -> cl ? "vload_half(" + idx + ", " + p + ")" : "lj_f16_to_f32(" + p + "[" + idx + "])";
            case BF16 -> "lj_bf16_to_f32(" + p + "[" + idx + "])";
            case F8_E4M3 -> "lj_e4m3_to_f32(" + p + "[" + idx + "])";
            case I8 -> "((int)" + p + "[" + idx + "])";
            case I32, I64 -> p + "[" + idx + "]";
        };
        Type stored = switch (a.dtype()) {
            case F32, F16, BF16, F8_E4M3 -> Type.FLOAT;
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
            case "warpBarrier" -> cl ? "barrier(CLK_LOCAL_MEM_FENCE)" : "__syncwarp()";
            case "globalBarrier" -> cl ? "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)" : "__syncthreads()";
            case "memoryFence" -> cl ? "mem_fence(CLK_GLOBAL_MEM_FENCE)" : "__threadfence()";
            // OpenCL targets refuse Feature.CLUSTER_BARRIER; the name below only shows up in source printed for Target.any
            case "clusterBarrier" -> cl ? "lj_no_cluster_barrier_in_opencl()" : "lj_cluster_barrier()";
            case "atomicAdd" -> atomicAdd(c);
            case "atomicAdd4" -> atomicAdd4(c);
            case "subGroupSize" -> cl ? "lj_sub_group_size()" : "lj_warp_width()";
            case "subGroupReduceAdd" -> cl ? "lj_sub_group_sum(" + a0 + ")" : "lj_warp_sum(" + a0 + ")";
            // CUDA: the hardware's ex2 alone (exp2f adds a range test and two multiplies for results below 2^-126, which
            // FlashAttention-style softmaxes, its only users, round to 0 anyway)
            case "exp2" -> cl ? "exp2(" + all + ")" : "lj_exp2(" + all + ")";
            case "exp", "log", "sqrt", "tanh", "pow", "sin", "cos", "erf", "fma", "floor", "round", "fmax", "fmin", "fabs", "ceil" ->
                    c.intrinsic() + f + "(" + all + ")";
            case "laneId" -> "lj_lane()";
            case "warpShuffleXor" -> cl ? "lj_shfl(" + a0 + ", lj_lane() ^ (" + args.get(1) + "), lj_xchg)"
                    : "__shfl_xor_sync(0xffffffffu, " + a0 + ", " + args.get(1) + ")";
            case "warpShuffle" -> cl ? "lj_shfl(" + a0 + ", " + args.get(1) + ", lj_xchg)" : "__shfl_sync(0xffffffffu, " + a0 + ", " + args.get(1) + ")";
            case "packHalf2" -> "lj_pack_f16x2(" + all + ")";
            case "packBf16x2" -> "lj_pack_bf16x2(" + all + ")";
            case "int8x2ToHalf2" -> "lj_i8x2_to_f16x2(" + all + ")";
            case "int8x2ToBf16x2" -> "lj_i8x2_to_bf16x2(" + all + ")";
            case "nibblesToBf16x2" -> "lj_nibbles_to_bf16x2(" + all + ")";
            case "fmaBf16x2" -> "lj_fma_bf16x2(" + all + ")";
            case "e4m3x2ToHalf2" -> "lj_e4m3x2_to_f16x2(" + all + ")";
            case "mulHalf2" -> "lj_mul_f16x2(" + all + ")";
            case "dot4I8" -> cl ? "lj_dot4_i8(" + all + ")" : "__dp4a(" + all + ")";
            case "bytePerm" -> cl ? "lj_byte_perm(" + all + ")" : "((int)__byte_perm((unsigned)(" + a0 + "), (unsigned)(" + args.get(1) + "), (unsigned)(" + args.get(2) + ")))";
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
            case "e4m3ToFloat" -> "lj_e4m3_to_f32((" + (cl ? "uchar" : "unsigned char") + ")" + a0 + ")";
            case "floatToE4m3" -> "((int)(" + (cl ? "char" : "signed char") + ")lj_f32_to_e4m3(" + a0 + "))";
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

    private String atomicAdd4(Call c) {
        Load target = (Load) c.args().get(0);
        String addr = "&" + target.array().name() + "[" + expr(target.index()) + "]";
        String values = c.args().subList(1, 5).stream().map(this::expr).collect(java.util.stream.Collectors.joining(", "));
        return (cl ? "lj_atomic_add4_f32(" : "lj_atomic_add4(") + addr + ", " + values + ")";
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
            // fp8 e4m3fn, step by step as KMath.e4m3ToFloat / floatToE4m3 (the format's one definition)
            float lj_e4m3_to_f32(uchar b) {
              uint m = b & 0x7fu;
              uint mag = m == 0x7fu ? 0x7fc00000u : m >= 0x08u ? (m << 20) + (120u << 23) : as_uint((float)m * 0x1p-9f);
              return as_float(mag | ((uint)(b & 0x80u) << 24));
            }
            uchar lj_f32_to_e4m3(float f) {
              uint u = as_uint(f), a = u & 0x7fffffffu;
              uint c = a > 0x7f800000u ? 0x7fu : a >= 0x43e00000u ? 0x7eu
                  : a >= 0x3c800000u ? ((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3) : (uint)rint(as_float(a) * 512.0f);
              return (uchar)(((u >> 24) & 0x80u) | c);
            }
            ushort lj_f32_to_f16(float f) { ushort r; vstore_half_rte(f, 0, (__private half*)&r); return r; }
            float lj_atomic_add_f32(volatile __global float* p, float d) {
              union { uint u; float f; } o, n;
              do { o.f = *p; n.f = o.f + d; } while (atomic_cmpxchg((volatile __global uint*)p, o.u, n.u) != o.u);
              return o.f;
            }
            void lj_atomic_add4_f32(volatile __global float* p, float a, float b, float c, float d) {
              lj_atomic_add_f32(p, a); lj_atomic_add_f32(p + 1, b); lj_atomic_add_f32(p + 2, c); lj_atomic_add_f32(p + 3, d);
            }
            float lj_atomic_add_f32_local(volatile __local float* p, float d) {
              union { uint u; float f; } o, n;
              do { o.f = *p; n.f = o.f + d; } while (atomic_cmpxchg((volatile __local uint*)p, o.u, n.u) != o.u);
              return o.f;
            }
            """;

    /** The OpenCL side of the warp model: lanes of 32 work-items that exchange values through local memory and barriers. */
    private static final String OPENCL_WARP_PRELUDE = """
            int lj_flat(void) { return (int)(get_local_id(0) + get_local_size(0) * (get_local_id(1) + get_local_size(1) * get_local_id(2))); }
            int lj_lane(void) { return lj_flat() & 31; }
            float lj_shfl(float v, int src, __local int* x) {
              int id = lj_flat();
              x[id] = as_int(v);
              barrier(CLK_LOCAL_MEM_FENCE);
              float r = as_float(x[id - (id & 31) + (src & 31)]);
              barrier(CLK_LOCAL_MEM_FENCE);
              return r;
            }
            float lj_pair_value(int pair, int which, int bf16) {
              uint bits = ((uint)pair >> (16 * which)) & 0xffffu;
              return bf16 ? as_float(bits << 16) : lj_f16_to_f32((ushort)bits);
            }
            // D += A B of one warp from every lane's fragments (MatrixFragments has the layout)
            void lj_mma(float* c, const int* a, const int* b, __local int* x, int bf16) {
              int id = lj_flat(), lane = id & 31;
              __local int* w = x + (id - lane) * 6;
              for (int i = 0; i < 4; i++) w[lane * 6 + i] = a[i];
              w[lane * 6 + 4] = b[0];
              w[lane * 6 + 5] = b[1];
              barrier(CLK_LOCAL_MEM_FENCE);
              for (int e = 0; e < 4; e++) {
                int row = (lane >> 2) + 8 * (e >> 1), col = 2 * (lane & 3) + (e & 1);
                float s = c[e];
                for (int k = 0; k < 16; k++) {
                  int aw = w[((row & 7) * 4 + ((k & 7) >> 1)) * 6 + (row >> 3) + 2 * (k >> 3)];
                  int bw = w[(col * 4 + ((k & 7) >> 1)) * 6 + 4 + (k >> 3)];
                  s += lj_pair_value(aw, k & 1, bf16) * lj_pair_value(bw, k & 1, bf16);
                }
                c[e] = s;
              }
              barrier(CLK_LOCAL_MEM_FENCE);
            }
            void lj_ldmatrix_a(int* a, __local const int* tile, int index, int stride) {
              int lane = lj_lane();
              for (int r = 0; r < 4; r++) a[r] = tile[index + ((lane >> 2) + 8 * (r & 1)) * stride + (lane & 3) + 4 * (r >> 1)];
            }
            void lj_ldmatrix_b(int* b, __local const int* tile, int index, int stride) {
              int lane = lj_lane();
              for (int r = 0; r < 4; r++) b[r] = tile[index + (lane >> 2) * stride + (lane & 3) + 4 * r];
            }
            void lj_ldmatrix_bt(int* b, __local const int* tile, int index, int stride) {
              int lane = lj_lane();
              for (int r = 0; r < 4; r++) {
                int n = 8 * (r >> 1) + (lane >> 2), k = 8 * (r & 1) + 2 * (lane & 3);
                uint lo = ((uint)tile[index + k * stride + n / 2] >> (16 * (n & 1))) & 0xffffu;
                uint hi = ((uint)tile[index + (k + 1) * stride + n / 2] >> (16 * (n & 1))) & 0xffffu;
                b[r] = (int)(lo | (hi << 16));
              }
            }
            // the 128-byte swizzle of an int index: its 16-byte chunk within a 128-byte row XOR the row within 8 (1024-byte atoms)
            int lj_swizzle128(int i) { return (i & ~0x1c) | ((((i >> 2) ^ (i >> 5)) & 7) << 2); }
            // D[64 x n] += A B^T of a warpgroup from swizzled tiles (KernelContext.warpgroupMmaBf16 has the layout; bBlock >= 0:
            // B n-major, warpgroupMmaF16NMajorB): this item's n / 2 of D
            void lj_wgmma(float* c, __local const int* a, int aIndex, int aStride, __local const int* b, int bIndex, int bStride, int bBlock,
                int n, int bf16) {
              int id = lj_flat(), warp = (id >> 5) & 3, lane = id & 31, g = lane >> 2, t = lane & 3;
              for (int j = 0; j < n / 8; j++) {
                for (int e = 0; e < 4; e++) {
                  int row = 16 * warp + g + 8 * (e >> 1), col = 8 * j + 2 * t + (e & 1);
                  float s = c[4 * j + e];
                  for (int k = 0; k < 16; k++) {
                    int aw = a[lj_swizzle128(aIndex + (row >> 3) * aStride + (row & 7) * 32 + (k >> 1))];
                    float bv = bBlock < 0 ? lj_pair_value(b[lj_swizzle128(bIndex + (col >> 3) * bStride + (col & 7) * 32 + (k >> 1))], k & 1, bf16)
                        : lj_pair_value(b[lj_swizzle128(bIndex + (k >> 3) * bStride + (k & 7) * 32 + (col >> 6) * bBlock + ((col & 63) >> 1))], col & 1, bf16);
                    s += lj_pair_value(aw, k & 1, bf16) * bv;
                  }
                  c[4 * j + e] = s;
                }
              }
            }
            void lj_copy_async(__local int* dst, __global const uint* src) { vstore4(vload4(0, src), 0, (__local uint*)dst); }
            int lj_pack_f16x2(float lo, float hi) { return (int)((uint)lj_f32_to_f16(lo) | ((uint)lj_f32_to_f16(hi) << 16)); }
            int lj_pack_bf16x2(float lo, float hi) { return (int)((uint)lj_f32_to_bf16(lo) | ((uint)lj_f32_to_bf16(hi) << 16)); }
            int lj_i8x2_to_f16x2(int w, int pair) { int s = 16 * pair; return lj_pack_f16x2((float)(char)(w >> s), (float)(char)(w >> (s + 8))); }
            int lj_i8x2_to_bf16x2(int w, int pair) { int s = 16 * pair; return lj_pack_bf16x2((float)(char)(w >> s), (float)(char)(w >> (s + 8))); }
            int lj_nibbles_to_bf16x2(int w, int shift, int centre) {
              return lj_pack_bf16x2((float)((int)(((uint)w >> shift) & 15u) - centre), (float)((int)(((uint)w >> (shift + 8)) & 15u) - centre));
            }
            int lj_fma_bf16x2(int a, int b, int c) {
              return lj_pack_bf16x2(lj_bf16_to_f32((ushort)a) * lj_bf16_to_f32((ushort)b) + lj_bf16_to_f32((ushort)c),
                  lj_bf16_to_f32((ushort)((uint)a >> 16)) * lj_bf16_to_f32((ushort)((uint)b >> 16)) + lj_bf16_to_f32((ushort)((uint)c >> 16)));
            }
            int lj_e4m3x2_to_f16x2(int w, int pair) {
              int s = 16 * pair; return lj_pack_f16x2(lj_e4m3_to_f32((uchar)(w >> s)), lj_e4m3_to_f32((uchar)(w >> (s + 8))));
            }
            int lj_byte_perm(int lo, int hi, int sel) {
              ulong v = (ulong)(uint)lo | ((ulong)(uint)hi << 32); uint r = 0;
              for (int i = 0; i < 4; i++) r |= (uint)((v >> (8 * ((sel >> (4 * i)) & 7))) & 0xff) << (8 * i);
              return (int)r;
            }
            int lj_mul_f16x2(int a, int b) {
              return lj_pack_f16x2(lj_f16_to_f32((ushort)a) * lj_f16_to_f32((ushort)b),
                  lj_f16_to_f32((ushort)((uint)a >> 16)) * lj_f16_to_f32((ushort)((uint)b >> 16)));
            }
            int lj_dot4_i8(int a, int b, int acc) {
              char4 x = as_char4(a), y = as_char4(b);
              return acc + x.s0 * y.s0 + x.s1 * y.s1 + x.s2 * y.s2 + x.s3 * y.s3;
            }
            """;

    /**
     * The CUDA side of the warp model: PTX's tensor-core, matrix-load and asynchronous-copy
     * instructions (Ampere and newer; before that copies are plain, and MMA is refused by the Target).
     */
    private static final String CUDA_WARP_PRELUDE = """
            __device__ __forceinline__ int lj_lane() { return (int)((threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31u); }
            __device__ __forceinline__ unsigned lj_smem(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }
            __device__ __forceinline__ void lj_mma_f16(float* c, const int* a, const int* b) {
            #if __CUDA_ARCH__ >= 800
              asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                  : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
            #endif
            }
            __device__ __forceinline__ void lj_mma_bf16(float* c, const int* a, const int* b) {
            #if __CUDA_ARCH__ >= 800
              asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                  : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
            #endif
            }
            // lane l gives the address of row (l % 16) at column block l / 16: matrices 0-3 are A's four 8x8 quarters
            __device__ __forceinline__ void lj_ldmatrix_a(int* a, const int* tile, int index, int stride) {
            #if __CUDA_ARCH__ >= 750
              int lane = lj_lane();
              asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                  : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(lj_smem(tile + index + (lane & 15) * stride + (lane >> 4) * 4)));
            #endif
            }
            // lane l gives row (l % 8) at column block l / 8: matrices 0-3 are k 0-7, 8-15, 16-23, 24-31 of 8 n rows
            __device__ __forceinline__ void lj_ldmatrix_b(int* b, const int* tile, int index, int stride) {
            #if __CUDA_ARCH__ >= 750
              int lane = lj_lane();
              asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                  : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(lj_smem(tile + index + (lane & 7) * stride + (lane >> 3) * 4)));
            #endif
            }
            // as A's addresses, transposed: matrices 0-3 are (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15)
            __device__ __forceinline__ void lj_ldmatrix_bt(int* b, const int* tile, int index, int stride) {
            #if __CUDA_ARCH__ >= 750
              int lane = lj_lane();
              asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                  : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(lj_smem(tile + index + (lane & 15) * stride + (lane >> 4) * 4)));
            #endif
            }
            // a wgmma matrix descriptor of a k-major tile in the 128-byte swizzle (layout type 1): start address, strideInts * 4
            // bytes between 8-row atoms (fields in 16-byte units; the leading offset is unused by this layout)
            __device__ __forceinline__ unsigned long long lj_wgmma_desc(const int* tile, int strideInts) {
              return (unsigned long long)((lj_smem(tile) & 0x3FFFFu) >> 4) | (1ull << 16)
                  | ((unsigned long long)((((unsigned)strideInts * 4u) & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
            }
            // the same for a B stored n-major (transposed): 8-row groups of k strideInts apart (stride field), 64-value column
            // blocks of n blockInts apart (leading field)
            __device__ __forceinline__ unsigned long long lj_wgmma_desc_nmajor(const int* tile, int strideInts, int blockInts) {
              return (unsigned long long)((lj_smem(tile) & 0x3FFFFu) >> 4) | ((unsigned long long)((((unsigned)blockInts * 4u) & 0x3FFFFu) >> 4) << 16)
                  | ((unsigned long long)((((unsigned)strideInts * 4u) & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
            }
            // keeps the compiler from moving accumulator reads and writes across the asynchronous MMAs' fences and waits
            __device__ __forceinline__ void lj_fence_operands(float* a, int n) {
            #pragma unroll
              for (int i = 0; i < n; i++) asm volatile("" : "+f"(a[i]) :: "memory");
            }
            __device__ __forceinline__ void lj_copy_async(int* dst, const void* src) {
            #if __CUDA_ARCH__ >= 800
              asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(lj_smem(dst)), "l"(src) : "memory");
            #else
              *(uint4*)dst = *(const uint4*)src;
            #endif
            }
            #if __CUDA_ARCH__ >= 800
            #define LJ_CP_ASYNC_COMMIT() asm volatile("cp.async.commit_group;" ::: "memory")
            #define LJ_CP_ASYNC_WAIT(n) asm volatile("cp.async.wait_group %0;" :: "n"(n) : "memory")
            #else
            #define LJ_CP_ASYNC_COMMIT() do { } while (0)
            #define LJ_CP_ASYNC_WAIT(n) do { } while (0)
            #endif
            __device__ __forceinline__ int lj_pack_f16x2(float lo, float hi) {
            #if __CUDA_ARCH__ >= 800
              unsigned r; asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return (int)r;
            #else
              return (int)((unsigned)lj_f32_to_f16(lo) | ((unsigned)lj_f32_to_f16(hi) << 16));
            #endif
            }
            __device__ __forceinline__ int lj_pack_bf16x2(float lo, float hi) {
            #if __CUDA_ARCH__ >= 800
              unsigned r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return (int)r;
            #else
              return (int)((unsigned)lj_f32_to_bf16(lo) | ((unsigned)lj_f32_to_bf16(hi) << 16));
            #endif
            }
            // (w ^ 0x80) per byte next to 0x64 is the half 1024 + (b + 128); subtracting 1152 leaves b, exactly
            __device__ __forceinline__ int lj_i8x2_to_f16x2(int w, int pair) {
              unsigned x = __byte_perm((unsigned)w ^ 0x80808080u, 0x64646464u, pair ? 0x4342u : 0x4140u);
              unsigned r; asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(x), "r"(0x64806480u)); return (int)r;
            }
            // (w ^ 0x80) per byte under the float 2^23's exponent is 2^23 + (b + 128); subtracting 2^23 + 128 leaves b,
            // whose float's high half is b as a bf16, exactly (|b| <= 128 has at most 8 significant bits)
            __device__ __forceinline__ int lj_i8x2_to_bf16x2(int w, int pair) {
              unsigned u = (unsigned)w ^ 0x80808080u;
              float lo = __uint_as_float(__byte_perm(u, 0x4b000000u, pair ? 0x7652u : 0x7650u)) - 8388736.0f;
              float hi = __uint_as_float(__byte_perm(u, 0x4b000000u, pair ? 0x7653u : 0x7651u)) - 8388736.0f;
              return (int)__byte_perm(__float_as_uint(lo), __float_as_uint(hi), 0x7632u);
            }
            // a nibble in the low mantissa bits of the bf16 128.0 (0x4300) is 128 + nibble; one multiply-add by 1 takes 128 + centre off
            __device__ __forceinline__ int lj_nibbles_to_bf16x2(int w, int shift, int centre) {
              unsigned x = (__byte_perm((unsigned)w >> shift, 0u, 0x4140u) & 0x000f000fu) | 0x43004300u;
              unsigned c = (0x4300u + (unsigned)centre) * 0x10001u, r;
              asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(0x3f803f80u), "r"(c ^ 0x80008000u));
              return (int)r;
            }
            __device__ __forceinline__ int lj_fma_bf16x2(int a, int b, int c) {
              unsigned r; asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"((unsigned)a), "r"((unsigned)b), "r"((unsigned)c)); return (int)r;
            }
            // an e4m3 code's 7 exponent and mantissa bits at a half's bits 7-13 (sign at 15) are its value / 256
            __device__ __forceinline__ int lj_e4m3x2_to_f16x2(int w, int pair) {
              unsigned y = __byte_perm((unsigned)w, 0u, pair ? 0x3424u : 0x1404u);
              unsigned h = (y & 0x80008000u) | ((y & 0x7f007f00u) >> 1);
              unsigned r; asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(h), "r"(0x5c005c00u)); return (int)r;
            }
            __device__ __forceinline__ int lj_mul_f16x2(int a, int b) {
              unsigned r; asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"((unsigned)a), "r"((unsigned)b)); return (int)r;
            }
            """;

    /**
     * The first statements of every CUDA kernel: compiled with LJ_PDL (CudaDevice's programmatic dependent launch) on
     * Hopper and newer, the kernel waits until the kernel before it on the stream has finished and its writes are
     * visible, then lets the next one begin launching; without it, nothing.
     */
    private static final String PROGRAMMATIC_LAUNCH_WAIT = """
            #if defined(LJ_PDL) && __CUDA_ARCH__ >= 900
              asm volatile("griddepcontrol.wait;" ::: "memory");
              asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
            #endif
            """;

    private static final String CUDA_PRELUDE = """
            // generated by lightllm-java's kernel compiler from Java bytecode
            // sub-groups are warps, or the whole block when it is smaller than a warp (local sizes are powers of two)
            __device__ __forceinline__ int lj_warp_width() { return blockDim.x * blockDim.y * blockDim.z < 32 ? (int)(blockDim.x * blockDim.y * blockDim.z) : 32; }
            // four atomic adds as one vector reduction on Hopper (a quarter of the L2's atomic operations)
            __device__ __forceinline__ void lj_atomic_add4(float* p, float a, float b, float c, float d) {
            #if __CUDA_ARCH__ >= 900
              asm volatile("red.relaxed.gpu.global.add.v4.f32 [%0], {%1, %2, %3, %4};" :: "l"(p), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
            #else
              atomicAdd(p, a); atomicAdd(p + 1, b); atomicAdd(p + 2, c); atomicAdd(p + 3, d);
            #endif
            }
            // every thread of the cluster's blocks; release and acquire at cluster scope order global and shared memory
            __device__ __forceinline__ void lj_cluster_barrier() {
            #if __CUDA_ARCH__ >= 900
              asm volatile("barrier.cluster.arrive.release.aligned; barrier.cluster.wait.acquire.aligned;" ::: "memory");
            #else
              __trap(); // Target.cuda refuses Feature.CLUSTER_BARRIER before compute capability 9.0
            #endif
            }
            // five butterfly steps, unrolled and without branches (a step past a small block's width adds nothing), so that
            // ptxas interleaves the shuffles of consecutive sums (a GEMV team's four rows: one chain of five, not four)
            __device__ __forceinline__ float lj_warp_sum(float v) {
              int w = lj_warp_width();
              unsigned mask = __activemask();
            #pragma unroll
              for (int o = 16; o > 0; o >>= 1) { float t = __shfl_xor_sync(mask, v, o, w); v += o < w ? t : 0.0f; }
              return v;
            }
            __device__ __forceinline__ float lj_bf16_to_f32(unsigned short b) { return __int_as_float(((unsigned int)b) << 16); }
            __device__ __forceinline__ unsigned short lj_f32_to_bf16(float f) {
              unsigned int u = __float_as_uint(f);
              if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
              return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            }
            __device__ __forceinline__ float lj_f16_to_f32(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
            // fp8 e4m3fn, step by step as KMath.e4m3ToFloat / floatToE4m3 (the format's one definition; sm_89's
            // cvt.rn.satfinite.e4m3x2.f32 would do the same in one instruction, but then the JVM could not check it)
            __device__ __forceinline__ float lj_e4m3_to_f32(unsigned char b) {
              unsigned int m = b & 0x7fu;
              unsigned int mag = m == 0x7fu ? 0x7fc00000u : m >= 0x08u ? (m << 20) + (120u << 23) : __float_as_uint((float)m * 0x1p-9f);
              return __uint_as_float(mag | ((unsigned int)(b & 0x80u) << 24));
            }
            __device__ __forceinline__ unsigned char lj_f32_to_e4m3(float f) {
              unsigned int u = __float_as_uint(f), a = u & 0x7fffffffu;
              unsigned int c = a > 0x7f800000u ? 0x7fu : a >= 0x43e00000u ? 0x7eu
                  : a >= 0x3c800000u ? ((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3) : (unsigned int)rintf(__uint_as_float(a) * 512.0f);
              return (unsigned char)(((u >> 24) & 0x80u) | c);
            }
            __device__ __forceinline__ unsigned short lj_f32_to_f16(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
            // KMath.exp2: one MUFU.EX2 (ex2.approx.ftz; exp2f's own ex2.approx is the same approximation plus a range test and
            // two multiplies a call for results below 2^-126)
            __device__ __forceinline__ float lj_exp2(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
            """;
}
