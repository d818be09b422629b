package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.tornado.runtime.Devices;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * On a machine with an NVIDIA GPU: every check of {@link CudaSelfTest} (transfers, generated
 * kernels against the JVM, conversions, profiling, threads, CUDA graphs, cuBLAS). Skipped where
 * CUDA is unavailable, which is every build machine without a GPU.
 */
class CudaGpuTest {

    @Test
    @Tag("gpu") // runs on GPU machines (scripts/gpu-check.sh); the default build excludes the tag
    void selfTestPassesOnTheFirstGpu() {
        Assumptions.assumeTrue(CudaBackend.INSTANCE.unavailableReason().isEmpty(),
                () -> "CUDA unavailable: " + CudaBackend.INSTANCE.unavailableReason().orElse(""));
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int failed = CudaSelfTest.run((CudaDevice) Devices.get("cuda:0"), new PrintStream(log, true, StandardCharsets.UTF_8));
        assertEquals(0, failed, log.toString(StandardCharsets.UTF_8));
    }
}
