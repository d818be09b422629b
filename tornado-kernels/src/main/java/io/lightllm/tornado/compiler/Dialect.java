package io.lightllm.tornado.compiler;

/** The C-family languages the compiler emits. */
public enum Dialect {
    /** OpenCL C 1.2, built by the OpenCL driver. */
    OPENCL,
    /** CUDA C++ (extern "C" kernels), compiled to PTX by NVRTC, or nvcc in tests. */
    CUDA
}
