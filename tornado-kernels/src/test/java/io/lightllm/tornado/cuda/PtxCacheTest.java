package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PtxCacheTest {

    @Test
    void theKeyCoversSourceArchitectureNvrtcVersionAndOptions() {
        String k = PtxCache.key("src", "compute_90", "13.0", List.of("-default-device"));
        assertEquals(64, k.length(), "hex SHA-256");
        assertEquals(k, PtxCache.key("src", "compute_90", "13.0", List.of("-default-device")));
        assertNotEquals(k, PtxCache.key("src2", "compute_90", "13.0", List.of("-default-device")));
        assertNotEquals(k, PtxCache.key("src", "compute_80", "13.0", List.of("-default-device")));
        assertNotEquals(k, PtxCache.key("src", "compute_90", "12.9", List.of("-default-device")));
        assertNotEquals(k, PtxCache.key("src", "compute_90", "13.0", List.of("-default-device", "--use_fast_math")));
        assertNotEquals(PtxCache.key("ab", "c", "v", List.of()), PtxCache.key("a", "bc", "v", List.of()), "parts are separated");
    }

    @Test
    void entriesRoundTripAndCanBeDropped(@TempDir Path dir) {
        PtxCache cache = new PtxCache(dir.resolve("cuda"));
        String key = PtxCache.key("src", "compute_90", "13.0", List.of());
        assertEquals(Optional.empty(), cache.read(key));
        cache.write(key, ".version 9.0\n.target sm_90\n");
        assertEquals(Optional.of(".version 9.0\n.target sm_90\n"), cache.read(key));
        assertTrue(Files.isRegularFile(dir.resolve("cuda").resolve(key + ".ptx")));
        cache.remove(key);
        assertEquals(Optional.empty(), cache.read(key));
    }

    @Test
    void theDirectoryFollowsTheCacheProperty(@TempDir Path dir) {
        String old = System.getProperty(PtxCache.CACHE_DIR_PROPERTY);
        System.setProperty(PtxCache.CACHE_DIR_PROPERTY, dir.toString());
        try {
            assertEquals(dir.resolve("cuda"), PtxCache.standard().directory());
        } finally {
            if (old == null) {
                System.clearProperty(PtxCache.CACHE_DIR_PROPERTY);
            } else {
                System.setProperty(PtxCache.CACHE_DIR_PROPERTY, old);
            }
        }
        assertTrue(PtxCache.standard().directory().endsWith(Path.of("cuda")));
    }
}
