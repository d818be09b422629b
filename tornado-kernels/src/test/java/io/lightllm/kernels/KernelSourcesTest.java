package io.lightllm.kernels;

import io.lightllm.testing.CudaCheck;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.compiler.KernelSource;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every kernel of Matmul and Attention, for every dtype its NativeArray parameters take,
 * compiles to CUDA C that nvcc accepts (OpenCL C is built by the OpenCL tests on PoCL).
 */
class KernelSourcesTest {

    @Test
    void everyKernelCompilesToPtx() {
        for (DType weights : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            add(Matmul.MATMUL_TILED, weights);
            add(Matmul.MATMUL_GEMV, weights);
        }
        // the folded batch-1 GEMVs (plain NativeArray parameters: weights and the norm's weight, both taken as bf16)
        for (KernelRef k : new KernelRef[] {FoldedGemv.FLOAT_NORMED, FoldedGemv.FLOAT_ADDING, FoldedGemv.GATED_NORMED, FoldedGemv.INT8_NORMED,
                FoldedGemv.INT8_ADDING, FoldedGemv.INT4_NORMED, FoldedGemv.INT4_ADDING}) {
            add(k, DType.BF16);
        }
        add(Matmul.MATMUL_INT8_TILED, null);
        add(Matmul.MATMUL_INT8_GEMV, null);
        add(Matmul.MATMUL_INT8_GEMV_Q8, null);
        add(Matmul.MATMUL_INT8_GEMV_GATED_Q8, null);
        add(Matmul.MATMUL_TC_BF16, DType.BF16);
        add(Matmul.MATMUL_TC_BF16_WIDE, DType.BF16);
        add(Matmul.MATMUL_TC_INT8_WIDE, DType.F32);
        add(Matmul.MATMUL_TC_INT8, DType.F32);
        add(Matmul.MATMUL_TC_INT8, DType.BF16);
        for (DType pool : new DType[] {DType.F32, DType.F16, DType.I8}) {
            add(Attention.DECODE_PARTIAL, pool);
            add(Attention.PREFILL, pool);
        }
        add(Attention.DECODE_MERGE, null);
        add(DequantizedGemm.INT8_ROWS, DType.BF16);
        add(DequantizedGemm.BLOCKS, DType.BF16);
        add(DequantizedGemm.INT4_BLOCKS, DType.BF16);
        add(QuantMatmul.GEMV_INT4_Q8, null);
        add(QuantMatmul.GEMV_INT4_GATED_Q8, null);
        for (KernelRef k : new KernelRef[] {Attention.decodeKernel(DType.F16, 64, 1), Attention.decodeKernel(DType.F16, 128, 4), Attention.decodeKernel(DType.F16, 128, 8), Attention.PREFILL_TC_64, Attention.PREFILL_TC_128,
                Attention.PREFILL_TC_WIDE_64, Attention.PREFILL_TC_WIDE_128}) {
            add(k, DType.F16);
        }
        // the GEMM at k 64 a step and the experts' GEMM (both operands bf16: every NativeArray bound to it)
        add(Matmul.MATMUL_TC_BF16_DEEP, DType.BF16);
        add(Moe.EXPERTS_TC_BF16, DType.BF16);
        for (KernelRef k : new KernelRef[] {Attention.decodeKernel(DType.I8, 64, 1), Attention.decodeKernel(DType.I8, 128, 4), Attention.decodeKernel(DType.I8, 128, 8), Attention.PREFILL_TC_64, Attention.PREFILL_TC_128}) {
            add(k, DType.I8);
        }
        for (KernelSource source : sources) {
            CudaCheck.assertCompiles(source.source(), source.entryName());
        }
    }

    /** The portable and the tensor-core decode and prefill kernels over an fp8 e4m3 pool. */
    @Test
    void fp8PoolKernelsCompileToPtx() {
        add(Attention.DECODE_PARTIAL, DType.F8_E4M3);
        add(Attention.PREFILL, DType.F8_E4M3);
        for (KernelRef k : new KernelRef[] {Attention.decodeKernel(DType.F8_E4M3, 64, 4), Attention.decodeKernel(DType.F8_E4M3, 128, 1), Attention.PREFILL_TC_64, Attention.PREFILL_TC_128}) {
            add(k, DType.F8_E4M3);
        }
        for (KernelSource source : sources) {
            CudaCheck.assertCompiles(source.source(), source.entryName());
        }
    }

    /**
     * The one-warp decode kernel over int8 codes under launch bounds for 12 groups a compute unit: ptxas keeps its registers
     * to what lets 12 fit (a Hopper SM's four schedulers hold 3 warps each up to 170 registers, 2 from 176: nvcc here gives
     * it 169 unbounded), without spilling; the bound is in the CUDA C and the kernel's name.
     */
    @Test
    void launchBoundsCapTheDecodeKernelsRegisters() {
        KernelRef bounded = Attention.decodeKernel(DType.I8, 128, 1).withLaunchBounds(32, 12);
        add(bounded, DType.I8);
        KernelSource source = sources.getFirst();
        org.junit.jupiter.api.Assertions.assertTrue(source.source().contains("__launch_bounds__(32, 12)"), "the bound in the CUDA C");
        org.junit.jupiter.api.Assertions.assertTrue(source.entryName().endsWith("__lb32x12"), source.entryName());
        String report = CudaCheck.assertAssembles(source.source(), bounded.name());
        java.util.regex.Matcher used = java.util.regex.Pattern.compile("Used (\\d+) registers").matcher(report);
        org.junit.jupiter.api.Assertions.assertTrue(used.find(), report);
        // registers are given a warp in steps of 8 a thread; 12 warps an SM are 3 on each scheduler's 16,384
        int allocated = (Integer.parseInt(used.group(1)) + 7) / 8 * 8;
        org.junit.jupiter.api.Assertions.assertTrue(3 * 32 * allocated <= 16384, "registers for 12 warps: " + report);
        org.junit.jupiter.api.Assertions.assertTrue(report.contains(" 0 bytes spill stores"), "no spills: " + report);
    }

    private final List<KernelSource> sources = new ArrayList<>();

    /** Compiles {@code kernel} with every plain NativeArray parameter bound to {@code dtype}. */
    private void add(KernelRef kernel, DType dtype) {
        Class<?>[] params = kernel.parameterTypes();
        int first = kernel.usesContext() ? 1 : 0;
        DType[] args = new DType[params.length - first];
        for (int i = first; i < params.length; i++) {
            if (params[i] == NativeArray.class) {
                args[i - first] = dtype;
            } else if (NativeArray.class.isAssignableFrom(params[i])) {
                args[i - first] = NativeArray.dtypeOf(params[i]);
            }
        }
        sources.add(KernelCompiler.compile(kernel, Dialect.CUDA, args));
    }
}
