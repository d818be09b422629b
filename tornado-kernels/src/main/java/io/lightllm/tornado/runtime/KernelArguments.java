package io.lightllm.tornado.runtime;

import io.lightllm.tornado.api.NativeArray;
import java.util.Arrays;

/** Checks launch arguments against the kernel's parameters, so mistakes fail with a clear message. */
final class KernelArguments {
    private KernelArguments() {
    }

    static Object[] check(Device device, KernelRef kernel, Object[] args) {
        Class<?>[] params = kernel.parameterTypes();
        int first = kernel.usesContext() ? 1 : 0;
        int declared = params.length - first;
        int trailing = kernel.trailingConstants();
        if (trailing > 0 && args.length == declared - trailing) {
            // the parameters the ref binds at the end of the list: the launch may leave them to the ref
            args = Arrays.copyOf(args, declared);
            for (int i = declared - trailing; i < declared; i++) {
                args[i] = kernel.constants().get(i);
            }
        }
        if (args.length != declared) {
            throw new IllegalArgumentException(kernel + " takes " + declared + " arguments" + (trailing > 0 ? " (or " + (declared - trailing)
                    + ", the last " + trailing + " bound by its ref)" : "") + ", got " + args.length);
        }
        Object[] out = new Object[args.length];
        for (int i = 0; i < args.length; i++) {
            Class<?> p = params[i + first];
            Object a = args[i];
            Argument where = new Argument(kernel, i, p);
            if (NativeArray.class.isAssignableFrom(p)) {
                if (!(a instanceof DeviceBuffer b)) {
                    throw new IllegalArgumentException(where + " needs a DeviceBuffer, got " + describe(a));
                }
                if (b.device() != device) {
                    throw new IllegalArgumentException(where + ": buffer belongs to " + b.device().id() + ", not " + device.id());
                }
                if (p != NativeArray.class && NativeArray.classOf(b.dtype()) != p) {
                    throw new IllegalArgumentException(where + " needs a " + p.getSimpleName() + " buffer, got " + b.dtype());
                }
                out[i] = b;
            } else if (p.isPrimitive()) {
                if (!(a instanceof Number || a instanceof Boolean)) {
                    throw new IllegalArgumentException(where + " needs a number, got " + describe(a));
                }
                out[i] = convert(p, a, where);
                Object bound = kernel.constants().get(i);
                if (bound != null && !bound.equals(out[i])) {
                    throw new IllegalArgumentException(where + " is bound to " + bound + " by the kernel ref, got " + out[i]);
                }
            } else {
                throw new IllegalArgumentException(where + ": kernels take arrays and primitives only");
            }
        }
        return out;
    }

    private static Object convert(Class<?> p, Object a, Argument where) {
        if (p == boolean.class) {
            if (a instanceof Boolean) {
                return a;
            }
            throw new IllegalArgumentException(where + " needs a boolean, got " + describe(a));
        }
        if (a instanceof Boolean) {
            throw new IllegalArgumentException(where + " needs a number, got a boolean");
        }
        Number n = (Number) a;
        boolean integral = n instanceof Integer || n instanceof Long || n instanceof Short || n instanceof Byte;
        if (p == int.class) {
            if (!integral || n.longValue() != n.intValue()) {
                throw new IllegalArgumentException(where + " needs an int, got " + describe(a));
            }
            return n.intValue();
        }
        if (p == long.class) {
            if (!integral) {
                throw new IllegalArgumentException(where + " needs a long, got " + describe(a));
            }
            return n.longValue();
        }
        if (p == float.class) {
            return n.floatValue();
        }
        if (p == double.class) {
            return n.doubleValue();
        }
        throw new IllegalArgumentException(where + ": unsupported scalar type");
    }

    /**
     * Which argument a message is about. Its text is built only when one is thrown: a launch checks every argument, and a
     * kernel ref's name (with its bound parameters' names) is not free.
     */
    private record Argument(KernelRef kernel, int index, Class<?> type) {
        @Override
        public String toString() {
            return kernel + " argument " + index + " (" + type.getSimpleName() + ")";
        }
    }

    private static String describe(Object a) {
        return a == null ? "null" : a.getClass().getSimpleName() + " " + a;
    }
}
