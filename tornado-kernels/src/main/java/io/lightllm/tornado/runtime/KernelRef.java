package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.KernelContext;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.List;

/**
 * Names one kernel: a public static void method. Backends compile and cache per ref, so
 * keep refs in static finals rather than creating one per launch.
 */
public record KernelRef(Method method) {

    public KernelRef {
        if (!Modifier.isStatic(method.getModifiers()) || method.getReturnType() != void.class) {
            throw new IllegalArgumentException("a kernel must be a static void method: " + method);
        }
    }

    /** The one public static method called {@code name} in {@code owner}. */
    public static KernelRef of(Class<?> owner, String name) {
        List<Method> found = Arrays.stream(owner.getDeclaredMethods())
                .filter(m -> m.getName().equals(name) && Modifier.isStatic(m.getModifiers()) && Modifier.isPublic(m.getModifiers()))
                .toList();
        if (found.size() != 1) {
            throw new IllegalArgumentException(found.isEmpty()
                    ? "no public static kernel " + owner.getName() + "." + name
                    : "kernel name " + owner.getName() + "." + name + " is overloaded; kernels need unique names");
        }
        return new KernelRef(found.getFirst());
    }

    public String name() {
        return method.getDeclaringClass().getSimpleName() + "." + method.getName();
    }

    public Class<?>[] parameterTypes() {
        return method.getParameterTypes();
    }

    /** Whether the kernel is explicit (first parameter is a KernelContext). */
    public boolean usesContext() {
        Class<?>[] p = method.getParameterTypes();
        return p.length > 0 && p[0] == KernelContext.class;
    }

    @Override
    public String toString() {
        return name();
    }
}
