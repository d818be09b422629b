package io.lightllm.tornado.cuda;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * Small kernels that exercise each part of the CUDA path (grid-stride loops in one and two
 * dimensions, work-groups with local memory and barriers, dtype specialisation, serial kernels,
 * per-step values read from device memory) for {@link CudaSelfTest} and {@link CudaBench}.
 */
public final class DiagnosticKernels {
    public static final KernelRef SAXPY = KernelRef.of(DiagnosticKernels.class, "saxpy");
    public static final KernelRef SCALE_ROWS = KernelRef.of(DiagnosticKernels.class, "scaleRows");
    public static final KernelRef ROW_SUM = KernelRef.of(DiagnosticKernels.class, "rowSum");
    public static final KernelRef WIDEN = KernelRef.of(DiagnosticKernels.class, "widen");
    public static final KernelRef NEXT_STEP = KernelRef.of(DiagnosticKernels.class, "nextStep");
    public static final KernelRef ADD_STEP = KernelRef.of(DiagnosticKernels.class, "addStep");
    public static final KernelRef MATMUL = KernelRef.of(DiagnosticKernels.class, "matmul");
    public static final KernelRef EMPTY = KernelRef.of(DiagnosticKernels.class, "empty");

    /** Capacity of rowSum's local array: the largest work-group it supports. */
    public static final int ROW_SUM_MAX_LOCAL = 1024;

    private DiagnosticKernels() {
    }

    /** y = a * x + y over n elements (1D grid-stride loop). */
    public static void saxpy(FloatArray y, FloatArray x, float a, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            y.set(i, a * x.get(i) + y.get(i));
        }
    }

    /** out[r][c] = in[r][c] * (r + 1) + c (2D grid-stride loops). */
    public static void scaleRows(FloatArray out, FloatArray in, int rows, int cols) {
        for (@Parallel int r = 0; r < rows; r++) {
            for (@Parallel int c = 0; c < cols; c++) {
                out.set(r * cols + c, in.get(r * cols + c) * (r + 1) + c);
            }
        }
    }

    /** out[row] = sum of in[row][0..n) with one work-group per row: local memory and a tree of barriers. */
    public static void rowSum(KernelContext ctx, FloatArray out, FloatArray in, int n) {
        float[] partial = ctx.allocateFloatLocalArray(ROW_SUM_MAX_LOCAL);
        int row = ctx.groupIdx;
        int lid = ctx.localIdx;
        float s = 0f;
        for (int i = lid; i < n; i += ctx.localGroupSizeX) {
            s += in.get(row * n + i);
        }
        partial[lid] = s;
        for (int stride = ctx.localGroupSizeX / 2; stride > 0; stride >>= 1) {
            ctx.localBarrier();
            if (lid < stride) {
                partial[lid] += partial[lid + stride];
            }
        }
        if (lid == 0) {
            out.set(row, partial[0]);
        }
    }

    /** out[i] = in[i] as float, for any input dtype (the compiler specialises per buffer dtype). */
    public static void widen(FloatArray out, NativeArray in, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, in.getFloat(i));
        }
    }

    /** step[0] += 1: a serial kernel, the per-step counter of the graph check. */
    public static void nextStep(IntArray step) {
        step.set(0, step.get(0) + 1);
    }

    /** x[i] += step[0]: the per-step value comes from device memory, as captured graphs need. */
    public static void addStep(FloatArray x, IntArray step, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) + step.get(0));
        }
    }

    /** out[m][n] = sum_k a[m][k] * w[n][k]: the portable GEMM that the cuBLAS override replaces in the self-test. */
    public static void matmul(FloatArray out, FloatArray a, NativeArray w, int m, int n, int k) {
        for (@Parallel int row = 0; row < m; row++) {
            for (@Parallel int col = 0; col < n; col++) {
                float acc = 0f;
                for (int i = 0; i < k; i++) {
                    acc += a.get(row * k + i) * w.getFloat(col * k + i);
                }
                out.set(row * n + col, acc);
            }
        }
    }

    /** Does nothing: launch overhead. */
    public static void empty() {
    }
}
