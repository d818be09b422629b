package io.lightllm.models.weights;

import io.lightllm.models.ModelLoadException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Maps whole files read-only into an {@link Arena}; the mapping lives until the arena closes. */
public final class MappedFile {
    private MappedFile() {
    }

    public static MemorySegment map(Path file, Arena arena) {
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException("file not found: " + file);
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        } catch (IOException e) {
            throw new ModelLoadException("cannot map " + file + ": " + e.getMessage(), e);
        }
    }
}
