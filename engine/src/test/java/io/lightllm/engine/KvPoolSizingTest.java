package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.management.OperatingSystemMXBean;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Test;

class KvPoolSizingTest {

    @Test
    void bytesPerTokenOfStories260K() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            // 5 layers x (K + V) x 4 kv heads x head dim 8
            assertEquals(5 * 2 * 4 * 8 * 4, KvPoolSizing.bytesPerToken(model, DType.F32));
            assertEquals(5 * 2 * 4 * 8 * 2, KvPoolSizing.bytesPerToken(model, DType.F16));
            // int8 values and an f32 scale per head in each layer; attention reads them directly
            assertEquals(5 * (2 * 4 * 8 + 2 * 4 * 4), KvPoolSizing.bytesPerToken(model, DType.I8));
        });
    }

    /** fp8 codes take one byte an element, and an f32 scale per head of K and of V in each layer, as int8. */
    @Test
    void fp8BytesPerToken() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            assertEquals(5 * (2 * 4 * 8 + 2 * 4 * 4), KvPoolSizing.bytesPerToken(model, DType.F8_E4M3));
        });
        // an 8B shape (32 layers, 8 KV heads of 128): 128 code bytes + 4 scale bytes per head, for K and V, against 256 in f16
        assertEquals(32L * 2 * 8 * (128 + 4), io.lightllm.models.infer.TokenKvPool.bytesPerToken(32, 8, 128, DType.F8_E4M3));
        assertEquals(67_584, io.lightllm.models.infer.TokenKvPool.bytesPerToken(32, 8, 128, DType.F8_E4M3));
        assertEquals(131_072, io.lightllm.models.infer.TokenKvPool.bytesPerToken(32, 8, 128, DType.F16));
    }

    @Test
    void jvmPoolTakesTheFractionOfFreeMemoryCappedAtHalfThePhysical() throws Exception {
        EngineEndToEndTest.withModel(SharedData.model("stories260K"), (model, eos, golden) -> {
            OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            int tokens = KvPoolSizing.maxTotalTokens(model, DType.F16, 0.5, 0);
            long bytes = (long) tokens * KvPoolSizing.bytesPerToken(model, DType.F16);
            assertTrue(tokens > 0);
            assertTrue(bytes <= 0.5 * os.getTotalMemorySize() / 2, bytes + " bytes within half of half the physical memory");
            assertThrows(IllegalArgumentException.class, () -> KvPoolSizing.maxTotalTokens(model, DType.F16, 0, 0));
            assertThrows(IllegalArgumentException.class, () -> KvPoolSizing.maxTotalTokens(model, DType.F16, 1.5, 0));
        });
    }

    /**
     * A layer's K (or V) is one buffer that kernels index with int, the capacity's slots and the padding slot together: a
     * pool one slot past that is refused before anything is allocated, with the most it could hold.
     */
    @Test
    void aPoolPastIntIndexingIsRefused() {
        int rowElements = 8 * 128, most = Integer.MAX_VALUE / rowElements - 1;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new io.lightllm.models.infer.TokenKvPool(new io.lightllm.tornado.jvm.JvmDevice(1), 1, 8, 128, most + 1, DType.F16));
        assertTrue(e.getMessage().contains("at most " + most + " slots"), e.getMessage());
    }

    /** tp 2 on the JVM: both ranks' pools live in host memory, so the pool sized from it counts both. */
    @Test
    void jvmRanksShareTheHostMemory() throws Exception {
        try (io.lightllm.models.ModelFiles files = io.lightllm.models.ModelFiles.open(SharedData.model("stories260K"),
                io.lightllm.models.LoadOptions.quietly());
             io.lightllm.models.infer.CausalLM split = io.lightllm.models.Models.load(files,
                     io.lightllm.models.parallel.RankDevices.resolve("jvm", 2), io.lightllm.models.Models.Quantization.NONE, true)) {
            assertEquals(2, split.ranksSharingMemory());
            OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            int tokens = KvPoolSizing.maxTotalTokens(split, DType.F16, 0.5, 0);
            // each rank's pool holds 2 of the 4 kv heads: a token costs half of the one-device figure on each rank
            long rankBytes = KvPoolSizing.bytesPerToken(split, DType.F16);
            assertEquals(5 * 2 * 2 * 8 * 2, rankBytes);
            assertTrue(2L * tokens * rankBytes <= 0.5 * os.getTotalMemorySize() / 2, "both ranks' pools within the fraction");
        }
    }
}
