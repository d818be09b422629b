package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.KernelContext;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Parameter;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Names one kernel: a public static void method, with some of its scalar parameters bound to constants
 * ({@link #with}). The compiler treats a bound parameter as that constant, as if the body were written with it: its loops
 * unroll, local arrays may be sized by it and fragment arrays indexed through it stay in registers; one method serves
 * each head dimension or warp count its refs bind, instead of an entry point per value. A launch leaves out the bound
 * parameters at the end of the list (the ref supplies them: declare the bound ones last); one it passes must equal its
 * constant (the JVM runs the method itself, with every argument). Backends compile and cache per
 * ref, so keep refs in static finals rather than creating one per launch.
 *
 * @param constants bound launch arguments by index (parameters after a leading KernelContext): Integer, Boolean or Float
 * @param bounds    launch bounds the CUDA compiler is held to ({@link #withLaunchBounds}), or null
 */
public record KernelRef(Method method, SortedMap<Integer, Object> constants, LaunchBounds bounds) {

    /**
     * At most {@code items} work-items a group, and registers few enough for {@code groupsPerUnit} groups on a compute unit:
     * CUDA's {@code __launch_bounds__}, which caps the registers ptxas may give each thread (65,536 / (items x groups) on
     * Hopper). Other backends ignore it.
     */
    public record LaunchBounds(int items, int groupsPerUnit) {
        public LaunchBounds {
            if (items < 1 || groupsPerUnit < 1) {
                throw new IllegalArgumentException("launch bounds need positive items and groups, not " + items + " x " + groupsPerUnit);
            }
        }
    }

    public KernelRef {
        if (!Modifier.isStatic(method.getModifiers()) || method.getReturnType() != void.class) {
            throw new IllegalArgumentException("a kernel must be a static void method: " + method);
        }
        constants = Collections.unmodifiableSortedMap(new TreeMap<>(constants));
    }

    public KernelRef(Method method) {
        this(method, new TreeMap<>(), null);
    }

    /** This kernel compiled for groups of at most {@code items} work-items, {@code groupsPerUnit} of them resident a compute unit. */
    public KernelRef withLaunchBounds(int items, int groupsPerUnit) {
        return new KernelRef(method, constants, new LaunchBounds(items, groupsPerUnit));
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

    /**
     * This kernel with its parameter {@code parameter} (an int, boolean or float, never assigned in the body) bound to
     * {@code value}. Needs the parameters' names in the class file (javac {@code -parameters}, as the build compiles).
     */
    public KernelRef with(String parameter, Object value) {
        Parameter[] params = method.getParameters();
        int first = usesContext() ? 1 : 0;
        for (int i = first; i < params.length; i++) {
            if (!params[i].isNamePresent()) {
                throw new IllegalStateException(name() + ": parameter names are not in the class file (compile with javac -parameters)");
            }
            if (params[i].getName().equals(parameter)) {
                Class<?> type = params[i].getType();
                boolean fits = type == int.class && value instanceof Integer || type == boolean.class && value instanceof Boolean
                        || type == float.class && value instanceof Float;
                if (!fits) {
                    throw new IllegalArgumentException(name() + ": parameter " + parameter + " is " + type.getSimpleName()
                            + "; cannot bind " + value);
                }
                TreeMap<Integer, Object> bound = new TreeMap<>(constants);
                bound.put(i - first, value);
                return new KernelRef(method, bound, bounds);
            }
        }
        throw new IllegalArgumentException(name() + " has no parameter " + parameter);
    }

    /** The class and method, and the bound parameters if any: {@code TensorCoreAttention.decodeCodes[headDim=128, warps=4]}. */
    public String name() {
        String base = method.getDeclaringClass().getSimpleName() + "." + method.getName();
        Parameter[] params = method.getParameters();
        int first = usesContext() ? 1 : 0;
        String bound = constants.isEmpty() ? "" : constants.entrySet().stream()
                .map(e -> params[e.getKey() + first].getName() + "=" + e.getValue()).collect(Collectors.joining(", ", "[", "]"));
        return base + bound + (bounds == null ? "" : "{" + bounds.items() + " items, " + bounds.groupsPerUnit() + " groups a unit}");
    }

    /** How many of the last parameters are bound: a launch may leave them out ({@code KernelArguments}). */
    public int trailingConstants() {
        int declared = method.getParameterCount() - (usesContext() ? 1 : 0);
        int n = 0;
        while (n < declared && constants.containsKey(declared - 1 - n)) {
            n++;
        }
        return n;
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
