package io.lightllm.tornado.compiler;

import io.lightllm.tornado.api.DType;
import java.util.List;

/**
 * The typed intermediate form between bytecode and C: expressions are trees, statements a
 * flat list with labels and gotos (bytecode control flow is not always structured).
 */
final class Ir {
    private Ir() {
    }

    /** Scalar types of values; Java's boolean, byte, short and char travel as INT like in the JVM. */
    enum Type {
        INT, LONG, FLOAT, DOUBLE;

        static Type of(java.lang.classfile.TypeKind k) {
            return switch (k) {
                case INT, BOOLEAN, BYTE, SHORT, CHAR -> INT;
                case LONG -> LONG;
                case FLOAT -> FLOAT;
                case DOUBLE -> DOUBLE;
                default -> throw new IllegalArgumentException("not a scalar: " + k);
            };
        }

        static Type of(Class<?> c) {
            if (c == int.class || c == boolean.class || c == byte.class || c == short.class || c == char.class) {
                return INT;
            }
            if (c == long.class) {
                return LONG;
            }
            if (c == float.class) {
                return FLOAT;
            }
            if (c == double.class) {
                return DOUBLE;
            }
            throw new IllegalArgumentException("not a scalar: " + c);
        }

        boolean wide() {
            return this == LONG || this == DOUBLE;
        }
    }

    /** Where an array lives. */
    enum Space { GLOBAL, LOCAL, PRIVATE }

    /**
     * An array the kernel can index: a global parameter (element type from its dtype), a
     * local-memory array or a private array (element type from the Java array).
     */
    record Array(String name, Space space, DType dtype, Type elementType, int size) {
    }

    /** What can sit on the operand stack or in a local: a value, an array, or the kernel context. */
    sealed interface Value permits Expr, ArrayValue, ContextValue {
    }

    record ArrayValue(Array array) implements Value {
    }

    record ContextValue() implements Value {
    }

    sealed interface Expr extends Value {
        Type type();
    }

    record Const(Object value, Type type) implements Expr {
    }

    record Var(String name, Type type) implements Expr {
    }

    /** Binary operator in C spelling; shifts and unsigned shifts are normalised by the emitter. */
    record Binary(String op, Expr left, Expr right, Type type) implements Expr {
    }

    record Unary(String op, Expr operand, Type type) implements Expr {
    }

    /** A comparison giving 1 or 0 (type INT). */
    record Compare(String op, Expr left, Expr right) implements Expr {
        public Type type() {
            return Type.INT;
        }
    }

    /**
     * Java's three-way compares (lcmp, fcmpl, fcmpg, dcmpl, dcmpg): -1, 0 or 1; with NaN,
     * {@code nanResult}. Usually consumed at once by a branch, which turns it into a Compare.
     */
    record Compare3(Expr left, Expr right, int nanResult) implements Expr {
        public Type type() {
            return Type.INT;
        }
    }

    /** A numeric conversion; {@code narrow} is "byte", "short" or "char" for i2b/i2s/i2c. */
    record Convert(Expr operand, Type type, String narrow) implements Expr {
    }

    /** A built-in: math, ids, conversions. The emitter spells it per dialect. */
    record Call(String intrinsic, List<Expr> args, Type type) implements Expr {
    }

    /** Reads element {@code index}; with {@code asFloat}, widened to float whatever the dtype. */
    record Load(Array array, Expr index, Type type, boolean raw) implements Expr {
    }

    sealed interface Stmt permits Assign, Store, Label, Goto, IfGoto, Switch, Effect, Return, ZeroArray, ArrayIntrinsic {
    }

    record Assign(Var target, Expr value) implements Stmt {
    }

    record Store(Array array, Expr index, Expr value) implements Stmt {
    }

    record Label(String name) implements Stmt {
    }

    record Goto(String label) implements Stmt {
    }

    record IfGoto(Expr condition, String label) implements Stmt {
    }

    record Switch(Expr key, int[] keys, String[] labels, String defaultLabel) implements Stmt {
    }

    /** A call kept for its effect (barrier, atomic whose result is unused). */
    record Effect(Call call) implements Stmt {
    }

    record Return() implements Stmt {
    }

    /**
     * A built-in that works on whole arrays (vector loads, matrix fragments, asynchronous copies):
     * each operand is an {@link Array} or an {@link Expr}, in the order of the Java call.
     */
    record ArrayIntrinsic(String name, List<Object> operands) implements Stmt {
    }

    /** Java zeroes new arrays; device memory is not, so a private array is cleared where it is created. */
    record ZeroArray(Array array) implements Stmt {
    }
}
