package io.lightllm.kernels;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.runtime.KernelRef;
import java.util.stream.Stream;

/** What the kernel tests share: the devices they run on, copies in and out of device buffers, the CUDA compile check. */
final class KernelTestSupport {
    /** Local sizes the row kernels must give the same answers for (any power of two up to GroupReduce.MAX_LOCAL). */
    static final int[] LOCAL_SIZES = {1, 4, 64};

    private KernelTestSupport() {
    }

    /** The JVM (checked against scalar references) and every accelerator (checked against the references and the JVM). */
    static Stream<String> deviceIds() {
        return Stream.concat(Stream.of("jvm"), TestDevices.accelerators().stream());
    }

    static Device device(String id) {
        return Devices.get(id);
    }

    static boolean isJvm(Device device) {
        return device.id().equals("jvm");
    }

    /**
     * A device copy of {@code host}. Always a copy (never {@link Device#upload}, which aliases
     * on the JVM), so in-place kernels leave the test's inputs intact.
     */
    static DeviceBuffer copyOf(Device device, NativeArray host) {
        DeviceBuffer b = device.allocate(host.dtype(), host.getSize());
        device.copyIn(host, b);
        return b;
    }

    /**
     * Compiles the kernel's CUDA C to PTX with nvcc (skipped where nvcc is missing, outside CI).
     * {@code argDtypes}: the buffer dtype for each launch argument ({@code null} for scalars), needed
     * when the kernel has {@code NativeArray} parameters; no arguments otherwise.
     */
    static void assertCompilesToCuda(KernelRef kernel, DType... argDtypes) {
        String what = kernel + (argDtypes.length == 0 ? "" : " " + java.util.Arrays.toString(argDtypes));
        CudaCheck.assertCompiles(KernelCompiler.compile(kernel, Dialect.CUDA, argDtypes.length == 0 ? null : argDtypes).source(), what);
    }
}
