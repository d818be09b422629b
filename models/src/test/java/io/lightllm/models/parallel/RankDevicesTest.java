package io.lightllm.models.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The --device lists of tensor parallelism, written in full or short. */
class RankDevicesTest {
    @Test
    void shortListsTakeTheFirstItemsBackend() {
        assertEquals(List.of("cuda:0", "cuda:1"), RankDevices.ids("cuda:0,1"));
        assertEquals(List.of("cuda:0", "cuda:1"), RankDevices.ids("cuda:0, cuda:1"));
        assertEquals(List.of("cuda:2", "cuda:3", "cuda:1"), RankDevices.ids("cuda:2,3,cuda:1"));
        assertEquals(List.of("opencl:0:0", "opencl:0:1"), RankDevices.ids("opencl:0:0,0:1"));
        assertEquals(List.of("jvm"), RankDevices.ids("jvm"));
    }

    @Test
    void refusesItemsWithoutABackend() {
        IllegalArgumentException bare = assertThrows(IllegalArgumentException.class, () -> RankDevices.ids("0,1"));
        assertTrue(bare.getMessage().contains("'0' names no backend (write cuda:0)"), bare.getMessage());
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class, () -> RankDevices.ids("cuda:0,,1"));
        assertTrue(empty.getMessage().contains("empty item"), empty.getMessage());
    }
}
