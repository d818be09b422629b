package io.lightllm.tornado.compiler;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.KernelRef;

/** TEMPORARY stub of the lead's compiler API (branch opencl); deleted when main's compiler is merged. */
public final class KernelCompiler {
    private KernelCompiler() {
    }

    public static KernelSource compile(KernelRef kernel, Dialect dialect, DType[] argDtypes) {
        throw new KernelCompileException("the kernel compiler is not merged into this branch yet: cannot compile " + kernel.name());
    }
}
