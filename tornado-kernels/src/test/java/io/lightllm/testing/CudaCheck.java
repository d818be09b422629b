package io.lightllm.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Checks that generated CUDA C compiles to PTX for sm_90 with the toolkit's nvcc, the stand-in
 * for NVRTC on machines without a GPU. Outside CI a missing nvcc skips; in CI it fails.
 */
public final class CudaCheck {
    private static final Path NVCC = Path.of(System.getProperty("lightllm.nvcc", "/usr/local/cuda-13.0/bin/nvcc"));

    private CudaCheck() {
    }

    public static boolean available() {
        return Files.isExecutable(NVCC);
    }

    /** Compiles {@code source} with {@code nvcc -ptx -arch=sm_90}; returns the PTX. */
    public static String assertCompiles(String source, String what) {
        if (!available()) {
            if (TestDevices.inCi()) {
                Assertions.fail("CI=true but nvcc is missing at " + NVCC);
            }
            Assumptions.abort("nvcc not found at " + NVCC);
        }
        try {
            Path dir = Files.createTempDirectory("lj-nvcc");
            Path cu = dir.resolve("k.cu");
            Path ptx = dir.resolve("k.ptx");
            Files.writeString(cu, source);
            Process p = new ProcessBuilder(NVCC.toString(), "-ptx", "-arch=sm_90", "-o", ptx.toString(), cu.toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                Assertions.fail("nvcc timed out on " + what);
            }
            if (p.exitValue() != 0) {
                Assertions.fail("nvcc rejected " + what + ":\n" + out + "\n--- source ---\n" + numbered(source));
            }
            return Files.readString(ptx);
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /**
     * Compiles {@code source} through ptxas for Hopper's arch-specific target ({@code nvcc -cubin -arch=sm_90a}, as the
     * runtime builds for an sm_90 device): instructions such as wgmma are checked by the assembler, which {@code -ptx}
     * leaves to the driver. Returns ptxas's report (-Xptxas -v: registers, spills, shared memory).
     */
    public static String assertAssembles(String source, String what) {
        if (!available()) {
            if (TestDevices.inCi()) {
                Assertions.fail("CI=true but nvcc is missing at " + NVCC);
            }
            Assumptions.abort("nvcc not found at " + NVCC);
        }
        try {
            Path dir = Files.createTempDirectory("lj-nvcc");
            Path cu = dir.resolve("k.cu");
            Files.writeString(cu, source);
            Process p = new ProcessBuilder(NVCC.toString(), "-cubin", "-arch=sm_90a", "-Xptxas", "-v", "-o", dir.resolve("k.cubin").toString(),
                    cu.toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                Assertions.fail("nvcc timed out on " + what);
            }
            if (p.exitValue() != 0) {
                Assertions.fail("nvcc rejected " + what + ":\n" + out + "\n--- source ---\n" + numbered(source));
            }
            return out;
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    public static String numbered(String source) {
        String[] lines = source.split("\n");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
            sb.append(String.format("%4d  %s%n", i + 1, lines[i]));
        }
        return sb.toString();
    }
}
