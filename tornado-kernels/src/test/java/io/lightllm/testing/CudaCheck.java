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
        Path dir = nvcc(source, what, "-ptx", "-arch=sm_90", "-o", "k.ptx");
        try {
            return Files.readString(dir.resolve("k.ptx"));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * Compiles {@code source} through ptxas for Hopper's arch-specific target ({@code nvcc -cubin -arch=sm_90a}, as the
     * runtime builds for an sm_90 device): instructions such as wgmma are checked by the assembler, which {@code -ptx}
     * leaves to the driver. Returns ptxas's report (-Xptxas -v: registers, spills, shared memory).
     */
    public static String assertAssembles(String source, String what) {
        try {
            return Files.readString(nvcc(source, what, "-cubin", "-arch=sm_90a", "-Xptxas", "-v", "-o", "k.cubin").resolve("nvcc.log"));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Runs nvcc with {@code options} on {@code source} (k.cu) in a new directory (outputs named relative to it); its output in nvcc.log. */
    private static Path nvcc(String source, String what, String... options) {
        if (!available()) {
            if (TestDevices.inCi()) {
                Assertions.fail("CI=true but nvcc is missing at " + NVCC);
            }
            Assumptions.abort("nvcc not found at " + NVCC);
        }
        try {
            Path dir = Files.createTempDirectory("lj-nvcc");
            Files.writeString(dir.resolve("k.cu"), source);
            java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(NVCC.toString()));
            command.addAll(java.util.List.of(options));
            command.add("k.cu");
            Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                Assertions.fail("nvcc timed out on " + what);
            }
            if (p.exitValue() != 0) {
                Assertions.fail("nvcc rejected " + what + ":\n" + out + "\n--- source ---\n" + numbered(source));
            }
            Files.writeString(dir.resolve("nvcc.log"), out);
            return dir;
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
