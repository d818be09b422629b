/**
 * The CUDA backend: NVIDIA GPUs through the driver API (libcuda.so.1), NVRTC (libnvrtc.so.13)
 * and cuBLAS (libcublas.so.13), all over Java's FFM API.
 *
 * <p>Device ids are {@code cuda:N}. A kernel launch compiles the Java kernel to CUDA C
 * ({@code KernelCompiler}, dialect CUDA), NVRTC compiles that to PTX for the device's compute
 * capability, and the driver loads the PTX; PTX is cached on disk under
 * {@code ${lightllm.cache.dir:-~/.cache/lightllm-java}/cuda}. Launches, copies and host
 * transfers are queued in order on one stream per device; {@code read} and
 * {@code synchronize} wait. {@link io.lightllm.tornado.cuda.CudaDevice#capture} records launches
 * into a CUDA graph; {@link io.lightllm.tornado.cuda.CudaBlas#gemm} is cuBLAS's GEMM.
 *
 * <p>System properties:
 * <ul>
 *   <li>{@code lightllm.cuda.driver}, {@code lightllm.cuda.nvrtc}, {@code lightllm.cuda.cublas},
 *       {@code lightllm.cuda.cublasLt}: exact library files, when the loader path and the usual
 *       toolkit directories do not have them;</li>
 *   <li>{@code lightllm.cuda.nvrtc.options}: extra NVRTC options, e.g. {@code --use_fast_math}
 *       or {@code --fmad=false} (NVRTC contracts a*b+c into fma by default);</li>
 *   <li>{@code lightllm.cuda.sync=true}: wait after every launch so that a faulting kernel is
 *       named (debugging);</li>
 *   <li>{@code lightllm.cache.dir}: root of the PTX cache.</li>
 * </ul>
 *
 * <p>Check a GPU machine with {@link io.lightllm.tornado.cuda.CudaSelfTest} and measure it
 * with {@link io.lightllm.tornado.cuda.CudaBench}.
 */
package io.lightllm.tornado.cuda;
