package io.lightllm.tornado.cuda;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Conversion kernels the CUDA backend launches itself, written like every other kernel. cuBLAS
 * multiplies two matrices of one type, so f32 activations are narrowed to the weights' 16-bit
 * type before a GEMM.
 */
public final class CastKernels {
    public static final KernelRef NARROW_FROM_F32 = KernelRef.of(CastKernels.class, "narrowFromF32");

    private CastKernels() {
    }

    /** {@code out[i] = in[i]} rounded to out's type (f16 or bf16: round to nearest even). */
    public static void narrowFromF32(NativeArray out, FloatArray in, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.setFloat(i, in.get(i));
        }
    }
}
