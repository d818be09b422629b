package io.lightllm.models.weights;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Writes .safetensors files with a header given by hand, for tests of malformed files ({@link SafetensorsWriter} writes real ones). */
final class SafetensorsTestFiles {
    private SafetensorsTestFiles() {
    }

    /** A file with exactly this header text and data section. */
    static void write(Path file, String headerJson, byte[] data) throws IOException {
        byte[] header = headerJson.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(header.length).put(header).put(data);
        Files.write(file, buf.array());
    }
}
