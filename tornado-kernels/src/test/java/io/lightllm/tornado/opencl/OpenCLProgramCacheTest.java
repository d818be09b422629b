package io.lightllm.tornado.opencl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Separate device instances over one cache directory stand in for separate JVM runs. */
class OpenCLProgramCacheTest {
    @TempDir
    Path cacheDir;

    private OpenCLDevice openFresh() {
        String id = TestDevices.opencl().id();
        return OpenCLBackend.INSTANCE.open(id, cacheDir);
    }

    /** Runs axpy on 0..9 and checks out = x + 0.5 * x exactly (halves of small integers). */
    private static void assertAxpyWorks(OpenCLDevice dev, OpenCLKernel axpy) {
        int n = 10;
        FloatArray x = FloatArray.allocate(n);
        for (int i = 0; i < n; i++) {
            x.set(i, i);
        }
        try (DeviceBuffer dx = dev.upload(x); DeviceBuffer out = dev.allocate(DType.F32, n)) {
            dev.enqueue(axpy, Grid.of(n), out, dx, dx, 0.5f, n);
            FloatArray r = (FloatArray) dev.download(out);
            for (int i = 0; i < n; i++) {
                assertEquals(1.5f * i, r.get(i));
            }
        }
    }

    @Test
    void secondInstanceLoadsTheBinaryWithoutBuildingSource() throws IOException {
        Path file;
        try (OpenCLDevice first = openFresh()) {
            assertAxpyWorks(first, first.buildKernel(OpenCLKernelTest.AXPY, "axpy"));
            assertEquals(1, first.sourceBuilds());
            assertEquals(0, first.binaryLoads());
            file = first.binaryCacheFile(OpenCLKernelTest.AXPY);
        }
        assertTrue(Files.size(file) > 0, "binary stored at " + file);
        assertEquals(cacheDir, file.getParent());
        assertTrue(file.getFileName().toString().matches("[0-9a-f]{64}\\.bin"), file.toString());

        try (OpenCLDevice second = openFresh()) {
            assertAxpyWorks(second, second.buildKernel(OpenCLKernelTest.AXPY, "axpy"));
            assertEquals(0, second.sourceBuilds(), "the cached binary must be used");
            assertEquals(1, second.binaryLoads());
        }
    }

    @Test
    void corruptBinaryFallsBackToSourceAndIsRewritten() throws IOException {
        Path file;
        try (OpenCLDevice first = openFresh()) {
            first.buildKernel(OpenCLKernelTest.AXPY, "axpy");
            file = first.binaryCacheFile(OpenCLKernelTest.AXPY);
        }
        byte[] garbage = "not an OpenCL binary".getBytes(StandardCharsets.UTF_8);
        Files.write(file, garbage);

        try (OpenCLDevice second = openFresh()) {
            assertAxpyWorks(second, second.buildKernel(OpenCLKernelTest.AXPY, "axpy"));
            assertEquals(1, second.sourceBuilds());
            assertEquals(0, second.binaryLoads());
        }
        byte[] rewritten = Files.readAllBytes(file);
        assertFalse(java.util.Arrays.equals(garbage, rewritten), "the corrupt file must be replaced");

        try (OpenCLDevice third = openFresh()) {
            third.buildKernel(OpenCLKernelTest.AXPY, "axpy");
            assertEquals(1, third.binaryLoads(), "the rewritten binary loads");
        }
        assertArrayEquals(rewritten, Files.readAllBytes(file), "a good binary is not rewritten");
    }

    @Test
    void differentSourcesGetDifferentFiles() {
        try (OpenCLDevice dev = openFresh()) {
            assertFalse(dev.binaryCacheFile(OpenCLKernelTest.AXPY).equals(dev.binaryCacheFile(OpenCLKernelTest.ROW_SUM)));
        }
    }

    @Test
    void defaultDirectoryFollowsTheCacheProperty() {
        String before = System.getProperty(ProgramBinaryCache.CACHE_DIR_PROPERTY);
        try {
            System.setProperty(ProgramBinaryCache.CACHE_DIR_PROPERTY, cacheDir.toString());
            assertEquals(cacheDir.resolve("opencl"), ProgramBinaryCache.defaultDirectory());
            System.clearProperty(ProgramBinaryCache.CACHE_DIR_PROPERTY);
            assertEquals(Path.of(System.getProperty("user.home"), ".cache", "lightllm-java", "opencl"), ProgramBinaryCache.defaultDirectory());
        } finally {
            if (before != null) {
                System.setProperty(ProgramBinaryCache.CACHE_DIR_PROPERTY, before);
            }
        }
    }
}
