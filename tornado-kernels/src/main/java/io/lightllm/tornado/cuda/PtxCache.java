package io.lightllm.tornado.cuda;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * PTX from NVRTC kept on disk, so a second start of the engine skips compilation. A file is
 * named by the SHA-256 of everything that determines its content: the kernel source, the
 * target architecture, the NVRTC version and the compile options. Failing to read or write the
 * cache never fails a launch; it only costs a compilation.
 */
final class PtxCache {
    /** System property for the cache root; PTX goes to its {@code cuda/} folder. */
    static final String CACHE_DIR_PROPERTY = "lightllm.cache.dir";

    private final Path directory;

    PtxCache(Path directory) {
        this.directory = directory;
    }

    /** {@code ${lightllm.cache.dir:-~/.cache/lightllm-java}/cuda}. */
    static PtxCache standard() {
        String root = System.getProperty(CACHE_DIR_PROPERTY);
        Path base = root != null && !root.isBlank() ? Path.of(root) : Path.of(System.getProperty("user.home"), ".cache", "lightllm-java");
        return new PtxCache(base.resolve("cuda"));
    }

    Path directory() {
        return directory;
    }

    static String key(String source, String architecture, String nvrtcVersion, List<String> options) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String part : new String[] {source, architecture, nvrtcVersion, String.join(" ", options)}) {
                sha.update(part.getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0); // separator: no two part lists hash the same text
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    Path file(String key) {
        return directory.resolve(key + ".ptx");
    }

    Optional<String> read(String key) {
        try {
            Path f = file(key);
            return Files.isRegularFile(f) ? Optional.of(Files.readString(f, StandardCharsets.UTF_8)) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Writes through a temporary file and a rename, so concurrent processes never read half a file. */
    void write(String key, String ptx) {
        try {
            Files.createDirectories(directory);
            Path tmp = Files.createTempFile(directory, key, ".tmp");
            Files.writeString(tmp, ptx, StandardCharsets.UTF_8);
            try {
                Files.move(tmp, file(key), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file(key), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            System.err.println("lightllm: could not write the PTX cache at " + directory + ": " + e.getMessage());
        }
    }

    /** Drops an entry that the driver refused, so the next start compiles afresh. */
    void remove(String key) {
        try {
            Files.deleteIfExists(file(key));
        } catch (IOException e) {
            // stays: the next load fails the same way and recompiles again
        }
    }
}
