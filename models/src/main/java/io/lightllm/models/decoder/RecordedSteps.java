package io.lightllm.models.decoder;

import io.lightllm.tornado.runtime.Device;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model's recorded decode steps (CUDA graphs), one per key (batch size, pool, table, rotary table), at most
 * {@code max}: a new one past that closes the least recently replayed, not all of them. Serving meets a new batch size
 * whenever a request joins or ends, and each new size costs a launched step and a capture; dropping every recording
 * at the cap made a server whose running set wanders over more sizes than the cap record nearly every step.
 */
final class RecordedSteps<K> {
    private final int max;
    private final LinkedHashMap<K, Device.Replay> steps;

    RecordedSteps(int max) {
        if (max < 1) {
            throw new IllegalArgumentException("at least one recording, got " + max);
        }
        this.max = max;
        this.steps = new LinkedHashMap<>(16, 0.75f, true) { // access order: get moves a step to the back
            @Override
            protected boolean removeEldestEntry(Map.Entry<K, Device.Replay> eldest) {
                if (size() > RecordedSteps.this.max) {
                    eldest.getValue().close();
                    return true;
                }
                return false;
            }
        };
    }

    /** The recording of {@code key}, now the most recently used, or null. */
    Device.Replay get(K key) {
        return steps.get(key);
    }

    /** Keeps {@code recorded} for {@code key}, closing the least recently used recording if that makes more than the cap. */
    void put(K key, Device.Replay recorded) {
        Device.Replay old = steps.put(key, recorded);
        if (old != null && old != recorded) {
            old.close();
        }
    }

    /** The keys recorded now, the least recently replayed first. */
    java.util.List<K> keys() {
        return java.util.List.copyOf(steps.keySet());
    }

    int size() {
        return steps.size();
    }

    /** Closes every recording (the buffers they read are about to change). */
    void clear() {
        steps.values().forEach(Device.Replay::close);
        steps.clear();
    }
}
