package io.lightllm.tornado.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.cuda.DiagnosticKernels;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import org.junit.jupiter.api.Test;

class JvmDeviceTest {

    public static void scale(FloatArray out, FloatArray in, float factor, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, in.get(i) * factor);
        }
    }

    public static void addMatrix(FloatArray out, FloatArray a, FloatArray b, int rows, int cols) {
        for (@Parallel int r = 0; r < rows; r++) {
            for (@Parallel int c = 0; c < cols; c++) {
                long unused = 7L; // a wide local shifts slots: the rewrite must cope
                out.set(r * cols + c, a.get(r * cols + c) + b.get(r * cols + c) + (float) (unused - 7L));
            }
        }
    }

    @Test
    void parallelLoopsCoverEveryIndexOnce() {
        JvmDevice dev = new JvmDevice(3);
        int n = 1001;
        FloatArray host = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            host.set(i, i);
        }
        DeviceBuffer in = dev.allocate(DType.F32, n), out = dev.allocate(DType.F32, n);
        dev.copyIn(host, in);
        dev.launch(new KernelRef(method("scale")), Grid.of(n), out, in, 2f, n);
        FloatArray result = (FloatArray) dev.download(out);
        for (int i = 0; i < n; i++) {
            assertEquals(2f * i, result.get(i));
        }
    }

    /**
     * A recording JVM device keeps a step's launches and device copies without running them and replays them in order with
     * their arguments frozen (buffers by reference, scalars by value), as a CUDA graph does; what a graph cannot hold throws
     * while recording; a device that does not record says so (null), as before.
     */
    @Test
    void recordedLaunchesReplayInOrderOnTheBuffersContentsThen() {
        JvmDevice dev = new JvmDevice(2, true);
        int n = 5;
        DeviceBuffer in = dev.allocate(DType.F32, n), mid = dev.allocate(DType.F32, n), out = dev.allocate(DType.F32, n);
        dev.copyIn(FloatArray.fromArray(new float[] {1, 2, 3, 4, 5}), in);
        KernelRef scale = new KernelRef(method("scale"));
        float[] factor = {2f};
        var replay = dev.capture(() -> {
            dev.launch(scale, Grid.of(n), mid, in, factor[0], n);
            dev.copy(mid, 0, out, 0, 4L * n);
            dev.launch(scale, Grid.of(n), out, out, 10f, n);
        });
        factor[0] = 3f; // a scalar is frozen at recording
        assertEquals(0f, ((FloatArray) dev.download(out)).get(4), "recording runs nothing");
        replay.replay();
        assertEquals(100f, ((FloatArray) dev.download(out)).get(4), "5 x 2, copied, x 10");
        dev.copyIn(FloatArray.fromArray(new float[] {0, 0, 0, 0, 7}), in); // a buffer is read as it is at each replay
        replay.replay();
        assertEquals(140f, ((FloatArray) dev.download(out)).get(4));
        replay.close();
        assertThrows(IllegalStateException.class, replay::replay, "a closed recording does not replay");
        assertThrows(IllegalStateException.class, () -> dev.capture(() -> dev.allocate(DType.F32, 1)), "allocate");
        assertThrows(IllegalStateException.class, () -> dev.capture(() -> dev.copyIn(FloatArray.fromArray(new float[n]), in)), "a host write");
        assertThrows(IllegalStateException.class, () -> dev.capture(() -> dev.download(in)), "a host read");
        assertThrows(IllegalStateException.class, () -> dev.capture(dev::synchronize), "synchronize");
        dev.launch(scale, Grid.of(n), out, in, 1f, n); // and the device launches again once the failed recordings are over
        assertEquals(7f, ((FloatArray) dev.download(out)).get(4));
        assertEquals(null, new JvmDevice(1, false).capture(() -> { }), "a JVM device that does not record (the default) says so");
    }

    @Test
    void nestedParallelLoopsWithWideLocals() {
        JvmDevice dev = new JvmDevice(2);
        int rows = 5, cols = 7;
        FloatArray a = FloatArray.allocate(rows * cols), b = FloatArray.allocate(rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            a.set(i, i);
            b.set(i, 100 * i);
        }
        DeviceBuffer out = dev.allocate(DType.F32, rows * cols);
        dev.launch(KernelRef.of(JvmDeviceTest.class, "addMatrix"), Grid.of(rows, cols), out, dev.upload(a), dev.upload(b), rows, cols);
        FloatArray r = (FloatArray) dev.download(out);
        for (int i = 0; i < rows * cols; i++) {
            assertEquals(101f * i, r.get(i));
        }
    }

    @Test
    void barriersSynchroniseWorkGroups() {
        JvmDevice dev = new JvmDevice(2);
        int rows = 9, n = 300;
        FloatArray in = FloatArray.allocate(rows * n);
        for (int i = 0; i < rows * n; i++) {
            in.set(i, (i % 13) - 6);
        }
        DeviceBuffer out = dev.allocate(DType.F32, rows);
        dev.launch(KernelRef.of(DiagnosticKernels.class, "rowSum"), Grid.groups(rows, 64), out, dev.upload(in), n);
        FloatArray r = (FloatArray) dev.download(out);
        for (int row = 0; row < rows; row++) {
            float expected = 0;
            for (int i = 0; i < n; i++) {
                expected += in.get(row * n + i);
            }
            assertEquals(expected, r.get(row), 1e-3f);
        }
    }

    @Test
    void wrongArgumentsAreRefusedWithAClearMessage() {
        JvmDevice dev = new JvmDevice(1);
        DeviceBuffer buf = dev.allocate(DType.F16, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> dev.launch(KernelRef.of(JvmDeviceTest.class, "scale"), Grid.of(4), buf, buf, 1f, 4));
        assertEquals("JvmDeviceTest.scale argument 0 (FloatArray) needs a FloatArray buffer, got F16", e.getMessage());
    }

    @Test
    void threadsComeFromThePropertyElseTheCores() {
        try {
            System.clearProperty(JvmDevice.THREADS_PROPERTY);
            assertEquals(Runtime.getRuntime().availableProcessors(), JvmDevice.defaultThreads());
            System.setProperty(JvmDevice.THREADS_PROPERTY, "3");
            assertEquals(3, JvmDevice.defaultThreads());
            try (JvmDevice dev = new JvmDevice()) {
                assertEquals(3, dev.threads());
            }
            System.setProperty(JvmDevice.THREADS_PROPERTY, "none");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, JvmDevice::defaultThreads);
            assertEquals("lightllm.threads must be a whole number of at least 1, not 'none'", e.getMessage());
        } finally {
            System.clearProperty(JvmDevice.THREADS_PROPERTY);
        }
    }

    private static java.lang.reflect.Method method(String name) {
        return KernelRef.of(JvmDeviceTest.class, name).method();
    }
}
