package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.compiler.KernelSource;
import io.lightllm.tornado.runtime.KernelRef;
import org.junit.jupiter.api.Test;

/**
 * The CUDA C of every kernel this backend launches itself compiles to PTX for sm_90 with nvcc,
 * the stand-in for NVRTC on machines without a GPU, for each dtype it is launched with.
 */
class CudaKernelSourceTest {

    private static String assertCompiles(KernelRef kernel, DType... argDtypes) {
        KernelSource src = KernelCompiler.compile(kernel, Dialect.CUDA, argDtypes.length == 0 ? null : argDtypes);
        String ptx = CudaCheck.assertCompiles(src.source(), src.entryName());
        assertTrue(ptx.contains(".entry " + src.entryName() + "("), "PTX declares the entry " + src.entryName() + ":\n" + ptx);
        return ptx;
    }

    @Test
    void castKernelCompilesForBothSixteenBitTypes() {
        String bf16 = assertCompiles(CastKernels.NARROW_FROM_F32, DType.BF16, DType.F32, null);
        String f16 = assertCompiles(CastKernels.NARROW_FROM_F32, DType.F16, DType.F32, null);
        // f16 rounding is the hardware conversion; bf16 is integer arithmetic in the prelude
        assertTrue(f16.contains("cvt.rn.f16.f32"), f16);
        assertTrue(!bf16.contains("cvt.rn.f16.f32"), bf16);
    }

    /**
     * The innermost @Parallel loop runs on x, where a warp's consecutive threads are (Grid.reversed launches the
     * grid to match): the rotary kernel's loops over tokens, heads and pairs take z, y and x, in that order.
     */
    @Test
    void theInnermostParallelLoopRunsOnX() {
        String src = KernelCompiler.compile(io.lightllm.kernels.Rotary.ROTARY, Dialect.CUDA, null).source();
        int z = src.indexOf("blockIdx.z * blockDim.z"), y = src.indexOf("blockIdx.y * blockDim.y"), x = src.indexOf("blockIdx.x * blockDim.x");
        assertTrue(z >= 0 && z < y && y < x, "loop starts in the order z, y, x:\n" + src);
        String oneLoop = KernelCompiler.compile(DiagnosticKernels.SAXPY, Dialect.CUDA, new DType[] {DType.F32, DType.F32, null, null}).source();
        assertTrue(oneLoop.contains("blockIdx.x * blockDim.x") && !oneLoop.contains("blockIdx.y"), "one loop: x alone");
    }

    @Test
    void diagnosticKernelsCompile() {
        assertCompiles(DiagnosticKernels.SAXPY, DType.F32, DType.F32, null, null);
        assertCompiles(DiagnosticKernels.SCALE_ROWS, DType.F32, DType.F32, null, null);
        assertCompiles(DiagnosticKernels.ROW_SUM, DType.F32, DType.F32, null);
        for (DType t : new DType[] {DType.F32, DType.F16, DType.BF16, DType.I8, DType.I32}) {
            assertCompiles(DiagnosticKernels.WIDEN, DType.F32, t, null);
        }
        assertCompiles(DiagnosticKernels.NEXT_STEP, DType.I32);
        assertCompiles(DiagnosticKernels.ADD_STEP, DType.F32, DType.I32, null);
        assertCompiles(DiagnosticKernels.MATMUL, DType.F32, DType.F32, DType.BF16, null, null, null);
        assertCompiles(DiagnosticKernels.EMPTY);
    }
}
