package io.lightllm.tornado.compiler;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The kernel compiler's front door: Java bytecode of a kernel (and the static helpers it
 * calls, inlined) to OpenCL C or CUDA C. Results are cached per kernel, dialect and the
 * dtypes bound to its array parameters; device binaries are cached by the backends, keyed by
 * a hash of this source.
 */
public final class KernelCompiler {
    private record Key(KernelRef kernel, Dialect dialect, List<DType> dtypes) {
    }

    private static final Map<Key, KernelSource> CACHE = new ConcurrentHashMap<>();

    private KernelCompiler() {
    }

    /**
     * @param argDtypes one entry per launch argument (parameters after a leading KernelContext):
     *                  the dtype of the buffer bound to an array parameter, null for scalars; may be
     *                  null when no parameter is a plain {@code NativeArray}
     */
    public static KernelSource compile(KernelRef kernel, Dialect dialect, DType[] argDtypes) {
        List<DType> key = argDtypes == null ? List.of() : Arrays.asList(argDtypes.clone());
        return CACHE.computeIfAbsent(new Key(kernel, dialect, key), k -> translate(kernel, dialect, argDtypes));
    }

    /**
     * {@link #compile(KernelRef, Dialect, DType[])} for a device: refuses, with a
     * {@link KernelCompileException} naming the feature and the device, a kernel that uses what
     * {@code target} lacks (tensor-core MMA on a GPU older than Ampere, say).
     */
    public static KernelSource compile(KernelRef kernel, Target target, DType[] argDtypes) {
        KernelSource source = compile(kernel, target.dialect(), argDtypes);
        target.check(kernel.name(), source);
        return source;
    }

    private static KernelSource translate(KernelRef kernel, Dialect dialect, DType[] argDtypes) {
        Translator t = new Translator(kernel.name(), kernel.method().getDeclaringClass().getClassLoader());
        t.translateKernel(kernel.method(), argDtypes, kernel.usesContext(), kernel.constants());
        StringBuilder entry = new StringBuilder(kernel.method().getDeclaringClass().getSimpleName() + "_" + kernel.method().getName());
        Class<?>[] params = kernel.parameterTypes();
        int first = kernel.usesContext() ? 1 : 0;
        for (int i = first; i < params.length; i++) {
            if (params[i] == io.lightllm.tornado.api.NativeArray.class && argDtypes != null && argDtypes[i - first] != null) {
                entry.append("__").append(argDtypes[i - first].name().toLowerCase());
            }
        }
        // a bound parameter's constant is part of the name: each binding is its own kernel
        kernel.constants().forEach((i, v) -> entry.append("__").append(v instanceof Boolean b ? (b ? 1 : 0) : v));
        if (kernel.bounds() != null) {
            entry.append("__lb").append(kernel.bounds().items()).append('x').append(kernel.bounds().groupsPerUnit());
        }
        String name = entry.toString().replaceAll("[^A-Za-z0-9_]", "_");
        return new KernelSource(name, CEmitter.emit(t, dialect, name, kernel.bounds()), t.features, CEmitter.dynamicLocalBytes(t, dialect));
    }
}
