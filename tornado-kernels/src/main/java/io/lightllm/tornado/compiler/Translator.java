package io.lightllm.tornado.compiler;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Ir.Array;
import io.lightllm.tornado.compiler.Ir.ArrayValue;
import io.lightllm.tornado.compiler.Ir.Assign;
import io.lightllm.tornado.compiler.Ir.Binary;
import io.lightllm.tornado.compiler.Ir.Call;
import io.lightllm.tornado.compiler.Ir.Compare;
import io.lightllm.tornado.compiler.Ir.Compare3;
import io.lightllm.tornado.compiler.Ir.Const;
import io.lightllm.tornado.compiler.Ir.ContextValue;
import io.lightllm.tornado.compiler.Ir.Convert;
import io.lightllm.tornado.compiler.Ir.Expr;
import io.lightllm.tornado.compiler.Ir.Space;
import io.lightllm.tornado.compiler.Ir.Stmt;
import io.lightllm.tornado.compiler.Ir.Type;
import io.lightllm.tornado.compiler.Ir.Value;
import io.lightllm.tornado.compiler.Ir.Var;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.Instruction;
import java.lang.classfile.Label;
import java.lang.classfile.MethodModel;
import java.lang.classfile.Opcode;
import java.lang.classfile.TypeKind;
import java.lang.classfile.instruction.ArrayLoadInstruction;
import java.lang.classfile.instruction.ArrayStoreInstruction;
import java.lang.classfile.instruction.BranchInstruction;
import java.lang.classfile.instruction.ConstantInstruction;
import java.lang.classfile.instruction.ConvertInstruction;
import java.lang.classfile.instruction.ExceptionCatch;
import java.lang.classfile.instruction.FieldInstruction;
import java.lang.classfile.instruction.IncrementInstruction;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.classfile.instruction.LabelTarget;
import java.lang.classfile.instruction.LineNumber;
import java.lang.classfile.instruction.LoadInstruction;
import java.lang.classfile.instruction.LookupSwitchInstruction;
import java.lang.classfile.instruction.NewPrimitiveArrayInstruction;
import java.lang.classfile.instruction.NopInstruction;
import java.lang.classfile.instruction.OperatorInstruction;
import java.lang.classfile.instruction.ReturnInstruction;
import java.lang.classfile.instruction.StackInstruction;
import java.lang.classfile.instruction.StoreInstruction;
import java.lang.classfile.instruction.SwitchCase;
import java.lang.classfile.instruction.TableSwitchInstruction;
import java.lang.constant.ClassDesc;
import java.lang.constant.MethodTypeDesc;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Bytecode to IR by symbolic execution of the operand stack. Each instruction pushes an
 * expression tree; statements (stores, barriers, branches) are emitted in bytecode order, and
 * before any statement the stack is flushed into temporaries so Java's evaluation order is kept.
 * Static helper calls are inlined with renamed variables; values left on the stack at a branch
 * (ternaries) travel through canonical per-depth variables.
 */
final class Translator {
    private static final String API = "io/lightllm/tornado/api/";
    private static final String CONTEXT = API + "KernelContext";

    final List<Stmt> body = new ArrayList<>();
    /** Every scalar variable, in order of first use, for the declarations. */
    final Map<String, Type> variables = new LinkedHashMap<>();
    final List<Array> localArrays = new ArrayList<>();
    final List<Array> privateArrays = new ArrayList<>();
    final List<Array> globalArrays = new ArrayList<>();
    /** The entry's parameters in order: an Array (GLOBAL) or a Var. */
    final List<Object> parameters = new ArrayList<>();
    boolean usesDouble;
    /** The parts of the kernel language used that not every device has. */
    final java.util.EnumSet<Feature> features = java.util.EnumSet.noneOf(Feature.class);
    /** Whether the kernel uses lanes, fragments, vector accesses or packed pairs: the emitter then adds their helpers. */
    boolean usesWarpModel;

    private final String kernelName;
    private final ClassLoader loader;
    private int temps;
    private int inlines;
    private final Deque<String> callStack = new ArrayDeque<>();

    Translator(String kernelName, ClassLoader loader) {
        this.kernelName = kernelName;
        this.loader = loader;
    }

    /**
     * Translates the kernel method; {@code argDtypes} gives the dtype bound to each array parameter, {@code constants} the
     * launch arguments its ref binds to constants (by argument index): their parameters stay in the signature, and every
     * load of them is the constant.
     */
    void translateKernel(Method m, DType[] argDtypes, boolean explicit, Map<Integer, Object> constants) {
        MethodModel mm = Bytecode.methodModel(m);
        CodeModel code = Bytecode.code(mm);
        List<ParallelLoops.Loop> loops = ParallelLoops.find(code, kernelName);
        if (explicit && !loops.isEmpty()) {
            throw new KernelCompileException(kernelName + ": a kernel uses either a KernelContext or @Parallel loops, not both");
        }
        Frame f = new Frame("", mm, code, null, null);
        Class<?>[] params = m.getParameterTypes();
        int slot = 0;
        int arg = 0;
        for (Class<?> p : params) {
            if (p == io.lightllm.tornado.api.KernelContext.class) {
                f.slots.put(slot, new ContextValue());
                slot++;
                continue;
            }
            if (NativeArray.class.isAssignableFrom(p)) {
                DType dt = argDtypes != null && argDtypes[arg] != null ? argDtypes[arg] : NativeArray.dtypeOf(p);
                if (dt == null) {
                    throw new KernelCompileException(kernelName + ": parameter " + arg + " is a NativeArray; the launch must give its dtype");
                }
                if (p != NativeArray.class && NativeArray.classOf(dt) != p) {
                    throw new KernelCompileException(kernelName + ": parameter " + arg + " is " + p.getSimpleName() + " but bound to " + dt);
                }
                Array a = new Array("p" + arg, Space.GLOBAL, dt, elementType(dt), -1);
                globalArrays.add(a);
                parameters.add(a);
                f.slots.put(slot, new ArrayValue(a));
                slot++;
            } else if (p.isPrimitive()) {
                Type t = Type.of(p);
                Var v = f.local(slot, t);
                parameters.add(v);
                Object bound = constants.get(arg);
                if (bound != null) {
                    if (storesTo(code, slot)) {
                        throw new KernelCompileException(kernelName + ": parameter " + arg + " is bound to a constant but assigned in the body");
                    }
                    f.constants.put(slot, new Const(bound instanceof Boolean b ? (Object) (b ? 1 : 0) : bound, t));
                }
                slot += t.wide() ? 2 : 1;
            } else {
                throw new KernelCompileException(kernelName + ": parameter " + arg + " has type " + p.getSimpleName()
                        + "; kernels take NativeArrays, primitives and a KernelContext");
            }
            arg++;
        }
        if (!explicit && loops.isEmpty()) {
            // a serial kernel: one work-item does the work, the others leave at once
            body.add(new Ir.IfGoto(new Compare("!=", call("globalId", Type.INT, new Const(0, Type.INT)), new Const(0, Type.INT)), "lj_exit"));
        }
        for (ParallelLoops.Loop l : loops) {
            f.parallelInits.put(l.init(), l);
            f.parallelIncrements.put(l.increment(), l);
            f.deepestLoop = Math.max(f.deepestLoop, l.dimension());
        }
        callStack.push(key(mm));
        translate(f);
        callStack.pop();
        body.add(new Ir.Label("lj_exit"));
    }

    private static Type elementType(DType d) {
        return switch (d) {
            case F32, F16, BF16, F8_E4M3 -> Type.FLOAT;
            case I8, I32 -> Type.INT;
            case I64 -> Type.LONG;
        };
    }

    private static String key(MethodModel mm) {
        return mm.parent().map(c -> c.thisClass().asInternalName()).orElse("?") + "." + mm.methodName().stringValue() + mm.methodType().stringValue();
    }

    // ---- frames ------------------------------------------------------------------------

    /** One method being translated: the kernel itself or an inlined helper. */
    private final class Frame {
        final String prefix;
        final MethodModel method;
        final CodeModel code;
        final Var returnVar;
        final String returnLabel;
        final Map<Integer, Value> slots = new HashMap<>();
        /** Number parameters of an inlined helper bound to a caller's constant (never stored to): their loads are that constant. */
        final Map<Integer, Const> constants = new HashMap<>();
        final Map<Label, String> labels = new IdentityHashMap<>();
        final Map<String, List<Object>> entryStacks = new HashMap<>();
        final Map<Integer, ParallelLoops.Loop> parallelInits = new HashMap<>();
        final Map<Integer, ParallelLoops.Loop> parallelIncrements = new HashMap<>();
        /** The nesting depth of the innermost @Parallel loop (0: one level). */
        int deepestLoop;

        /**
         * The device axis of a @Parallel loop: the innermost loop is axis 0, where a GPU's
         * consecutive threads (a warp) run, so that row-major accesses indexed by it coalesce;
         * the backends reverse a parallel kernel's grid to match ({@link io.lightllm.tornado.runtime.Grid#reversed}).
         */
        int axis(ParallelLoops.Loop loop) {
            return deepestLoop - loop.dimension();
        }
        int line = -1;

        Frame(String prefix, MethodModel method, CodeModel code, Var returnVar, String returnLabel) {
            this.prefix = prefix;
            this.method = method;
            this.code = code;
            this.returnVar = returnVar;
            this.returnLabel = returnLabel;
        }

        Var local(int slot, Type t) {
            return variable(prefix + "v" + slot + "_" + t.name().charAt(0), t);
        }

        String label(Label l) {
            return labels.computeIfAbsent(l, k -> prefix + "L" + labels.size());
        }

        Var stackVar(int depth, Type t) {
            return variable(prefix + "s" + depth + "_" + t.name().charAt(0), t);
        }

        KernelCompileException error(String what) {
            String where = method.parent().map(c -> c.thisClass().asInternalName().replace('/', '.')).orElse("?")
                    + "." + method.methodName().stringValue();
            String src = method.parent().flatMap(c -> c.findAttribute(java.lang.classfile.Attributes.sourceFile()))
                    .map(s -> s.sourceFile().stringValue()).orElse("?");
            return new KernelCompileException("kernel " + kernelName + ": " + what + " (in " + where + ", " + src
                    + (line >= 0 ? ":" + line : "") + ")");
        }
    }

    private Var variable(String name, Type t) {
        Type old = variables.putIfAbsent(name, t);
        if (old != null && old != t) {
            throw new IllegalStateException("variable " + name + " used as " + old + " and " + t);
        }
        if (t == Type.DOUBLE) {
            useDouble();
        }
        return new Var(name, t);
    }

    private void useDouble() {
        usesDouble = true;
        features.add(Feature.DOUBLE);
    }

    private final Set<String> tempNames = new HashSet<>();

    /** A fresh single-assignment variable. */
    private Var temp(Type t) {
        Var v = variable("t" + temps++, t);
        tempNames.add(v.name());
        return v;
    }

    // ---- the walk ----------------------------------------------------------------------

    private void translate(Frame f) {
        List<CodeElement> elements = f.code.elementList();
        Set<Label> targets = new HashSet<>();
        for (CodeElement e : elements) {
            switch (e) {
                case BranchInstruction b -> targets.add(b.target());
                case TableSwitchInstruction t -> {
                    targets.add(t.defaultTarget());
                    t.cases().forEach(c -> targets.add(c.target()));
                }
                case LookupSwitchInstruction l -> {
                    targets.add(l.defaultTarget());
                    l.cases().forEach(c -> targets.add(c.target()));
                }
                default -> {
                }
            }
        }
        Deque<Value> stack = new ArrayDeque<>();
        boolean fallsThrough = true;
        for (int i = 0; i < elements.size(); i++) {
            CodeElement e = elements.get(i);
            if (e instanceof LabelTarget lt) {
                if (!targets.contains(lt.label())) {
                    continue;
                }
                String name = f.label(lt.label());
                if (fallsThrough) {
                    spillToCanonical(f, stack, name);
                }
                body.add(new Ir.Label(name));
                stack = restore(f, name);
                fallsThrough = true;
                continue;
            }
            if (e instanceof LineNumber ln) {
                f.line = ln.line();
                continue;
            }
            if (e instanceof ExceptionCatch) {
                throw f.error("exception handlers are not supported in kernels");
            }
            if (!(e instanceof Instruction ins)) {
                continue;
            }
            fallsThrough = instruction(f, i, ins, stack);
        }
    }

    /**
     * Stores the stack into the per-depth variables that the code at {@code label} reads.
     * Arrays and the context are compile-time values: they travel in the recorded shape itself.
     */
    private void spillToCanonical(Frame f, Deque<Value> stack, String label) {
        List<Value> values = new ArrayList<>(stack);
        java.util.Collections.reverse(values); // bottom first
        List<Object> shape = new ArrayList<>();
        List<Var> tmps = new ArrayList<>();
        // read all before writing any: a value may itself read a canonical variable
        for (Value v : values) {
            if (v instanceof Expr x) {
                shape.add(x.type());
                Var t = temp(x.type());
                body.add(new Assign(t, x));
                tmps.add(t);
            } else {
                shape.add(v);
                tmps.add(null);
            }
        }
        for (int d = 0; d < values.size(); d++) {
            if (tmps.get(d) != null) {
                body.add(new Assign(f.stackVar(d, (Type) shape.get(d)), tmps.get(d)));
            }
        }
        List<Object> old = f.entryStacks.putIfAbsent(label, shape);
        if (old != null && !old.equals(shape)) {
            throw f.error("inconsistent operand stack at a branch target (arrays chosen by a condition?)");
        }
        stack.clear();
        stack.addAll(restore(f, label));
    }

    private Deque<Value> restore(Frame f, String label) {
        Deque<Value> s = new ArrayDeque<>();
        List<Object> shape = f.entryStacks.getOrDefault(label, List.of());
        for (int d = 0; d < shape.size(); d++) {
            s.push(shape.get(d) instanceof Type t ? f.stackVar(d, t) : (Value) shape.get(d));
        }
        return s;
    }

    /** Replaces every stack entry that is not a constant by a temporary, keeping evaluation order. */
    private void flush(Deque<Value> stack) {
        if (stack.isEmpty()) {
            return;
        }
        List<Value> values = new ArrayList<>(stack);
        java.util.Collections.reverse(values);
        stack.clear();
        for (Value v : values) {
            if (v instanceof Expr x && !(x instanceof Const) && !(x instanceof Var vv && tempNames.contains(vv.name()))) {
                Var t = temp(x.type());
                body.add(new Assign(t, x));
                stack.push(t);
            } else {
                stack.push(v);
            }
        }
    }

    private void emit(Deque<Value> stack, Stmt s) {
        flush(stack);
        body.add(s);
        if (s instanceof Ir.ArrayIntrinsic) {
            usesWarpModel = true;
        }
    }

    private static Expr expr(Frame f, Value v) {
        if (v instanceof Expr x) {
            return x;
        }
        throw f.error("an array or the KernelContext is used as a number");
    }

    private Expr pop(Frame f, Deque<Value> stack) {
        return expr(f, stack.pop());
    }

    private static Call call(String intrinsic, Type t, Expr... args) {
        return new Call(intrinsic, List.of(args), t);
    }

    /** Translates one instruction; returns whether control can fall through to the next. */
    private boolean instruction(Frame f, int index, Instruction ins, Deque<Value> stack) {
        switch (ins) {
            case NopInstruction n -> {
            }
            case ConstantInstruction c -> {
                Object v = c.constantValue();
                Type t = switch (c.typeKind()) {
                    case INT, BOOLEAN, BYTE, SHORT, CHAR -> Type.INT;
                    case LONG -> Type.LONG;
                    case FLOAT -> Type.FLOAT;
                    case DOUBLE -> Type.DOUBLE;
                    default -> throw f.error(c.typeKind() == TypeKind.REFERENCE && v == null ? "null is not supported in kernels"
                            : "constant " + v + " (" + c.typeKind() + ") is not supported in kernels (strings and classes are objects)");
                };
                if (t == Type.DOUBLE) {
                    useDouble();
                }
                stack.push(new Const(v, t));
            }
            case LoadInstruction l -> {
                if (l.typeKind() == TypeKind.REFERENCE) {
                    Value v = f.slots.get(l.slot());
                    if (v == null) {
                        throw f.error("local variable slot " + l.slot() + " holds an object; kernels use arrays only");
                    }
                    stack.push(v);
                } else {
                    Const c = f.constants.get(l.slot());
                    stack.push(c != null ? c : f.local(l.slot(), Type.of(l.typeKind())));
                }
            }
            case StoreInstruction s -> {
                Value v = stack.pop();
                if (s.typeKind() == TypeKind.REFERENCE) {
                    Value old = f.slots.get(s.slot());
                    if (old != null && !old.equals(v)) {
                        throw f.error("an array variable is assigned two different arrays; kernels need each array variable bound once");
                    }
                    f.slots.put(s.slot(), v);
                    return true;
                }
                Expr x = expr(f, v);
                ParallelLoops.Loop loop = f.parallelInits.get(index);
                if (loop != null) {
                    x = new Binary("+", x, new Binary("*", call("globalId", Type.INT, new Const(f.axis(loop), Type.INT)),
                            new Const(loop.step(), Type.INT), Type.INT), Type.INT);
                }
                emit(stack, new Assign(f.local(s.slot(), Type.of(s.typeKind())), x));
            }
            case IncrementInstruction inc -> {
                Var v = f.local(inc.slot(), Type.INT);
                ParallelLoops.Loop loop = f.parallelIncrements.get(index);
                Expr step = loop == null ? new Const(inc.constant(), Type.INT)
                        : new Binary("*", call("globalSize", Type.INT, new Const(f.axis(loop), Type.INT)),
                                new Const(loop.step(), Type.INT), Type.INT);
                emit(stack, new Assign(v, new Binary("+", v, step, Type.INT)));
            }
            case OperatorInstruction op -> operator(f, op, stack);
            case ConvertInstruction cv -> {
                Expr x = pop(f, stack);
                Type to = Type.of(cv.toType());
                String narrow = switch (cv.toType()) {
                    case BYTE -> "byte";
                    case SHORT -> "short";
                    case CHAR -> "char";
                    default -> null;
                };
                if (to == Type.DOUBLE) {
                    useDouble();
                }
                stack.push(new Convert(x, to, narrow));
            }
            case StackInstruction st -> stackOp(f, st.opcode(), stack);
            case BranchInstruction b -> {
                return branch(f, b, stack);
            }
            case TableSwitchInstruction ts -> {
                switchOn(f, pop(f, stack), ts.cases(), ts.defaultTarget(), stack);
                return false;
            }
            case LookupSwitchInstruction ls -> {
                switchOn(f, pop(f, stack), ls.cases(), ls.defaultTarget(), stack);
                return false;
            }
            case ReturnInstruction r -> {
                if (r.typeKind() != TypeKind.VOID) {
                    Expr x = pop(f, stack);
                    if (f.returnVar == null) {
                        throw f.error("a kernel returns void");
                    }
                    emit(stack, new Assign(f.returnVar, x));
                }
                if (f.returnLabel == null) {
                    emit(stack, new Ir.Goto("lj_exit"));
                } else {
                    emit(stack, new Ir.Goto(f.returnLabel));
                }
                return false;
            }
            case InvokeInstruction inv -> invoke(f, inv, stack);
            case FieldInstruction fi -> field(f, fi, stack);
            case NewPrimitiveArrayInstruction na -> {
                Expr size = pop(f, stack);
                if (!(size instanceof Const c)) {
                    throw f.error("new " + na.typeKind().name().toLowerCase() + "[n] needs a constant size in kernels");
                }
                Type et = Type.of(na.typeKind());
                Array a = new Array("pa" + privateArrays.size(), Space.PRIVATE, null, et, ((Number) c.value()).intValue());
                privateArrays.add(a);
                emit(stack, new Ir.ZeroArray(a));
                stack.push(new ArrayValue(a));
            }
            case ArrayLoadInstruction al -> {
                Expr idx = pop(f, stack);
                Array a = array(f, stack.pop());
                stack.push(new Ir.Load(a, idx, a.elementType(), false));
            }
            case ArrayStoreInstruction as -> {
                Expr v = pop(f, stack);
                Expr idx = pop(f, stack);
                Array a = array(f, stack.pop());
                emit(stack, new Ir.Store(a, idx, v));
            }
            default -> throw f.error(describe(ins) + " is not supported in kernels");
        }
        return true;
    }

    private static String describe(Instruction ins) {
        return switch (ins.opcode()) {
            case NEW -> "object allocation (new)";
            case ATHROW -> "throwing an exception";
            case MONITORENTER, MONITOREXIT -> "synchronized";
            case ANEWARRAY, MULTIANEWARRAY -> "arrays of objects or multi-dimensional arrays";
            case INVOKEDYNAMIC -> "lambdas and string concatenation";
            case CHECKCAST, INSTANCEOF -> "casts and instanceof on objects";
            case ARRAYLENGTH -> "array length (pass lengths as int parameters)";
            default -> "the instruction " + ins.opcode().name().toLowerCase();
        };
    }

    private Array array(Frame f, Value v) {
        if (v instanceof ArrayValue av) {
            return av.array();
        }
        throw f.error("indexing something that is not an array");
    }

    private void operator(Frame f, OperatorInstruction op, Deque<Value> stack) {
        Opcode o = op.opcode();
        Type t = Type.of(op.typeKind());
        switch (o) {
            case INEG, LNEG, FNEG, DNEG -> stack.push(new Ir.Unary("-", pop(f, stack), t));
            case ARRAYLENGTH -> throw f.error("array length is not available in kernels (pass lengths as int parameters)");
            case LCMP, FCMPL, FCMPG, DCMPL, DCMPG -> {
                Expr b = pop(f, stack);
                Expr a = pop(f, stack);
                stack.push(new Compare3(a, b, o == Opcode.FCMPG || o == Opcode.DCMPG ? 1 : -1));
            }
            default -> {
                Expr b = pop(f, stack);
                Expr a = pop(f, stack);
                String sym = switch (o) {
                    case IADD, LADD, FADD, DADD -> "+";
                    case ISUB, LSUB, FSUB, DSUB -> "-";
                    case IMUL, LMUL, FMUL, DMUL -> "*";
                    case IDIV, LDIV, FDIV, DDIV -> "/";
                    case IREM, LREM -> "%";
                    case FREM, DREM -> "fmod";
                    case IAND, LAND -> "&";
                    case IOR, LOR -> "|";
                    case IXOR, LXOR -> "^";
                    case ISHL, LSHL -> "<<";
                    case ISHR, LSHR -> ">>";
                    case IUSHR, LUSHR -> ">>>";
                    default -> throw f.error("operator " + o.name().toLowerCase() + " is not supported");
                };
                // javac folds its own constant expressions; constants here come from constant arguments of inlined helpers
                Integer folded = t == Type.INT && a instanceof Const ca && b instanceof Const cb
                        ? foldInt(sym, ((Number) ca.value()).intValue(), ((Number) cb.value()).intValue()) : null;
                if (sym.equals("fmod")) {
                    stack.push(call(t == Type.FLOAT ? "fmodf" : "fmod", t, a, b));
                } else if (folded != null) {
                    stack.push(new Const(folded, Type.INT));
                } else {
                    stack.push(new Binary(sym, a, b, t));
                }
            }
        }
    }

    /** {@code x sym y} in Java's int arithmetic, or null where it is not folded (division by zero). */
    private static Integer foldInt(String sym, int x, int y) {
        return switch (sym) {
            case "+" -> x + y;
            case "-" -> x - y;
            case "*" -> x * y;
            case "/" -> y == 0 ? null : x / y;
            case "%" -> y == 0 ? null : x % y;
            case "&" -> x & y;
            case "|" -> x | y;
            case "^" -> x ^ y;
            case "<<" -> x << y;
            case ">>" -> x >> y;
            case ">>>" -> x >>> y;
            default -> null;
        };
    }

    private void stackOp(Frame f, Opcode o, Deque<Value> stack) {
        switch (o) {
            case POP -> stack.pop();
            case POP2 -> {
                Value v = stack.pop();
                if (!wide(v)) {
                    stack.pop();
                }
            }
            case DUP -> {
                flush(stack);
                stack.push(stack.peek());
            }
            case DUP_X1 -> {
                flush(stack);
                Value a = stack.pop(), b = stack.pop();
                stack.push(a);
                stack.push(b);
                stack.push(a);
            }
            case DUP_X2 -> {
                flush(stack);
                Value a = stack.pop(), b = stack.pop();
                if (wide(b)) {
                    stack.push(a);
                    stack.push(b);
                    stack.push(a);
                } else {
                    Value c = stack.pop();
                    stack.push(a);
                    stack.push(c);
                    stack.push(b);
                    stack.push(a);
                }
            }
            case DUP2 -> {
                flush(stack);
                Value a = stack.pop();
                if (wide(a)) {
                    stack.push(a);
                    stack.push(a);
                } else {
                    Value b = stack.pop();
                    stack.push(b);
                    stack.push(a);
                    stack.push(b);
                    stack.push(a);
                }
            }
            case DUP2_X1 -> {
                flush(stack);
                Value a = stack.pop();
                if (wide(a)) {
                    Value b = stack.pop();
                    stack.push(a);
                    stack.push(b);
                    stack.push(a);
                } else {
                    Value b = stack.pop(), c = stack.pop();
                    stack.push(b);
                    stack.push(a);
                    stack.push(c);
                    stack.push(b);
                    stack.push(a);
                }
            }
            case DUP2_X2 -> {
                flush(stack);
                Value a = stack.pop();
                if (wide(a)) {
                    Value b = stack.pop();
                    if (wide(b)) {
                        stack.push(a);
                        stack.push(b);
                        stack.push(a);
                    } else {
                        Value c = stack.pop();
                        stack.push(a);
                        stack.push(c);
                        stack.push(b);
                        stack.push(a);
                    }
                } else {
                    throw f.error("dup2_x2 on narrow values is not supported");
                }
            }
            case SWAP -> {
                flush(stack);
                Value a = stack.pop(), b = stack.pop();
                stack.push(a);
                stack.push(b);
            }
            default -> throw f.error("stack operation " + o.name().toLowerCase());
        }
    }

    private static boolean wide(Value v) {
        return v instanceof Expr x && x.type().wide();
    }

    private boolean branch(Frame f, BranchInstruction b, Deque<Value> stack) {
        Opcode o = b.opcode();
        if (o == Opcode.GOTO || o == Opcode.GOTO_W) {
            String target = f.label(b.target());
            spillToCanonical(f, stack, target);
            body.add(new Ir.Goto(target));
            stack.clear();
            return false;
        }
        Expr cond = switch (o) {
            case IFEQ, IFNE, IFLT, IFGE, IFGT, IFLE -> {
                Expr a = pop(f, stack);
                String op = switch (o) {
                    case IFEQ -> "==";
                    case IFNE -> "!=";
                    case IFLT -> "<";
                    case IFGE -> ">=";
                    case IFGT -> ">";
                    default -> "<=";
                };
                yield a instanceof Compare3 c3 ? compare3(c3, op) : new Compare(op, a, new Const(0, Type.INT));
            }
            case IF_ICMPEQ, IF_ICMPNE, IF_ICMPLT, IF_ICMPGE, IF_ICMPGT, IF_ICMPLE -> {
                Expr r = pop(f, stack);
                Expr l = pop(f, stack);
                String op = switch (o) {
                    case IF_ICMPEQ -> "==";
                    case IF_ICMPNE -> "!=";
                    case IF_ICMPLT -> "<";
                    case IF_ICMPGE -> ">=";
                    case IF_ICMPGT -> ">";
                    default -> "<=";
                };
                yield new Compare(op, l, r);
            }
            default -> throw f.error("comparing objects (" + o.name().toLowerCase() + ") is not supported in kernels");
        };
        String target = f.label(b.target());
        // the condition is evaluated before the stack is spilled, as the JVM does
        Var c = temp(Type.INT);
        flush(stack);
        body.add(new Assign(c, cond));
        spillToCanonical(f, stack, target);
        body.add(new Ir.IfGoto(c, target));
        return true;
    }

    /** {@code cmp(a, b) op 0} as a direct comparison with Java's NaN rules. */
    private static Expr compare3(Compare3 c, String op) {
        if (c.left().type() == Type.LONG || c.left().type() == Type.INT) {
            return new Compare(op, c.left(), c.right());
        }
        // with NaN, cmp gives nanResult (1 for fcmpg, -1 for fcmpl): the ops that are then
        // true must be written as the negation of their complement, false for NaN
        boolean trueForNan = switch (op) {
            case "<", "<=" -> c.nanResult() < 0;
            case ">", ">=" -> c.nanResult() > 0;
            case "!=" -> true;
            default -> false;
        };
        if (!trueForNan) {
            return new Compare(op, c.left(), c.right());
        }
        String complement = switch (op) {
            case "<" -> ">=";
            case "<=" -> ">";
            case ">" -> "<=";
            case ">=" -> "<";
            case "!=" -> "==";
            default -> "!=";
        };
        return new Ir.Unary("!", new Compare(complement, c.left(), c.right()), Type.INT);
    }

    private void switchOn(Frame f, Expr key, List<SwitchCase> cases, Label dflt, Deque<Value> stack) {
        Var k = temp(Type.INT);
        flush(stack);
        body.add(new Assign(k, key));
        if (!stack.isEmpty()) {
            throw f.error("switch with values left on the stack");
        }
        int[] keys = new int[cases.size()];
        String[] labels = new String[cases.size()];
        for (int i = 0; i < cases.size(); i++) {
            keys[i] = cases.get(i).caseValue();
            labels[i] = f.label(cases.get(i).target());
            f.entryStacks.putIfAbsent(labels[i], List.of());
        }
        f.entryStacks.putIfAbsent(f.label(dflt), List.of());
        body.add(new Ir.Switch(k, keys, labels, f.label(dflt)));
    }

    // ---- fields and calls --------------------------------------------------------------

    private void field(Frame f, FieldInstruction fi, Deque<Value> stack) {
        String owner = fi.owner().asInternalName();
        String name = fi.name().stringValue();
        if (fi.opcode() == Opcode.GETFIELD && owner.equals(CONTEXT)) {
            Value ctx = stack.pop();
            if (!(ctx instanceof ContextValue)) {
                throw f.error("reading a field of an object");
            }
            String axis = name.substring(name.length() - 1).toLowerCase();
            int dim = axis.equals("x") ? 0 : axis.equals("y") ? 1 : 2;
            String intrinsic = switch (name.substring(0, name.length() - 1)) {
                case "globalId" -> "globalId";
                case "localId" -> "localId";
                case "groupId" -> "groupId";
                case "localGroupSize" -> "localSize";
                case "globalGroupSize" -> "globalSize";
                default -> throw f.error("KernelContext." + name + " is not supported");
            };
            stack.push(call(intrinsic, Type.INT, new Const(dim, Type.INT)));
            return;
        }
        if (fi.opcode() == Opcode.GETSTATIC && Intrinsics.isUserCode(owner)) {
            stack.push(staticConstant(f, owner, name));
            return;
        }
        throw f.error("field " + owner.replace('/', '.') + "." + name + " is not available in kernels (only static final primitive constants)");
    }

    private Const staticConstant(Frame f, String owner, String name) {
        try {
            Class<?> c = Class.forName(owner.replace('/', '.'), true, loader);
            java.lang.reflect.Field fd = c.getDeclaredField(name);
            if (!Modifier.isStatic(fd.getModifiers()) || !Modifier.isFinal(fd.getModifiers()) || !fd.getType().isPrimitive()) {
                throw f.error("field " + name + " is not a static final primitive");
            }
            fd.setAccessible(true);
            Object v = fd.get(null);
            Type t = Type.of(fd.getType());
            if (v instanceof Boolean bool) {
                v = bool ? 1 : 0;
            } else if (v instanceof Character ch) {
                v = (int) ch;
            } else if (v instanceof Byte || v instanceof Short) {
                v = ((Number) v).intValue();
            }
            return new Const(v, t);
        } catch (ReflectiveOperationException e) {
            throw f.error("cannot read static field " + name + ": " + e);
        }
    }

    private void invoke(Frame f, InvokeInstruction inv, Deque<Value> stack) {
        String owner = inv.owner().asInternalName();
        String name = inv.name().stringValue();
        MethodTypeDesc type = inv.typeSymbol();
        if (owner.startsWith(API) && inv.opcode() != Opcode.INVOKESTATIC) {
            if (owner.equals(CONTEXT)) {
                contextCall(f, name, type, stack);
            } else {
                arrayCall(f, owner, name, type, stack);
            }
            return;
        }
        if (inv.opcode() == Opcode.INVOKESTATIC && !Intrinsics.isUserCode(owner)) {
            List<Expr> args = popArgs(f, type.parameterCount(), stack);
            Call c = Intrinsics.map(owner, name, type, args);
            if (c == null) {
                throw f.error("call to " + owner.replace('/', '.') + "." + name + type.displayDescriptor() + " is not supported in kernels");
            }
            if (c.type() == Type.DOUBLE) {
                useDouble();
            }
            if (Intrinsics.PACKED_PAIRS.contains(c.intrinsic())) {
                usesWarpModel = true;
            }
            stack.push(c);
            return;
        }
        if (inv.opcode() == Opcode.INVOKESTATIC) {
            inline(f, owner, name, type, stack);
            return;
        }
        throw f.error("call to " + owner.replace('/', '.') + "." + name + " (objects and instance methods are not supported in kernels)");
    }

    private List<Expr> popArgs(Frame f, int n, Deque<Value> stack) {
        Expr[] a = new Expr[n];
        for (int i = n - 1; i >= 0; i--) {
            a[i] = pop(f, stack);
        }
        return List.of(a);
    }

    private void contextCall(Frame f, String name, MethodTypeDesc type, Deque<Value> stack) {
        switch (name) {
            case "localBarrier", "globalBarrier", "warpBarrier", "memoryFence" -> {
                Value ctx = stack.pop();
                checkContext(f, ctx);
                emit(stack, new Ir.Effect(call(name, Type.INT)));
            }
            case "clusterBarrier" -> {
                checkContext(f, stack.pop());
                features.add(Feature.CLUSTER_BARRIER);
                emit(stack, new Ir.Effect(call(name, Type.INT)));
            }
            case "allocateFloatLocalArray", "allocateIntLocalArray" -> {
                Expr size = pop(f, stack);
                checkContext(f, stack.pop());
                if (!(size instanceof Const c)) {
                    throw f.error(name + " needs a constant size");
                }
                Type et = name.contains("Float") ? Type.FLOAT : Type.INT;
                Array a = new Array("la" + localArrays.size(), Space.LOCAL, null, et, ((Number) c.value()).intValue());
                localArrays.add(a);
                stack.push(new ArrayValue(a));
            }
            case "subGroupSize" -> {
                checkContext(f, stack.pop());
                stack.push(call("subGroupSize", Type.INT));
            }
            case "subGroupReduceAdd" -> {
                Expr v = pop(f, stack);
                checkContext(f, stack.pop());
                // a collective: evaluated where it stands, like a barrier
                Var r = temp(Type.FLOAT);
                flush(stack);
                body.add(new Assign(r, call("subGroupReduceAdd", Type.FLOAT, v)));
                stack.push(r);
            }
            case "atomicAdd" -> {
                Expr delta = pop(f, stack);
                Expr index = pop(f, stack);
                Array a = array(f, stack.pop());
                checkContext(f, stack.pop());
                Type t = a.elementType();
                Var old = temp(t);
                flush(stack);
                body.add(new Assign(old, new Call("atomicAdd", List.of(new Ir.Load(a, index, t, true), delta), t)));
                stack.push(old);
            }
            case "atomicAdd4" -> {
                Expr d = pop(f, stack);
                Expr c = pop(f, stack);
                Expr b = pop(f, stack);
                Expr a0 = pop(f, stack);
                Expr index = pop(f, stack);
                Array a = array(f, stack.pop());
                checkContext(f, stack.pop());
                if (a.space() != Space.GLOBAL || a.elementType() != Type.FLOAT) {
                    throw f.error("atomicAdd4 adds into a kernel parameter FloatArray");
                }
                flush(stack);
                body.add(new Ir.Effect(new Call("atomicAdd4", List.of(new Ir.Load(a, index, Type.FLOAT, true), a0, b, c, d), Type.INT)));
            }
            case "laneId" -> {
                checkContext(f, stack.pop());
                usesWarpModel = true;
                stack.push(call("laneId", Type.INT));
            }
            case "warpShuffleXor", "warpShuffle" -> {
                Expr lane = pop(f, stack);
                Expr v = pop(f, stack);
                checkContext(f, stack.pop());
                features.add(Feature.WARP_SHUFFLE);
                usesWarpModel = true;
                // a collective: evaluated where it stands, like a barrier
                Var r = temp(Type.FLOAT);
                flush(stack);
                body.add(new Assign(r, call(name, Type.FLOAT, v, lane)));
                stack.push(r);
            }
            case "mmaF16", "mmaBf16" -> {
                Expr bIndex = pop(f, stack);
                Array b = privateArray(f, stack.pop(), Type.INT, "the B fragment of " + name);
                Expr aIndex = pop(f, stack);
                Array a = privateArray(f, stack.pop(), Type.INT, "the A fragment of " + name);
                Expr accIndex = pop(f, stack);
                Array acc = privateArray(f, stack.pop(), Type.FLOAT, "the accumulator of " + name);
                checkContext(f, stack.pop());
                features.add(name.equals("mmaF16") ? Feature.MMA_F16 : Feature.MMA_BF16);
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(acc, accIndex, a, aIndex, b, bIndex)));
            }
            case "loadMatrixA", "loadMatrixB", "loadMatrixBTransposed" -> {
                Expr stride = pop(f, stack);
                Expr tileIndex = pop(f, stack);
                Array tile = array(f, stack.pop());
                if (tile.space() != Space.LOCAL || tile.elementType() != Type.INT) {
                    throw f.error(name + " reads a local int[] tile (allocateIntLocalArray)");
                }
                Expr fragIndex = pop(f, stack);
                Array frag = privateArray(f, stack.pop(), Type.INT, "the fragment of " + name);
                checkContext(f, stack.pop());
                features.add(Feature.LOAD_MATRIX);
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(frag, fragIndex, tile, tileIndex, stride)));
            }
            case "warpgroupMmaBf16", "warpgroupMmaF16", "warpgroupMmaF16NMajorB" -> {
                Expr n = pop(f, stack);
                Expr bBlockStride = name.equals("warpgroupMmaF16NMajorB") ? pop(f, stack) : new Const(-1, Type.INT);
                Expr bStride = pop(f, stack);
                Expr bIndex = pop(f, stack);
                Array b = localIntArray(f, stack.pop(), "the B tile of " + name);
                Expr aStride = pop(f, stack);
                Expr aIndex = pop(f, stack);
                Array a = localIntArray(f, stack.pop(), "the A tile of " + name);
                Array acc = privateArray(f, stack.pop(), Type.FLOAT, "the accumulator of " + name);
                checkContext(f, stack.pop());
                int columns = n instanceof Const c ? ((Number) c.value()).intValue() : -1;
                if (!java.util.Set.of(8, 16, 32, 64, 128, 256).contains(columns)) {
                    throw f.error(name + " needs a constant n of 8, 16, 32, 64, 128 or 256");
                }
                if (acc.size() < columns / 2) {
                    throw f.error(name + "'s accumulator holds " + acc.size() + " floats; n " + columns + " needs " + columns / 2);
                }
                features.add(Feature.WARPGROUP_MMA);
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(acc, a, aIndex, aStride, b, bIndex, bStride, n, bBlockStride)));
            }
            case "warpgroupArrive" -> {
                Array acc = privateArray(f, stack.pop(), Type.FLOAT, "the accumulator of " + name);
                checkContext(f, stack.pop());
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(acc)));
            }
            case "warpgroupWait" -> {
                Expr pending = pop(f, stack);
                Array acc = privateArray(f, stack.pop(), Type.FLOAT, "the accumulator of " + name);
                checkContext(f, stack.pop());
                if (!(pending instanceof Const)) {
                    throw f.error("warpgroupWait needs a constant number of pending groups");
                }
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(acc, pending)));
            }
            case "warpgroupCommit", "warpgroupFenceLocal" -> {
                checkContext(f, stack.pop());
                emit(stack, new Ir.ArrayIntrinsic(name, List.of()));
            }
            case "copyAsync" -> {
                Expr srcIndex = pop(f, stack);
                Array src = array(f, stack.pop());
                Expr localIndex = pop(f, stack);
                Array local = array(f, stack.pop());
                checkContext(f, stack.pop());
                if (local.space() != Space.LOCAL || local.elementType() != Type.INT || src.space() != Space.GLOBAL) {
                    throw f.error("copyAsync copies from a kernel parameter array into a local int[] (allocateIntLocalArray)");
                }
                features.add(Feature.ASYNC_COPY);
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(local, localIndex, src, srcIndex)));
            }
            case "copyAsyncCommit" -> {
                checkContext(f, stack.pop());
                emit(stack, new Ir.ArrayIntrinsic(name, List.of()));
            }
            case "copyAsyncWait" -> {
                Expr pending = pop(f, stack);
                checkContext(f, stack.pop());
                if (!(pending instanceof Const)) {
                    throw f.error("copyAsyncWait needs a constant number of pending groups");
                }
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(pending)));
            }
            default -> throw f.error("KernelContext." + name + " is not supported");
        }
    }

    /** A local int array (a tile in shared memory), or a compile error naming {@code what}. */
    private Array localIntArray(Frame f, Value v, String what) {
        Array a = array(f, v);
        if (a.space() != Space.LOCAL || a.elementType() != Type.INT) {
            throw f.error(what + " must be a local int[] (allocateIntLocalArray)");
        }
        return a;
    }

    /** A private array of {@code type} elements (a register fragment), or a compile error naming {@code what}. */
    private Array privateArray(Frame f, Value v, Type type, String what) {
        Array a = array(f, v);
        if (a.space() != Space.PRIVATE || a.elementType() != type) {
            throw f.error(what + " must be a private " + type.name().toLowerCase() + "[] (new " + type.name().toLowerCase() + "[N] in the kernel)");
        }
        return a;
    }

    private static void checkContext(Frame f, Value v) {
        if (!(v instanceof ContextValue)) {
            throw f.error("KernelContext method called on something else");
        }
    }

    private void arrayCall(Frame f, String owner, String name, MethodTypeDesc type, Deque<Value> stack) {
        switch (name) {
            case "get", "getFloat", "getBits" -> {
                Expr idx = pop(f, stack);
                Array a = array(f, stack.pop());
                Type t = name.equals("getFloat") ? Type.FLOAT : name.equals("getBits") ? Type.INT : Type.of(classOfReturn(type));
                stack.push(new Ir.Load(a, idx, t, name.equals("getBits")));
            }
            case "set", "setFloat" -> {
                Expr v = pop(f, stack);
                Expr idx = pop(f, stack);
                Array a = array(f, stack.pop());
                emit(stack, new Ir.Store(a, idx, v));
            }
            case "getFloats", "setFloats", "getWords" -> {
                // vector accesses: (index, local array, local index, constant count)
                boolean words = name.equals("getWords");
                Expr count = pop(f, stack);
                Expr localIndex = pop(f, stack);
                Array local = array(f, stack.pop());
                Expr index = pop(f, stack);
                Array a = array(f, stack.pop());
                java.util.Set<Integer> counts = words ? java.util.Set.of(1, 2, 4) : java.util.Set.of(2, 4, 8);
                if (!(count instanceof Const c) || !counts.contains(((Number) c.value()).intValue())) {
                    throw f.error(name + " needs a constant count of " + (words ? "1, 2 or 4 words" : "2, 4 or 8"));
                }
                if (local.space() == Space.GLOBAL || local.elementType() != (words ? Type.INT : Type.FLOAT)) {
                    throw f.error(name + (words ? " loads into a private or local int[]" : " moves elements between the array and a private or local float[]"));
                }
                features.add(Feature.VECTOR_ACCESS);
                emit(stack, new Ir.ArrayIntrinsic(name, List.of(a, index, local, localIndex, count)));
            }
            case "getSize" -> throw f.error("getSize() is not available in kernels (pass lengths as int parameters)");
            default -> throw f.error(owner.substring(owner.lastIndexOf('/') + 1) + "." + name + " is not supported in kernels");
        }
    }

    private static Class<?> classOfReturn(MethodTypeDesc type) {
        ClassDesc r = type.returnType();
        return switch (r.descriptorString()) {
            case "I", "Z", "B", "S", "C" -> int.class;
            case "J" -> long.class;
            case "F" -> float.class;
            case "D" -> double.class;
            default -> throw new IllegalArgumentException(r.descriptorString());
        };
    }

    /** Whether a method's code assigns local variable {@code slot} (a store or an increment). */
    private static boolean storesTo(CodeModel code, int slot) {
        for (CodeElement e : code) {
            if (e instanceof StoreInstruction st && st.slot() == slot || e instanceof IncrementInstruction inc && inc.slot() == slot) {
                return true;
            }
        }
        return false;
    }

    private void inline(Frame caller, String owner, String name, MethodTypeDesc type, Deque<Value> stack) {
        MethodModel mm = Bytecode.find(Bytecode.classModel(loader, owner), name, type.descriptorString());
        String key = key(mm);
        if (callStack.contains(key)) {
            throw caller.error("recursion (" + name + " calls itself) is not supported in kernels");
        }
        if (callStack.size() > 32) {
            throw caller.error("helper calls nested deeper than 32");
        }
        String prefix = "i" + inlines++ + "_";
        Var ret = type.returnType().descriptorString().equals("V") ? null
                : variable(prefix + "ret", Type.of(classOfReturn(type)));
        Frame f = new Frame(prefix, mm, Bytecode.code(mm), ret, prefix + "return");
        // arguments, last on top of the stack
        int n = type.parameterCount();
        Value[] args = new Value[n];
        for (int i = n - 1; i >= 0; i--) {
            args[i] = stack.pop();
        }
        flush(stack);
        int slot = 0;
        for (int i = 0; i < n; i++) {
            String d = type.parameterType(i).descriptorString();
            if (d.startsWith("L") || d.startsWith("[")) {
                if (args[i] instanceof Expr) {
                    throw caller.error("passing a number where " + name + " expects an object");
                }
                f.slots.put(slot, args[i]);
                slot++;
            } else {
                Type t = Type.of(classOfReturn(MethodTypeDesc.of(type.parameterType(i))));
                if (args[i] instanceof Const c && c.type() == t && !storesTo(f.code, slot)) {
                    // a constant argument stays a constant inside the helper: sizes of its local arrays may depend on it
                    f.constants.put(slot, c);
                } else {
                    body.add(new Assign(f.local(slot, t), expr(caller, args[i])));
                }
                slot += t.wide() ? 2 : 1;
            }
        }
        callStack.push(key);
        translate(f);
        callStack.pop();
        body.add(new Ir.Label(f.returnLabel));
        if (ret != null) {
            stack.push(ret);
        }
    }
}
