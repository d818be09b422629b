package io.lightllm.tornado.compiler;

import java.lang.classfile.CodeElement;
import java.lang.classfile.MethodModel;
import java.lang.classfile.Opcode;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.reflect.Method;
import java.util.HashSet;
import java.util.Set;

/** Quick facts about a kernel's bytecode that backends need before compiling it. */
public final class KernelScan {
    static final String CONTEXT = "io/lightllm/tornado/api/KernelContext";

    private KernelScan() {
    }

    /** KernelContext methods where work-items wait for each other besides the barriers: the warp collectives. */
    private static final Set<String> COLLECTIVES = Set.of("warpShuffle", "warpShuffleXor", "mmaF16", "mmaBf16");

    /**
     * Whether the kernel, or a static helper it calls, waits at a barrier or a warp collective
     * (on the JVM its work-items then need threads of their own).
     */
    public static boolean usesBarrier(Method kernel) {
        return usesBarrier(kernel.getDeclaringClass().getClassLoader(), Bytecode.methodModel(kernel), new HashSet<>());
    }

    /** Whether the kernel has {@code @Parallel} loops. */
    public static boolean hasParallelLoops(Method kernel) {
        return !ParallelLoops.find(Bytecode.code(Bytecode.methodModel(kernel)), kernel.getName()).isEmpty();
    }

    private static boolean usesBarrier(ClassLoader loader, MethodModel mm, Set<String> seen) {
        String key = mm.parent().map(c -> c.thisClass().asInternalName()).orElse("?") + "." + mm.methodName() + mm.methodType();
        if (!seen.add(key) || mm.code().isEmpty()) {
            return false;
        }
        for (CodeElement e : mm.code().get()) {
            if (e instanceof InvokeInstruction inv) {
                String owner = inv.owner().asInternalName();
                String name = inv.name().stringValue();
                if (owner.equals(CONTEXT) && (name.endsWith("Barrier") || COLLECTIVES.contains(name))) {
                    return true;
                }
                if (inv.opcode() == Opcode.INVOKESTATIC && Intrinsics.isUserCode(owner)) {
                    MethodModel callee = Bytecode.find(Bytecode.classModel(loader, owner), inv.name().stringValue(), inv.type().stringValue());
                    if (usesBarrier(loader, callee, seen)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}
