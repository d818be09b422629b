package io.lightllm.tornado.compiler;

import java.lang.classfile.Attributes;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.Label;
import java.lang.classfile.TypeAnnotation;
import java.lang.classfile.instruction.IncrementInstruction;
import java.lang.classfile.instruction.LabelTarget;
import java.lang.classfile.instruction.StoreInstruction;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds the {@code @Parallel} loops of a method from the type annotations javac keeps for
 * local variables. For each it records the initialising store and the single increment,
 * which are the two instructions a backend rewrites to turn the loop into a grid-stride loop.
 */
public final class ParallelLoops {
    static final String PARALLEL_DESC = "Lio/lightllm/tornado/api/Parallel;";

    /**
     * One parallel loop.
     *
     * @param slot      local variable slot of the induction variable
     * @param dimension grid dimension (0 for the outermost parallel loop)
     * @param init      the store that initialises the variable (index into the element list)
     * @param increment the {@code iinc} that advances it (index into the element list)
     * @param step      the increment's constant
     */
    public record Loop(int slot, int dimension, int init, int increment, int step) {
    }

    private ParallelLoops() {
    }

    public static List<Loop> find(CodeModel code, String kernelName) {
        List<CodeElement> elements = code.elementList();
        Map<Label, Integer> labelIndex = new IdentityHashMap<>();
        for (int i = 0; i < elements.size(); i++) {
            if (elements.get(i) instanceof LabelTarget lt) {
                labelIndex.put(lt.label(), i);
            }
        }
        record Range(int slot, int start, int end) {
        }
        List<Range> ranges = new ArrayList<>();
        code.findAttribute(Attributes.runtimeVisibleTypeAnnotations()).ifPresent(attr -> {
            for (TypeAnnotation ta : attr.annotations()) {
                if (!ta.annotation().className().equalsString(PARALLEL_DESC)) {
                    continue;
                }
                if (ta.targetInfo() instanceof TypeAnnotation.LocalVarTarget lv) {
                    for (TypeAnnotation.LocalVarTargetInfo info : lv.table()) {
                        ranges.add(new Range(info.index(), labelIndex.get(info.startLabel()), labelIndex.get(info.endLabel())));
                    }
                }
            }
        });
        List<Loop> loops = new ArrayList<>();
        for (Range r : ranges) {
            int init = -1;
            for (int i = r.start - 1; i >= 0; i--) {
                if (elements.get(i) instanceof StoreInstruction s && s.slot() == r.slot) {
                    init = i;
                    break;
                }
            }
            int inc = -1;
            int step = 0;
            for (int i = r.start; i < r.end; i++) {
                CodeElement e = elements.get(i);
                if (e instanceof IncrementInstruction ii && ii.slot() == r.slot) {
                    if (inc >= 0) {
                        throw new KernelCompileException(kernelName + ": a @Parallel loop variable must be advanced only by the loop's own increment");
                    }
                    inc = i;
                    step = ii.constant();
                } else if (e instanceof StoreInstruction s && s.slot() == r.slot) {
                    throw new KernelCompileException(kernelName + ": a @Parallel loop variable must not be assigned inside the loop");
                }
            }
            if (init < 0 || inc < 0 || step <= 0) {
                throw new KernelCompileException(kernelName + ": @Parallel must annotate the int induction variable of a counting loop "
                        + "(for (@Parallel int i = a; i < n; i += c) with a positive constant c)");
            }
            int depth = 0;
            for (Range o : ranges) {
                if (o != r && o.start <= r.start && r.end <= o.end) {
                    depth++;
                }
            }
            if (depth > 2) {
                throw new KernelCompileException(kernelName + ": at most three nested @Parallel loops");
            }
            loops.add(new Loop(r.slot, depth, init, inc, step));
        }
        return loops;
    }
}
