package io.lightllm.tornado.runtime;

/**
 * A backend's faster implementation of a portable kernel (a Vector API GEMM on the JVM, a
 * vendor GEMM on CUDA). It receives the same arguments as the Java kernel and must compute
 * the same result; each one is tested against the portable kernel.
 */
@FunctionalInterface
public interface KernelOverride {
    void launch(Device device, Grid grid, Object[] args);
}
