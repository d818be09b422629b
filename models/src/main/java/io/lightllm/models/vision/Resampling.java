package io.lightllm.models.vision;

/**
 * Pillow's resize of an 8-bit channel (libImaging/Resample.c), bit for bit: per output pixel a window of
 * filter weights (widened by the scale when shrinking, the antialiasing), normalised to sum 1 and turned into
 * 22-bit fixed point; the horizontal pass first, rounded to 8 bits, then the vertical pass.
 */
final class Resampling {
    static final int BILINEAR = 2, BICUBIC = 3;
    private static final int PRECISION_BITS = 32 - 8 - 2;

    private Resampling() {
    }

    /** A channel of {@code inW x inH} values 0..255 resized to {@code outW x outH}. */
    static int[] resize(int[] in, int inW, int inH, int outW, int outH, int filter) {
        int[] rows = in;
        int rowsW = inW;
        if (outW != inW) {
            rows = pass(in, inW, inH, outW, filter, true);
            rowsW = outW;
        }
        return outH != inH ? pass(rows, rowsW, inH, outH, filter, false) : rows;
    }

    /** One pass along x (horizontal) or y: {@code out} pixels along that axis. */
    private static int[] pass(int[] in, int w, int h, int out, int filter, boolean horizontal) {
        int inSize = horizontal ? w : h;
        double scale = (double) inSize / out;
        double filterScale = Math.max(scale, 1.0);
        double support = (filter == BICUBIC ? 2.0 : 1.0) * filterScale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[out * 2];
        int[] kk = new int[out * ksize];
        double[] k = new double[ksize];
        for (int xx = 0; xx < out; xx++) {
            double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterScale;
            int xmin = Math.max((int) (center - support + 0.5), 0);
            int xmax = Math.min((int) (center + support + 0.5), inSize) - xmin;
            for (int x = 0; x < xmax; x++) {
                k[x] = weight((x + xmin - center + 0.5) * ss, filter);
                ww += k[x];
            }
            for (int x = 0; x < xmax; x++) {
                double normalised = ww != 0.0 ? k[x] / ww : k[x];
                kk[xx * ksize + x] = (int) (normalised < 0 ? -0.5 + normalised * (1 << PRECISION_BITS) : 0.5 + normalised * (1 << PRECISION_BITS));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        int outW = horizontal ? out : w, outH = horizontal ? h : out;
        int[] result = new int[outW * outH];
        for (int y = 0; y < outH; y++) {
            for (int x = 0; x < outW; x++) {
                int i = horizontal ? x : y;
                int min = bounds[2 * i], n = bounds[2 * i + 1];
                int acc = 1 << (PRECISION_BITS - 1);
                for (int j = 0; j < n; j++) {
                    int v = horizontal ? in[y * w + min + j] : in[(min + j) * w + x];
                    acc += v * kk[i * ksize + j];
                }
                result[y * outW + x] = Math.clamp(acc >> PRECISION_BITS, 0, 255);
            }
        }
        return result;
    }

    /** Pillow's filters: bicubic with a = -0.5 (support 2), bilinear's triangle (support 1). */
    private static double weight(double x, int filter) {
        x = Math.abs(x);
        if (filter == BILINEAR) {
            return x < 1.0 ? 1.0 - x : 0.0;
        }
        double a = -0.5;
        if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        }
        return x < 2.0 ? (((x - 5) * x + 8) * x - 4) * a : 0.0;
    }
}
