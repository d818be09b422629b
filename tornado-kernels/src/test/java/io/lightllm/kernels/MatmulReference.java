package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;

/**
 * The naive matmul in double precision, with the float32 error bound of any kernel computing
 * the same sums: for a k-term dot product in any summation order (tree, blocked, FMA),
 * |fl(s) - s| <= gamma_k * sum|a_i w_i| with gamma_k ~ k * u, u = 2^-24 (Higham, Accuracy and
 * Stability of Numerical Algorithms, 3.1); a scale and a bias add two more roundings.
 */
public record MatmulReference(FloatArray expected, float errorBound) {
    public static final double UNIT_ROUNDOFF = 0x1p-24;

    /** out = a[m, k] · (w[n, k] * scales[n])ᵀ + bias[n]; scales and bias may be null. */
    public static MatmulReference of(FloatArray a, NativeArray w, FloatArray scales, FloatArray bias, int m, int n, int k) {
        FloatArray out = FloatArray.allocate(m * n);
        double worstMagnitude = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0, magnitude = 0;
                for (int x = 0; x < k; x++) {
                    double term = (double) a.get(i * k + x) * w.getFloat(j * k + x);
                    s += term;
                    magnitude += Math.abs(term);
                }
                double scale = scales == null ? 1 : scales.get(j);
                double b = bias == null ? 0 : bias.get(j);
                out.set(i * n + j, (float) (s * scale + b));
                worstMagnitude = Math.max(worstMagnitude, magnitude * Math.abs(scale) + Math.abs(b));
            }
        }
        // k products and sums, one scale, one bias add, one rounding of the result
        return new MatmulReference(out, (float) ((k + 3) * UNIT_ROUNDOFF * worstMagnitude));
    }
}
