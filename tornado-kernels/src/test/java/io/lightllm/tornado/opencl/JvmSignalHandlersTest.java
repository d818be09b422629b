package io.lightllm.tornado.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.JvmSignalHandlers;
import io.lightllm.tornado.runtime.KernelRef;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Java keeps its semantics in a process that has compiled OpenCL kernels ({@link JvmSignalHandlers}): PoCL's LLVM
 * and PoCL itself replace the JVM's fault-signal handlers, after which JIT-compiled {@code 7 / 0} returned 7 instead
 * of throwing. The check runs in a child JVM without libjsig (the tests' JVMs preload it, which hides the problem)
 * and fails with {@code -Dlightllm.signals.restore=false}, which the test hands to the child.
 */
class JvmSignalHandlersTest {
    public static void plusSeven(IntArray out, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, i + 7);
        }
    }

    /** Runs a kernel on opencl:0:0, then divides by zero in JIT-compiled code; prints what happened. */
    public static final class DivideAfterAKernel {
        public static void main(String[] args) {
            Device device = Devices.get("opencl:0:0");
            int n = 16;
            try (DeviceBuffer out = device.allocate(DType.I32, n); Arena arena = Arena.ofConfined()) {
                device.launch(KernelRef.of(JvmSignalHandlersTest.class, "plusSeven"), Grid.of(n), out, n);
                device.synchronize();
                MemorySegment host = arena.allocate(4L * n);
                device.read(out, 0, host);
                System.out.println("kernel[15]=" + new IntArray(host).get(15));
            }
            long sum = 0;
            for (int i = 0; i < 3_000_000; i++) {
                sum += divide(i, 1 + (i & 7)); // until C2 compiles divide
            }
            try {
                System.out.println("7 / 0 gave " + divide(7, args.length) + " (" + sum + ")");
            } catch (ArithmeticException expected) {
                System.out.println("7 / 0 threw " + expected.getMessage());
            }
        }

        private static int divide(int a, int b) {
            return a / b;
        }
    }

    @Test
    void javaDivisionByZeroStillThrowsAfterAKernelRan() throws IOException, InterruptedException {
        TestDevices.opencl(); // skips outside CI, fails under CI=true, when there is no OpenCL device
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--add-modules=jdk.incubator.vector",
                "-Dlightllm.signals.restore=" + System.getProperty("lightllm.signals.restore", "true"),
                "-cp", System.getProperty("java.class.path"), DivideAfterAKernel.class.getName());
        pb.environment().remove("LD_PRELOAD"); // no signal chaining: the runtime's own guard must hold
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM hung");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("kernel[15]=22"), out);
        assertTrue(out.contains("7 / 0 threw / by zero"), "Java's division by zero must throw after a kernel ran:\n" + out);
    }
}
