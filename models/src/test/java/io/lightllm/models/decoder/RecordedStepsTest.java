package io.lightllm.models.decoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.lightllm.tornado.runtime.Device;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The recordings' cap evicts the least recently replayed one, closing it, and only it. The recordings here are plain
 * objects that note their closing: CUDA graphs need a GPU, and the policy is the host's.
 */
class RecordedStepsTest {
    private final List<String> closed = new ArrayList<>();

    private Device.Replay recording(String name) {
        return new Device.Replay() {
            public void replay() {
            }

            public void close() {
                closed.add(name);
            }
        };
    }

    @Test
    void pastTheCapTheLeastRecentlyReplayedGoes() {
        RecordedSteps<Integer> steps = new RecordedSteps<>(3);
        Device.Replay one = recording("1"), two = recording("2"), three = recording("3");
        steps.put(1, one);
        steps.put(2, two);
        steps.put(3, three);
        assertSame(one, steps.get(1)); // batch size 1 replayed again: 2 is now the least recent
        steps.put(4, recording("4"));
        assertEquals(List.of("2"), closed, "one recording closed, the least recently replayed");
        assertNull(steps.get(2));
        assertSame(one, steps.get(1));
        assertSame(three, steps.get(3));
        assertEquals(3, steps.size());
        steps.put(3, recording("3b"));
        assertEquals(List.of("2", "3"), closed, "a key recorded again closes its old recording");
        steps.clear();
        assertEquals(5, closed.size(), "clear closes the rest: " + closed);
        assertEquals(0, steps.size());
    }
}
