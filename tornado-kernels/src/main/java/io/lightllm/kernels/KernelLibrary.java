package io.lightllm.kernels;

import io.lightllm.kernels.jvm.JvmOverrides;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.cuda.CudaBlas;
import io.lightllm.tornado.cuda.CudaDevice;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.KernelOverride;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;

/**
 * Entry point of the kernel library for code that sets up a device: installs the backend's
 * faster implementations of portable kernels (overrides).
 */
public final class KernelLibrary {
    private KernelLibrary() {
    }

    /**
     * Registers this backend's overrides on {@code device}: the Vector API matmuls on the JVM.
     * Other backends run the portable kernels for now.
     */
    public static void installOverrides(Device device) {
        if (device instanceof JvmDevice jvm) {
            JvmOverrides.install(jvm);
        } else if (device instanceof CudaDevice && CUBLAS && CudaBlas.unavailableReason().isEmpty()) {
            device.override(Matmul.MATMUL_TILED, cublasOrPortable(Matmul.MATMUL_TILED));
            device.override(Matmul.MATMUL_GEMV, cublasOrPortable(Matmul.MATMUL_GEMV));
            // cuBLAS (on wgmma) beats the Java tensor-core GEMM (on mma.sync): docs/benchmarks.md
            device.override(Matmul.MATMUL_TC_BF16, cublasOrPortable(Matmul.MATMUL_TC_BF16));
            device.override(Matmul.MATMUL_TC_F16, cublasOrPortable(Matmul.MATMUL_TC_F16));
        }
    }

    /**
     * cuBLAS for 16-bit weights: activations are rounded to the weights' type (as bf16/f16
     * serving does) and products accumulate in f32. f32 weights stay on the exact Java kernel, and
     * so do matmuls of fewer rows than the tuning {@code matmul.vendor_min_m}: at m = 1 the Java GEMV
     * reads the f32 activations as they are, where cuBLAS needs a cast kernel first and runs its
     * GEMV slower (8.4 against 10.8 µs at 1 x 4096 x 4096 bf16 on the H200, docs/benchmarks.md).
     */
    private static KernelOverride cublasOrPortable(KernelRef portable) {
        // matmul arguments: out, a, w, bias, hasBias, m, n, k
        KernelOverride blas = CudaBlas.gemmOverride(0, 1, 2, 5, 6, 7);
        return (d, grid, args) -> {
            if (((DeviceBuffer) args[2]).dtype() == DType.F32 || (Integer) args[5] < Tuning.get(d, "matmul.vendor_min_m", 1)) {
                d.launchPortable(portable, grid, args);
                return;
            }
            blas.launch(d, grid, args);
            if ((Boolean) args[4]) {
                Elementwise.launchAddBias(d, (DeviceBuffer) args[0], (DeviceBuffer) args[3], (Integer) args[5], (Integer) args[6]);
            }
        };
    }

    /** {@code -Dlightllm.vendor.gemm=false} keeps the portable matmul on CUDA (exactness checks against fp32 references). */
    private static final boolean CUBLAS = Boolean.parseBoolean(System.getProperty("lightllm.vendor.gemm", "true"));
}
