package io.lightllm.tornado.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Huge-page memory behaves as plain memory (zeroed, aligned, writable, freed with its arena), and the JVM
 * device copies a large array into it, mapped from a file or made in the JVM (weights quantised at load),
 * its contents unchanged, while small ones stay aliased.
 */
class HugePagesTest {
    @Test
    void largeAllocationsAreZeroedAlignedAndWritable() {
        long bytes = 3 * HugePages.MIN_BYTES + 12;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment s = HugePages.allocate(bytes, arena);
            assertEquals(bytes, s.byteSize());
            assertEquals(0, s.address() % 64, "aligned for vector loads");
            for (long i = 0; i < bytes; i += 4096) {
                assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i));
            }
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, bytes - 8, 42L);
            assertEquals(42L, s.get(ValueLayout.JAVA_LONG_UNALIGNED, bytes - 8));
            assertEquals(16, HugePages.allocate(16, arena).byteSize(), "small ones come from the arena");
        }
    }

    @Test
    void theJvmDeviceCopiesLargeArraysAndAliasesSmallOnes(@TempDir Path dir) throws Exception {
        JvmDevice device = new JvmDevice(1);
        int floats = (int) (HugePages.MIN_BYTES / 4) + 5;
        Path file = dir.resolve("weights.bin");
        FloatArray source = FloatArray.allocate(floats);
        for (int i = 0; i < floats; i++) {
            source.set(i, i * 0.5f);
        }
        Files.write(file, source.segment().toArray(ValueLayout.JAVA_BYTE));
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofShared()) {
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, 4L * floats, arena);
            NativeArray weights = NativeArray.wrap(mapped, DType.F32);
            DeviceBuffer b = device.upload(weights);
            NativeArray seen = device.array(b);
            assertEquals(HugePages.available(), seen.segment().address() != mapped.address(), "copied where huge pages are available");
            for (int i = 0; i < floats; i += 997) {
                assertEquals(i * 0.5f, seen.getFloat(i));
            }
            NativeArray small = NativeArray.wrap(mapped.asSlice(0, 1024), DType.F32);
            assertEquals(small.segment().address(), device.array(device.upload(small)).segment().address(), "a small tensor stays aliased");
            assertFalse(source.segment().isMapped());
            NativeArray made = device.array(device.upload(source));
            assertEquals(HugePages.available(), made.segment().address() != source.segment().address(),
                    "a large array made in the JVM is copied where huge pages are available");
            for (int i = 0; i < floats; i += 997) {
                assertEquals(i * 0.5f, made.getFloat(i));
            }
            b.close();
        }
    }
}
