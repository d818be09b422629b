package io.lightllm.tornado.jvm;

import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.compiler.Bytecode;
import io.lightllm.tornado.compiler.KernelCompileException;
import io.lightllm.tornado.compiler.ParallelLoops;
import io.lightllm.tornado.runtime.KernelRef;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.CodeBuilder;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.Label;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.BranchInstruction;
import java.lang.classfile.instruction.ExceptionCatch;
import java.lang.classfile.instruction.IncrementInstruction;
import java.lang.classfile.instruction.LabelTarget;
import java.lang.classfile.instruction.LineNumber;
import java.lang.classfile.instruction.LoadInstruction;
import java.lang.classfile.instruction.LocalVariable;
import java.lang.classfile.instruction.LocalVariableType;
import java.lang.classfile.instruction.LookupSwitchInstruction;
import java.lang.classfile.instruction.StoreInstruction;
import java.lang.classfile.instruction.SwitchCase;
import java.lang.classfile.instruction.TableSwitchInstruction;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Method;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds the JVM entry of a kernel as a hidden class. For a {@code @Parallel} kernel the
 * entry holds a copy of the kernel whose outermost parallel loops start at
 * {@code start + thread * step} and advance by {@code threads * step}, so that the host threads
 * share the iterations; inner parallel loops stay sequential. Other kernels are called as
 * they are.
 */
final class JvmEntryGenerator {
    private static final ClassDesc CD_CONTEXT = ClassDesc.of(KernelContext.class.getName());
    private static final ClassDesc CD_ENTRY = ClassDesc.of(JvmEntry.class.getName());
    private static final MethodTypeDesc RUN = MethodTypeDesc.of(ConstantDescs.CD_void, CD_CONTEXT, ConstantDescs.CD_int,
            ConstantDescs.CD_int, ConstantDescs.CD_Object.arrayType());

    private JvmEntryGenerator() {
    }

    static JvmEntry generate(KernelRef kernel, boolean parallel) {
        Method m = kernel.method();
        Class<?> owner = m.getDeclaringClass();
        ClassDesc ownerDesc = ClassDesc.of(owner.getName());
        ClassDesc self = ClassDesc.of(owner.getPackageName(), owner.getSimpleName() + "$JvmEntry$" + m.getName());
        MethodTypeDesc kernelType = MethodTypeDesc.ofDescriptor(Bytecode.descriptor(m));
        MethodTypeDesc strideType = kernelType.insertParameterTypes(kernelType.parameterCount(), ConstantDescs.CD_int, ConstantDescs.CD_int);
        MethodModel original = Bytecode.methodModel(m);
        ClassFile cf = ClassFile.of(ClassFile.ClassHierarchyResolverOption.of(
                ClassHierarchyResolver.defaultResolver().orElse(ClassHierarchyResolver.ofResourceParsing(owner.getClassLoader()))));
        byte[] bytes = cf.build(self, clb -> {
            clb.withInterfaceSymbols(CD_ENTRY);
            clb.withMethodBody(ConstantDescs.INIT_NAME, ConstantDescs.MTD_void, ClassFile.ACC_PUBLIC,
                    cb -> cb.aload(0).invokespecial(ConstantDescs.CD_Object, ConstantDescs.INIT_NAME, ConstantDescs.MTD_void).return_());
            if (parallel) {
                clb.withMethodBody("kernel", strideType, ClassFile.ACC_STATIC | ClassFile.ACC_PRIVATE,
                        cb -> copyWithGridStride(cb, Bytecode.code(original), m, kernel.name()));
            }
            clb.withMethodBody("run", RUN, ClassFile.ACC_PUBLIC, cb -> {
                Class<?>[] params = m.getParameterTypes();
                for (int i = 0; i < params.length; i++) {
                    if (params[i] == KernelContext.class) {
                        cb.aload(1);
                        continue;
                    }
                    int argIndex = kernel.usesContext() ? i - 1 : i;
                    cb.aload(4).ldc(argIndex).aaload();
                    unbox(cb, params[i]);
                }
                if (parallel) {
                    cb.iload(2).iload(3).invokestatic(self, "kernel", strideType);
                } else {
                    cb.invokestatic(ownerDesc, m.getName(), kernelType, owner.isInterface());
                }
                cb.return_();
            });
        });
        try {
            MethodHandles.Lookup lookup = MethodHandles.privateLookupIn(owner, MethodHandles.lookup())
                    .defineHiddenClass(bytes, true, MethodHandles.Lookup.ClassOption.NESTMATE);
            return (JvmEntry) lookup.lookupClass().getConstructor().newInstance();
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new KernelCompileException(kernel.name() + ": cannot build the JVM entry: " + e);
        }
    }

    private static void unbox(CodeBuilder cb, Class<?> type) {
        if (type == int.class) {
            cb.checkcast(ConstantDescs.CD_Integer).invokevirtual(ConstantDescs.CD_Integer, "intValue", MethodTypeDesc.of(ConstantDescs.CD_int));
        } else if (type == long.class) {
            cb.checkcast(ConstantDescs.CD_Long).invokevirtual(ConstantDescs.CD_Long, "longValue", MethodTypeDesc.of(ConstantDescs.CD_long));
        } else if (type == float.class) {
            cb.checkcast(ConstantDescs.CD_Float).invokevirtual(ConstantDescs.CD_Float, "floatValue", MethodTypeDesc.of(ConstantDescs.CD_float));
        } else if (type == double.class) {
            cb.checkcast(ConstantDescs.CD_Double).invokevirtual(ConstantDescs.CD_Double, "doubleValue", MethodTypeDesc.of(ConstantDescs.CD_double));
        } else if (type == boolean.class) {
            cb.checkcast(ConstantDescs.CD_Boolean).invokevirtual(ConstantDescs.CD_Boolean, "booleanValue", MethodTypeDesc.of(ConstantDescs.CD_boolean));
        } else {
            cb.checkcast(ClassDesc.of(type.getName()));
        }
    }

    /**
     * Copies the kernel's code, shifting every local above the parameters by two slots (the
     * appended thread and thread-count parameters) and rewriting the dimension-0 parallel loops.
     */
    private static void copyWithGridStride(CodeBuilder cb, CodeModel code, Method m, String name) {
        int paramSlots = 0;
        for (Class<?> p : m.getParameterTypes()) {
            paramSlots += (p == long.class || p == double.class) ? 2 : 1;
        }
        final int params = paramSlots;
        final int threadSlot = params;
        final int threadsSlot = params + 1;
        List<ParallelLoops.Loop> loops = ParallelLoops.find(code, name);
        Map<Integer, ParallelLoops.Loop> inits = new HashMap<>();
        Map<Integer, ParallelLoops.Loop> incs = new HashMap<>();
        for (ParallelLoops.Loop l : loops) {
            if (l.dimension() == 0) {
                inits.put(l.init(), l);
                incs.put(l.increment(), l);
            }
        }
        Map<Label, Label> labels = new HashMap<>();
        java.util.function.Function<Label, Label> map = l -> labels.computeIfAbsent(l, k -> cb.newLabel());
        java.util.function.IntUnaryOperator shift = s -> s >= params ? s + 2 : s;
        List<CodeElement> elements = code.elementList();
        for (int i = 0; i < elements.size(); i++) {
            CodeElement e = elements.get(i);
            ParallelLoops.Loop loop;
            if ((loop = inits.get(i)) != null) {
                // start + thread * step
                cb.iload(threadSlot).ldc(loop.step()).imul().iadd();
                cb.istore(shift.applyAsInt(loop.slot()));
            } else if ((loop = incs.get(i)) != null) {
                int s = shift.applyAsInt(loop.slot());
                cb.iload(s).iload(threadsSlot).ldc(loop.step()).imul().iadd().istore(s);
            } else if (e instanceof LoadInstruction li) {
                cb.loadLocal(li.typeKind(), shift.applyAsInt(li.slot()));
            } else if (e instanceof StoreInstruction si) {
                cb.storeLocal(si.typeKind(), shift.applyAsInt(si.slot()));
            } else if (e instanceof IncrementInstruction ii) {
                cb.iinc(shift.applyAsInt(ii.slot()), ii.constant());
            } else if (e instanceof LabelTarget lt) {
                cb.labelBinding(map.apply(lt.label()));
            } else if (e instanceof BranchInstruction bi) {
                cb.branch(bi.opcode(), map.apply(bi.target()));
            } else if (e instanceof TableSwitchInstruction ts) {
                cb.tableswitch(ts.lowValue(), ts.highValue(), map.apply(ts.defaultTarget()),
                        ts.cases().stream().map(c -> SwitchCase.of(c.caseValue(), map.apply(c.target()))).toList());
            } else if (e instanceof LookupSwitchInstruction ls) {
                cb.lookupswitch(map.apply(ls.defaultTarget()),
                        ls.cases().stream().map(c -> SwitchCase.of(c.caseValue(), map.apply(c.target()))).toList());
            } else if (e instanceof LineNumber ln) {
                cb.lineNumber(ln.line());
            } else if (e instanceof LocalVariable || e instanceof LocalVariableType) {
                // debug info: dropped, its slots would be stale
            } else if (e instanceof ExceptionCatch) {
                throw new KernelCompileException(name + ": kernels cannot catch exceptions");
            } else if (e instanceof java.lang.classfile.Instruction) {
                cb.with(e);
            }
            // attributes of the original code (tables, annotations) are dropped
        }
    }

}
