package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/** Small element-wise kernels (MiniCPM's scalings, biases after a vendor GEMM, learned positions). */
public final class Elementwise {
    public static final KernelRef SCALE = KernelRef.of(Elementwise.class, "scale");
    public static final KernelRef ADD_BIAS = KernelRef.of(Elementwise.class, "addBias");
    public static final KernelRef ADD = KernelRef.of(Elementwise.class, "add");
    public static final KernelRef FILL = KernelRef.of(Elementwise.class, "fill");

    private Elementwise() {
    }

    /** x[i] *= factor for i in [0, n). */
    public static void scale(FloatArray x, float factor, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) * factor);
        }
    }

    /** x[r, c] += bias[c] for an [rows, cols] matrix (after a vendor GEMM that has no bias). */
    public static void addBias(FloatArray x, FloatArray bias, int rows, int cols) {
        for (@Parallel int r = 0; r < rows; r++) {
            for (@Parallel int c = 0; c < cols; c++) {
                x.set(r * cols + c, x.get(r * cols + c) + bias.get(c));
            }
        }
    }

    /** x[i] += y[i] for i in [0, n) (learned position embeddings joining the token embeddings). */
    public static void add(FloatArray x, FloatArray y, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, x.get(i) + y.get(i));
        }
    }

    /** x[i] = value for i in [0, n) (an output that split-k work-groups then add into). */
    public static void fill(FloatArray x, float value, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            x.set(i, value);
        }
    }

    public static void launchFill(Device device, DeviceBuffer x, float value, int n) {
        Shapes.positive(n, "n");
        Shapes.atLeast(x, n, "x");
        device.launch(FILL, Grid.of(n), x, value, n);
    }

    public static void launchAdd(Device device, DeviceBuffer x, DeviceBuffer y, int n) {
        Shapes.positive(n, "n");
        Shapes.atLeast(x, n, "x");
        Shapes.atLeast(y, n, "y");
        device.launch(ADD, Grid.of(n), x, y, n);
    }

    public static void launchAddBias(Device device, DeviceBuffer x, DeviceBuffer bias, int rows, int cols) {
        device.launch(ADD_BIAS, Grid.of(Math.max(1, rows), Math.max(1, cols)), x, bias, rows, cols);
    }

    public static void launchScale(Device device, DeviceBuffer x, int n, float factor) {
        device.launch(SCALE, Grid.of(Math.max(1, n)), x, factor, n);
    }
}
