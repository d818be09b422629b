package io.lightllm.tornado.opencl;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Built OpenCL programs on disk, so a restart skips the driver's compiler (seconds per kernel
 * on some GPUs). A file is named by the SHA-256 of the source, the build options and the
 * platform, device and driver identity, because a binary is only valid for exactly that.
 * Failing to write is not fatal: the program was built and works; it is just built again
 * next time.
 */
final class ProgramBinaryCache {
    /** System property naming the root of lightllm's caches. */
    static final String CACHE_DIR_PROPERTY = "lightllm.cache.dir";

    private static final System.Logger LOG = System.getLogger(ProgramBinaryCache.class.getName());

    private final Path directory;
    private final String deviceIdentity;

    ProgramBinaryCache(Path directory, OpenCLDeviceEntry device, String buildOptions) {
        this.directory = directory;
        this.deviceIdentity = String.join("\u0000", device.platformName(), device.platformVersion(), device.deviceName(),
                device.driverVersion(), buildOptions);
    }

    /** {@code ${lightllm.cache.dir:-~/.cache/lightllm-java}/opencl}. */
    static Path defaultDirectory() {
        String root = System.getProperty(CACHE_DIR_PROPERTY);
        Path base = root != null ? Path.of(root) : Path.of(System.getProperty("user.home"), ".cache", "lightllm-java");
        return base.resolve("opencl");
    }

    Path fileFor(String source) {
        return directory.resolve(sha256(source + "\u0000" + deviceIdentity) + ".bin");
    }

    /** The stored binary for {@code source}, or null when there is none (or it cannot be read). */
    byte[] load(String source) {
        Path file = fileFor(source);
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException absent) {
            return null;
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot read OpenCL program cache " + file + ": " + e);
            return null;
        }
    }

    /** Stores (or replaces) the binary; written to a temporary file and moved, so readers never see half a file. */
    void store(String source, byte[] binary) {
        Path file = fileFor(source);
        try {
            Files.createDirectories(directory);
            Path tmp = Files.createTempFile(directory, file.getFileName().toString(), ".tmp");
            try {
                Files.write(tmp, binary);
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot write OpenCL program cache " + file + ": " + e);
        }
    }

    private static String sha256(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }
}
