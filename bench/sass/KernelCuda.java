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
 * NativeArray argument not named. KernelCuda --list CLASSES: "CLASS METHOD" for every static KernelRef field of the classes
 * under the folder or jar CLASSES (package io.lightllm.kernels), once each.
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
                if (f.getType() == KernelRef.class && java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
                    f.setAccessible(true);
                    KernelRef k = (KernelRef) f.get(null);
                    seen.add(k.method().getDeclaringClass().getName() + " " + k.method().getName());
                }
            }
        }
        seen.forEach(System.out::println);
    }
}
