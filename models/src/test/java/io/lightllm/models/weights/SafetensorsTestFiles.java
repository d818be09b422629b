package io.lightllm.models.weights;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.models.config.JsonFields;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Writes small .safetensors files for tests (the format by hand: length, JSON header, data). */
public final class SafetensorsTestFiles {
    private SafetensorsTestFiles() {
    }

    /** A file holding copies of {@code tensors}, laid out back to back. */
    public static void write(Path file, List<Tensor> tensors) throws IOException {
        ObjectNode header = JsonFields.mapper().createObjectNode();
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", t.type().name());
            var shape = e.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            e.putArray("data_offsets").add(offset).add(offset + t.data().byteSize());
            offset += t.data().byteSize();
        }
        byte[] data = new byte[(int) offset];
        int at = 0;
        for (Tensor t : tensors) {
            byte[] b = t.data().toArray(ValueLayout.JAVA_BYTE);
            System.arraycopy(b, 0, data, at, b.length);
            at += b.length;
        }
        write(file, header.toString(), data);
    }

    /** A file with exactly this header text and data section. */
    static void write(Path file, String headerJson, byte[] data) throws IOException {
        byte[] header = headerJson.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(header.length).put(header).put(data);
        Files.write(file, buf.array());
    }
}
