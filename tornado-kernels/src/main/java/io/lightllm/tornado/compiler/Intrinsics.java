package io.lightllm.tornado.compiler;

/** Which classes are the kernel API (mapped by the compiler) and which are user code (inlined). */
final class Intrinsics {
    private Intrinsics() {
    }

    static boolean isUserCode(String internalName) {
        return !internalName.startsWith("java/") && !internalName.startsWith("jdk/")
                && !internalName.startsWith("io/lightllm/tornado/api/");
    }
}
