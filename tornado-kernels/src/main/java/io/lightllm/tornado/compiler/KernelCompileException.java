package io.lightllm.tornado.compiler;

/**
 * A kernel uses Java that no device can run (objects, allocation, exceptions, recursion,
 * calls that are not intrinsics or static helpers). The message names the kernel, the
 * source line and the construct.
 */
public class KernelCompileException extends RuntimeException {
    public KernelCompileException(String message) {
        super(message);
    }
}
