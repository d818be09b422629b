package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.Devices;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Discovery and library loading, on machines with and (mostly) without an NVIDIA driver. */
class CudaBackendTest {

    @Test
    void isFoundByDevicesAndNamedCuda() {
        assertTrue(Devices.backends().contains(CudaBackend.INSTANCE), "Devices loads the CUDA backend by its class name");
        assertEquals("cuda", CudaBackend.INSTANCE.name());
    }

    @Test
    void withoutADriverItSaysWhyAndEverythingElseStillWorks() {
        Assumptions.assumeTrue(CudaDriver.LIBRARY.failure().isPresent(), "this machine has libcuda.so.1");
        String reason = CudaBackend.INSTANCE.unavailableReason().orElseThrow();
        assertTrue(reason.contains("libcuda.so.1 not found") && reason.contains("no NVIDIA driver"), reason);
        assertTrue(reason.contains("-Dlightllm.cuda.driver="), "says how to point at the library: " + reason);
        assertEquals(List.of(), CudaBackend.INSTANCE.devices());
        List<DeviceInfo> all = Devices.list();
        assertTrue(all.stream().anyMatch(d -> d.id().equals("jvm")), all.toString());
        assertTrue(all.stream().noneMatch(d -> d.id().startsWith("cuda")), all.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Devices.get("cuda:0"));
        assertTrue(e.getMessage().contains("backend cuda is unavailable") && e.getMessage().contains("libcuda.so.1"), e.getMessage());
        IllegalStateException direct = assertThrows(IllegalStateException.class, () -> new CudaDevice(0));
        assertTrue(direct.getMessage().contains("CUDA is unavailable"), direct.getMessage());
    }

    @Test
    @Tag("gpu") // runs on GPU machines (scripts/gpu-check.sh); the default build excludes the tag
    void withADriverItListsEveryGpu() {
        Assumptions.assumeTrue(CudaBackend.INSTANCE.unavailableReason().isEmpty(), "no usable CUDA here");
        List<DeviceInfo> gpus = CudaBackend.INSTANCE.devices();
        assertTrue(!gpus.isEmpty());
        for (int i = 0; i < gpus.size(); i++) {
            DeviceInfo d = gpus.get(i);
            assertEquals("cuda:" + i, d.id());
            assertTrue(d.memoryBytes() > 0 && d.computeUnits() > 0, d.toString());
            assertTrue(d.details().matches("compute capability \\d+\\.\\d+, driver CUDA .*, NVRTC .*"), d.details());
        }
    }

    @Test
    void missingNvrtcNamesWhatWasTried() {
        Assumptions.assumeTrue(Nvrtc.LIBRARY.failure().isPresent(), "this machine has NVRTC");
        String why = Nvrtc.loadFailure();
        assertTrue(why.contains("libnvrtc.so.13") && why.contains("libnvrtc.so.12") && why.contains("-D" + Nvrtc.PROPERTY + "="), why);
    }

    @Test
    void aConfiguredLibraryPathThatDoesNotLoadIsReported() {
        String property = "lightllm.test.cuda.missing";
        System.setProperty(property, "/nonexistent/libcuda.so.1");
        try {
            NativeLibrary lib = NativeLibrary.open(property, List.of("libcuda.so.1"), List.of());
            String why = lib.failure().orElseThrow();
            assertTrue(why.contains("/nonexistent/libcuda.so.1") && why.contains("-D" + property), why);
            assertEquals(null, lib.function("cuInit", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT)));
            assertTrue(lib.signatures().containsKey("cuInit"), "declarations are kept for the header checks");
        } finally {
            System.clearProperty(property);
        }
    }

    @Test
    void librariesOnTheLoaderPathAreLinked() {
        NativeLibrary libc = NativeLibrary.open("lightllm.test.libc", List.of("libc.so.6"), List.of(Path.of("/nonexistent")));
        assertTrue(libc.failure().isEmpty(), libc.toString());
        FunctionDescriptor getpid = FunctionDescriptor.of(ValueLayout.JAVA_INT);
        assertNotNull(libc.function("getpid", getpid));
        assertEquals("i()", NativeLibrary.shape(getpid));
        assertEquals(List.of("no_such_function_here"), libc.missingFunctions(List.of("getpid", "no_such_function_here")));
    }

    @Test
    void cublasWithoutItsLibrarySaysSo() {
        Assumptions.assumeTrue(CudaBlas.LIBRARY.failure().isPresent(), "this machine has cuBLAS");
        String why = CudaBlas.unavailableReason().orElseThrow();
        assertTrue(why.contains("libcublas.so.13") && why.contains("-Dlightllm.cuda.cublas="), why);
    }
}
