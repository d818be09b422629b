package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.KernelRef;
import org.junit.jupiter.api.Test;

class KernelCompilerTest {

    // ---- kernels the compiler must accept -------------------------------------------------

    public static void saxpy(FloatArray y, FloatArray x, float a, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            y.set(i, a * x.get(i) + y.get(i));
        }
    }

    static float clampHelper(float v, float lo, float hi) {
        return v < lo ? lo : v > hi ? hi : v;
    }

    public static void mixed(FloatArray out, HalfArray h, BFloat16Array b, IntArray ids, long big, boolean flag, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float v = h.get(ids.get(i)) + b.get(i);
            v = clampHelper(v, -1f, 1f);
            int bits = Float.floatToRawIntBits(v) >>> 3;
            long l = big * i;
            switch (i % 3) {
                case 0 -> v += 1;
                case 1 -> v -= (float) l;
                default -> v *= bits;
            }
            out.set(i, flag ? KMath.exp(v) : Math.max(v, 0f));
        }
    }

    public static void generic(FloatArray out, NativeArray w, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, w.getFloat(i) * 2f);
        }
    }

    public static void reduce(KernelContext ctx, FloatArray out, FloatArray in, int n) {
        float[] s = ctx.allocateFloatLocalArray(128);
        float acc = 0;
        for (int i = ctx.localIdx; i < n; i += ctx.localGroupSizeX) {
            acc += in.get(ctx.groupIdx * n + i);
        }
        s[ctx.localIdx] = acc;
        for (int st = ctx.localGroupSizeX / 2; st > 0; st >>= 1) {
            ctx.localBarrier();
            if (ctx.localIdx < st) {
                s[ctx.localIdx] += s[ctx.localIdx + st];
            }
        }
        if (ctx.localIdx == 0) {
            out.set(ctx.groupIdx, s[0]);
        }
    }

    // ---- kernels the compiler must refuse ---------------------------------------------------

    public static void allocates(FloatArray out, int n) {
        StringBuilder sb = new StringBuilder();
        out.set(0, sb.length());
    }

    public static void usesSize(FloatArray out) {
        for (@Parallel int i = 0; i < out.getSize(); i++) {
            out.set(i, 0);
        }
    }

    static int fact(int n) {
        return n <= 1 ? 1 : n * fact(n - 1);
    }

    public static void recurses(IntArray out, int n) {
        out.set(0, fact(n));
    }

    public static void throwsException(FloatArray out, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("negative");
        }
        out.set(0, n);
    }

    public static void callsLibrary(FloatArray out, int n) {
        out.set(0, (float) Math.random());
    }

    @Test
    void emitsOpenCLAndCudaForSupportedJava() {
        for (String k : new String[] {"saxpy", "mixed", "reduce"}) {
            KernelSource cl = KernelCompiler.compile(KernelRef.of(getClass(), k), Dialect.OPENCL, null);
            assertTrue(cl.source().contains("__kernel void " + cl.entryName() + "("), cl.source());
            KernelSource cu = KernelCompiler.compile(KernelRef.of(getClass(), k), Dialect.CUDA, null);
            CudaCheck.assertCompiles(cu.source(), k);
        }
    }

    @Test
    void parallelLoopsBecomeGridStrideLoops() {
        String src = KernelCompiler.compile(KernelRef.of(getClass(), "saxpy"), Dialect.OPENCL, null).source();
        assertTrue(src.contains("get_global_id(0)"), src);
        assertTrue(src.contains("get_global_size(0)"), src);
    }

    @Test
    void genericArraysAreSpecialisedPerDtype() {
        KernelRef k = KernelRef.of(getClass(), "generic");
        KernelSource bf = KernelCompiler.compile(k, Dialect.OPENCL, new DType[] {DType.F32, DType.BF16, null});
        KernelSource f16 = KernelCompiler.compile(k, Dialect.OPENCL, new DType[] {DType.F32, DType.F16, null});
        assertEquals("KernelCompilerTest_generic__bf16", bf.entryName());
        assertTrue(bf.source().contains("lj_bf16_to_f32(p1["), bf.source());
        assertTrue(f16.source().contains("vload_half("), f16.source());
    }

    @Test
    void unsupportedJavaIsRefusedNamingKernelLineAndConstruct() {
        assertRefused("allocates", "object allocation (new)");
        assertRefused("usesSize", "getSize() is not available in kernels");
        assertRefused("recurses", "recursion");
        assertRefused("throwsException", "object allocation (new)");
        assertRefused("callsLibrary", "java.lang.Math.random");
    }

    private void assertRefused(String kernel, String construct) {
        KernelCompileException e = assertThrows(KernelCompileException.class,
                () -> KernelCompiler.compile(KernelRef.of(getClass(), kernel), Dialect.OPENCL, null));
        String m = e.getMessage();
        assertTrue(m.contains("kernel KernelCompilerTest." + kernel), m);
        assertTrue(m.contains(construct), m);
        assertTrue(m.matches("(?s).*KernelCompilerTest\\.java:\\d+\\).*"), "names the source line: " + m);
    }
}
