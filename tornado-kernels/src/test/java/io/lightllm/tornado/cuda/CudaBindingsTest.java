package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeElement;
import java.lang.classfile.MethodModel;
import java.lang.classfile.Opcode;
import java.lang.classfile.instruction.FieldInstruction;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.foreign.FunctionDescriptor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code invokeExact} on a downcall handle fails at run time unless the call site's static
 * types match the handle's exactly, and the handles only exist where the NVIDIA libraries are.
 * So the call sites are checked here, from the bytecode: each {@code invokeExact} must have the
 * method type that the FunctionDescriptor of the handle it invokes gives. This covers every
 * wrapper, including those only a GPU machine runs.
 */
class CudaBindingsTest {

    @Test
    void everyInvokeExactMatchesItsFunctionDescriptor() throws Exception {
        int checked = 0;
        checked += checkCallSites(CudaDriver.class, CudaDriver.signatures());
        checked += checkCallSites(CudaBlas.class, CudaBlas.signatures());
        checked += checkCallSites(Nvrtc.class, Nvrtc.signatures());
        int nccl = checkCallSites(Nccl.class, Nccl.signatures());
        assertEquals(Nccl.signatures().size(), nccl, "every NCCL function (and setenv) is called through one wrapper");
        checked += nccl;
        // every bound driver function is called through one wrapper, plus cuBLAS's GEMM and status text, NVRTC's error text
        assertTrue(checked >= CudaDriver.signatures().size() - 1 + 2 + 1, "call sites checked: " + checked);
    }

    private static int checkCallSites(Class<?> owner, Map<String, FunctionDescriptor> signatures) throws Exception {
        ClassModel cm;
        try (InputStream in = owner.getResourceAsStream(owner.getSimpleName() + ".class")) {
            assertNotNull(in, owner + " class file");
            cm = ClassFile.of().parse(in.readAllBytes());
        }
        List<String> problems = new ArrayList<>();
        int checked = 0;
        for (MethodModel m : cm.methods()) {
            String handle = null;
            if (m.code().isEmpty()) {
                continue;
            }
            for (CodeElement e : m.code().get()) {
                if (e instanceof FieldInstruction f && f.opcode() == Opcode.GETSTATIC
                        && f.typeSymbol().descriptorString().equals("Ljava/lang/invoke/MethodHandle;")) {
                    handle = f.name().stringValue();
                } else if (e instanceof InvokeInstruction inv && inv.owner().asInternalName().equals("java/lang/invoke/MethodHandle")
                        && inv.name().stringValue().equals("invokeExact")) {
                    FunctionDescriptor fd = signatures.get(handle);
                    String where = owner.getSimpleName() + "." + m.methodName().stringValue() + " invokes " + handle;
                    if (fd == null) {
                        problems.add(where + ", which has no recorded signature");
                    } else if (!fd.toMethodType().descriptorString().equals(inv.typeSymbol().descriptorString())) {
                        problems.add(where + " as " + inv.typeSymbol().descriptorString() + " but it is "
                                + fd.toMethodType().descriptorString());
                    }
                    checked++;
                    handle = null;
                }
            }
        }
        assertEquals(List.of(), problems);
        return checked;
    }
}
