package io.lightllm.kernels;

import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.GrowingScratch;
import io.lightllm.tornado.runtime.KernelRef;
import io.lightllm.tornado.runtime.Tuning;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Quantised weights (int8 rows, int4 and GGUF blocks) times many rows through the device's vendor
 * GEMM: the matrix is dequantised to bf16 into a scratch buffer, then multiplied as a bf16 weight
 * (cuBLAS on CUDA). vLLM's AWQ layer does the same from 256 tokens on: at prefill sizes the GEMM is
 * compute-bound and the extra pass over the weights costs little, where the tensor-core int8 GEMM
 * prefilled at 18 % and the scalar int4 kernel at a few % of bf16's speed on the H200. Used where the
 * tuning {@code matmul.dequant_min_m} (0: never) is at most m and the device overrides the bf16
 * matmul (a vendor GEMM), never under {@link BatchInvariance}. Each weight is rounded to bf16 once
 * (relative 2^-9, below int8's and int4's own steps).
 */
public final class DequantizedGemm {
    public static final KernelRef INT8_ROWS = KernelRef.of(DequantizedGemm.class, "int8Rows");
    public static final KernelRef BLOCKS = KernelRef.of(DequantizedGemm.class, "blocks");
    public static final KernelRef INT4_BLOCKS = KernelRef.of(DequantizedGemm.class, "int4Blocks");

    /** The dequantised matrix of each device. */
    private static final Map<Device, GrowingScratch> SCRATCH = new ConcurrentHashMap<>();

    private DequantizedGemm() {
    }

    /** out[r, c] = w[r, c] * scales[r] (int8 rows of k codes, k a multiple of 8), rounded to out's type; 8 elements a work-item. */
    public static void int8Rows(NativeArray out, ByteArray w, FloatArray scales, int n, int k) {
        float[] x = new float[8];
        for (@Parallel int run = 0; run < n * (k / 8); run++) {
            int i = 8 * run;
            float s = scales.get(i / k);
            w.getFloats(i, x, 0, 8);
            for (int j = 0; j < 8; j++) {
                x[j] = x[j] * s;
            }
            out.setFloats(i, x, 0, 8);
        }
    }

    /**
     * out[r, c] = element c of w's row r of {@code format} blocks ({@link QuantBlocks}), rounded to out's
     * type; a run of {@link QuantBlocks#UNIT} elements a work-item, its scale and offset decoded once.
     */
    public static void blocks(NativeArray out, ByteArray w, int format, int n, int k) {
        for (@Parallel int unit = 0; unit < n * (k / QuantBlocks.UNIT); unit++) {
            int units = k / QuantBlocks.UNIT;
            int row = unit / units;
            int c0 = (unit % units) * QuantBlocks.UNIT;
            int rowAt = row * QuantBlocks.rowBlocks(format, k) * QuantBlocks.blockBytes(format);
            float s = QuantBlocks.scale(w, format, rowAt, k, c0);
            float o = QuantBlocks.offset(w, format, rowAt, k, c0);
            for (int j = 0; j < QuantBlocks.UNIT; j++) {
                out.setFloat(row * k + c0 + j, s * QuantBlocks.code(w, format, rowAt, k, c0 + j) - o);
            }
        }
    }

    /**
     * {@link #blocks} for {@link QuantBlocks#INT4} and {@link QuantBlocks#INT4_ZP} rows whose length is a
     * multiple of 128 (no partial group): a work-item per 8 code bytes of a group, read as two words
     * (elements 8p..8p+7 in the low nibbles, 64+8p.. in the high ones), written as two 8-element stores,
     * so a warp writes 1 KB of contiguous output. The generic kernel loads a byte per nibble and stores
     * 2 bytes at a time 32 bytes apart: the int4 8B model decoded 64 rows in 86 ms a step on the H100
     * (bf16: 9 ms) behind it. The same arithmetic as {@link QuantBlocks#weight}.
     */
    public static void int4Blocks(NativeArray out, ByteArray w, int format, int n, int k) {
        int[] q = new int[2];
        int[] head = new int[1];
        float[] lo = new float[8];
        float[] hi = new float[8];
        for (@Parallel int item = 0; item < n * (k / 128) * 8; item++) {
            int block = item / 8;
            int part = item % 8;
            boolean zeroPoint = format == QuantBlocks.INT4_ZP;
            int groups = k / 128;
            int rowAt = block / groups * groups * QuantBlocks.blockBytes(format);
            int at = QuantBlocks.int4ScaleAt(format, rowAt, groups, block % groups);
            int codesAt = QuantBlocks.int4CodesAt(rowAt, block % groups) + 8 * part;
            w.getWords(codesAt, q, 0, 1);
            w.getWords(codesAt + 4, q, 1, 1);
            float scale = QuantBlocks.int4Word(w, at, head);
            float offset = zeroPoint ? QuantBlocks.int4Word(w, at + 4, head) : 0f;
            int centre = zeroPoint ? 0 : 8;
            for (int word = 0; word < 2; word++) {
                for (int j = 0; j < 4; j++) {
                    int bits = q[word] >>> (8 * j);
                    lo[4 * word + j] = scale * ((bits & 15) - centre) - offset;
                    hi[4 * word + j] = scale * (((bits >>> 4) & 15) - centre) - offset;
                }
            }
            // a row is k / 128 whole blocks, so block b's elements start at 128 b
            int e = block * 128 + 8 * part;
            out.setFloats(e, lo, 0, 8);
            out.setFloats(e + 64, hi, 0, 8);
        }
    }

    /** Whether a matmul of m rows over quantised weights of k columns goes this way on {@code device}. */
    public static boolean applies(Device device, int m, int k) {
        int min = Tuning.get(device, "matmul.dequant_min_m", 0);
        return min > 0 && m >= min && k % QuantBlocks.UNIT == 0 && !BatchInvariance.enabled() && device.hasOverride(Matmul.MATMUL_TILED);
    }

    /** out[m, n] = a · (w (int8) * scales)ᵀ + bias: the rows dequantised, then the vendor GEMM. */
    public static void launchInt8(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, DeviceBuffer scales, DeviceBuffer bias,
            int m, int n, int k) {
        DeviceBuffer weights = scratch(device, (long) n * k);
        device.launch(INT8_ROWS, Grid.of((long) n * (k / 8)), weights, w, scales, n, k);
        Matmul.launchMatmul(device, out, a, weights, bias, m, n, k);
    }

    /** out[m, n] = a · wᵀ + bias, w rows of {@code format} blocks: dequantised, then the vendor GEMM. */
    public static void launchBlocks(Device device, DeviceBuffer out, DeviceBuffer a, DeviceBuffer w, QuantFormat format, DeviceBuffer bias,
            int m, int n, int k) {
        DeviceBuffer weights = scratch(device, (long) n * k);
        if (QuantMatmul.isInt4(format.code()) && k % 128 == 0) {
            device.launch(INT4_BLOCKS, Grid.of((long) n * (k / 128) * 8), weights, w, format.code(), n, k);
        } else {
            device.launch(BLOCKS, Grid.of((long) n * (k / QuantBlocks.UNIT)), weights, w, format.code(), n, k);
        }
        Matmul.launchMatmul(device, out, a, weights, bias, m, n, k);
    }

    private static DeviceBuffer scratch(Device device, long elements) {
        return SCRATCH.computeIfAbsent(device, d -> new GrowingScratch(d::allocate)).atLeast(DType.BF16, elements);
    }
}
