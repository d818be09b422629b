import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.compiler.KernelSource;
import io.lightllm.tornado.runtime.KernelRef;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the CUDA C that the kernel compiler makes of one kernel method, for ptxas and cuobjdump without a GPU
 * (bench/sass/compare.sh). Usage: KernelCuda CLASS METHOD OUT.cu [ARG=DTYPE ...], ARG the index of a kernel argument
 * (the KernelContext not counted) whose element type is not f32: e.g. 2=BF16 for a GEMV's weights; *=DTYPE for every
 * NativeArray argument not named; NAME:VALUE binds the kernel's int or boolean parameter NAME to a constant (KernelRef.with).
 * KernelCuda --list CLASSES: "CLASS METHOD [NAME:VALUE ...]" for every KernelRef in a static field of the classes under the
 * folder or jar CLASSES (package io.lightllm.kernels), or among the values of a static Map field, once each. KernelRef's
 * newer methods are called reflectively, so that one copy of this file reads builds before them too.
 */
public class KernelCuda {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("--list")) {
            list(Path.of(args[1]));
            return;
        }
        KernelRef kernel = KernelRef.of(Class.forName(args[0]), args[1]);
        int skip = kernel.usesContext() ? 1 : 0;
        DType[] types = new DType[kernel.parameterTypes().length - skip];
        for (int i = 3; i < args.length; i++) {
            if (args[i].contains(":")) {
                String[] nv = args[i].split(":");
                Object value = nv[1].equals("true") || nv[1].equals("false") ? (Object) Boolean.parseBoolean(nv[1]) : (Object) Integer.parseInt(nv[1]);
                kernel = (KernelRef) KernelRef.class.getMethod("with", String.class, Object.class).invoke(kernel, nv[0], value);
                continue;
            }
            String[] kv = args[i].split("=");
            if (kv[0].equals("*")) {
                for (int p = 0; p < types.length; p++) {
                    if (types[p] == null && kernel.parameterTypes()[p + skip] == NativeArray.class) {
                        types[p] = DType.valueOf(kv[1]);
                    }
                }
            } else {
                types[Integer.parseInt(kv[0])] = DType.valueOf(kv[1]);
            }
        }
        KernelSource source = KernelCompiler.compile(kernel, Dialect.CUDA, types);
        Files.writeString(Path.of(args[2]), source.source());
        System.out.println(source.entryName());
    }

    private static void list(Path classes) throws Exception {
        java.util.List<String> names = new java.util.ArrayList<>();
        if (Files.isDirectory(classes)) {
            try (var files = Files.walk(classes)) {
                files.map(f -> classes.relativize(f).toString()).forEach(names::add);
            }
        } else {
            try (var jar = new java.util.jar.JarFile(classes.toFile())) {
                jar.stream().map(java.util.jar.JarEntry::getName).forEach(names::add);
            }
        }
        java.util.Set<String> seen = new java.util.TreeSet<>();
        for (String n : names) {
            if (!n.startsWith("io/lightllm/kernels/") || !n.endsWith(".class") || n.substring(20).contains("/")) {
                continue;
            }
            Class<?> c = Class.forName(n.substring(0, n.length() - 6).replace('/', '.'), false, KernelCuda.class.getClassLoader());
            for (java.lang.reflect.Field f : c.getDeclaredFields()) {
                if (!java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
                    continue;
                }
                if (f.getType() == KernelRef.class) {
                    f.setAccessible(true);
                    seen.add(spec((KernelRef) f.get(null)));
                } else if (java.util.Map.class.isAssignableFrom(f.getType())) {
                    f.setAccessible(true);
                    for (Object v : ((java.util.Map<?, ?>) f.get(null)).values()) {
                        if (v instanceof KernelRef k) {
                            seen.add(spec(k));
                        }
                    }
                }
            }
        }
        seen.forEach(System.out::println);
    }

    /** "CLASS METHOD" and the ref's bound parameters as NAME:VALUE (none in builds before KernelRef.with). */
    private static String spec(KernelRef k) throws Exception {
        StringBuilder b = new StringBuilder(k.method().getDeclaringClass().getName() + " " + k.method().getName());
        java.lang.reflect.Method constants;
        try {
            constants = KernelRef.class.getMethod("constants");
        } catch (NoSuchMethodException e) {
            return b.toString();
        }
        java.lang.reflect.Parameter[] params = k.method().getParameters();
        int first = k.usesContext() ? 1 : 0;
        for (var e : ((java.util.Map<?, ?>) constants.invoke(k)).entrySet()) {
            b.append(' ').append(params[(Integer) e.getKey() + first].getName()).append(':').append(e.getValue());
        }
        return b.toString();
    }
}
