package io.lightllm.tornado.compiler;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeModel;
import java.lang.classfile.MethodModel;
import java.lang.reflect.Method;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Reads class files of kernel classes (once each) and finds methods in them. */
public final class Bytecode {
    private static final Map<String, ClassModel> CLASSES = new ConcurrentHashMap<>();

    private Bytecode() {
    }

    /** The parsed class file of the class with this internal name ({@code a/b/C}). */
    public static ClassModel classModel(ClassLoader loader, String internalName) {
        return CLASSES.computeIfAbsent(internalName, n -> {
            ClassLoader l = loader != null ? loader : ClassLoader.getSystemClassLoader();
            try (InputStream in = l.getResourceAsStream(n + ".class")) {
                if (in == null) {
                    throw new KernelCompileException("class file of " + n.replace('/', '.') + " not found");
                }
                return ClassFile.of().parse(in.readAllBytes());
            } catch (IOException e) {
                throw new KernelCompileException("cannot read class file of " + n + ": " + e.getMessage());
            }
        });
    }

    public static MethodModel methodModel(Method m) {
        ClassModel cm = classModel(m.getDeclaringClass().getClassLoader(), m.getDeclaringClass().getName().replace('.', '/'));
        String desc = descriptor(m);
        return find(cm, m.getName(), desc);
    }

    public static MethodModel find(ClassModel cm, String name, String desc) {
        for (MethodModel mm : cm.methods()) {
            if (mm.methodName().equalsString(name) && mm.methodType().equalsString(desc)) {
                return mm;
            }
        }
        throw new KernelCompileException("method " + name + desc + " not found in " + cm.thisClass().asInternalName());
    }

    public static CodeModel code(MethodModel mm) {
        return mm.code().orElseThrow(() -> new KernelCompileException("method " + mm.methodName() + " has no code (abstract or native)"));
    }

    public static String descriptor(Method m) {
        StringBuilder sb = new StringBuilder("(");
        for (Class<?> p : m.getParameterTypes()) {
            sb.append(p.descriptorString());
        }
        return sb.append(')').append(m.getReturnType().descriptorString()).toString();
    }
}
