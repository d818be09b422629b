package io.lightllm.models.gguf;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelLoadException;
import io.lightllm.kernels.QuantFormat;
import io.lightllm.models.weights.Tensor;
import io.lightllm.models.weights.TensorType;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.HalfArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GGUF parsing on files written by {@link GgufTestWriter}, and the error messages for broken files. */
class GgufFileTest {

    @Test
    void metadataOfEveryValueType(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("m.gguf");
        new GgufTestWriter()
                .u8("a.u8", 200).i16("a.i16", -5).u32("a.u32", 4_000_000_000L).i32("a.i32", -7)
                .f32("a.f32", 1.5f).bool("a.bool", true).string("a.str", "héllo").u64("a.u64", 1L << 40)
                .f64("a.f64", 0.25).stringArray("a.strs", "x", "▁y").floatArray("a.floats", 1f, -2f)
                .intArray("a.ints", 3, -4).nestedArray("a.nested")
                .tensor("t", 0, new long[] {2}, GgufTestWriter.floats(1f, 2f))
                .write(file);
        try (GgufWeights w = GgufWeights.open(file, LoadOptions.quietly())) {
            GgufFile f = w.file();
            assertEquals(3, f.version());
            assertEquals(200, f.metadata().get("a.u8"));
            assertEquals(-5, f.metadata().get("a.i16"));
            assertEquals(4_000_000_000L, f.metadata().get("a.u32"));
            assertEquals(-7, f.getInt("a.i32"));
            assertEquals(1.5f, f.getFloat("a.f32"));
            assertTrue(f.getBoolean("a.bool", false));
            assertEquals("héllo", f.getString("a.str"));
            assertEquals(1L << 40, f.metadata().get("a.u64"));
            assertEquals(0.25, f.metadata().get("a.f64"));
            assertArrayEquals(new String[] {"x", "▁y"}, f.getStringArray("a.strs"));
            assertArrayEquals(new float[] {1f, -2f}, f.getFloatArray("a.floats"));
            assertArrayEquals(new int[] {3, -4}, f.getIntArray("a.ints"));
            Object[] nested = (Object[]) f.metadata().get("a.nested");
            assertArrayEquals(new byte[] {1, 2}, (byte[]) nested[0]);
            assertArrayEquals(new byte[] {3}, (byte[]) nested[1]);

            ModelLoadException e = assertThrows(ModelLoadException.class, () -> f.getInt("a.u64"));
            assertTrue(e.getMessage().contains("not an int"), e.getMessage());
            e = assertThrows(ModelLoadException.class, () -> f.getString("missing.key"));
            assertEquals("GGUF metadata key missing.key missing in " + file, e.getMessage());
        }
    }

    @Test
    void floatTensorsInHfOrderWithCustomAlignment(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("t.gguf");
        float[] values = {0f, 1f, 2f, 3f, 4f, 5f}; // ne = [3, 2]: 2 rows of 3
        short[] halves = new short[6];
        short[] bf16 = new short[6];
        for (int i = 0; i < 6; i++) {
            halves[i] = Float.floatToFloat16(values[i] / 2);
            bf16[i] = (short) (Float.floatToRawIntBits(-values[i]) >>> 16);
        }
        new GgufTestWriter().alignment(64)
                .tensor("a.weight", 0, new long[] {3, 2}, GgufTestWriter.floats(values))
                .tensor("b.weight", 1, new long[] {3, 2}, GgufTestWriter.shorts(halves))
                .tensor("c.weight", 30, new long[] {3, 2}, GgufTestWriter.shorts(bf16))
                .write(file);
        try (GgufWeights w = GgufWeights.open(file, LoadOptions.quietly())) {
            Tensor a = w.get("a.weight");
            assertArrayEquals(new long[] {2, 3}, a.shape());
            assertArrayEquals(values, ((FloatArray) a.view()).toArray());
            assertEquals(0, a.data().address() % 64); // the mapping starts on a page, the data section on 64
            HalfArray b = assertInstanceOf(HalfArray.class, w.get("b.weight").view());
            assertEquals(2.5f, b.getFloat(5));
            BFloat16Array c = assertInstanceOf(BFloat16Array.class, w.get("c.weight").view());
            assertEquals(-4f, c.getFloat(4));
        }
    }

    @Test
    void q8_0DequantisesAndKeepsRawBlocks(@TempDir Path dir) throws IOException {
        // 2 rows of 64 values = 4 blocks, quantised here as ggml's quantize_row_q8_0 does: d = amax/127, q = round(x/d)
        Random rnd = new Random(7);
        float[] x = new float[128];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        ByteBuffer blocks = ByteBuffer.allocate(4 * QuantFormat.Q8_0.blockBytes()).order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[128];
        float[] step = new float[4];
        for (int b = 0; b < 4; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[b * 32 + j]));
            }
            float d = amax / 127;
            step[b] = d;
            short dHalf = Float.floatToFloat16(d);
            blocks.putShort(dHalf);
            for (int j = 0; j < 32; j++) {
                byte q = (byte) Math.round(x[b * 32 + j] / d);
                blocks.put(q);
                expected[b * 32 + j] = Float.float16ToFloat(dHalf) * q;
            }
        }
        Path file = dir.resolve("q.gguf");
        new GgufTestWriter().tensor("blk.0.ffn_up.weight", 8, new long[] {64, 2}, blocks.array()).write(file);
        try (GgufWeights w = GgufWeights.open(file, LoadOptions.quietly())) {
            Tensor t = w.get("model.layers.0.mlp.up_proj.weight");
            assertEquals(TensorType.Q8_0, t.type());
            assertArrayEquals(new long[] {2, 64}, t.shape());
            assertEquals(4 * 34, t.data().byteSize());
            assertArrayEquals(expected, t.toFloat().toArray());
            // rounding to q costs at most d/2; storing d as f16 (relative error <= 2^-11) costs at most
            // |q| * d * 2^-11 <= 127 * d * 2^-11
            for (int i = 0; i < 128; i++) {
                float d = step[i / 32];
                assertEquals(x[i], expected[i], d * (0.5f + 127f / 2048f), "element " + i);
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, t::view);
            assertTrue(e.getMessage().contains("is Q8_0"), e.getMessage());
        }
    }

    @Test
    void unsupportedTensorType(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("k.gguf");
        new GgufTestWriter().tensor("blk.0.attn_q.weight", 10, new long[] {256, 4}, new byte[4 * 84]).write(file);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> GgufWeights.open(file, LoadOptions.quietly()));
        assertEquals("tensor blk.0.attn_q.weight in " + file + " has GGML type Q2_K, which is not supported "
                + "(supported: F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K, I8, I32, I64)", e.getMessage());
    }

    @Test
    void truncatedAndForeignFiles(@TempDir Path dir) throws IOException {
        byte[] whole = Files.readAllBytes(SharedData.model("stories260K").resolve("stories260K.gguf"));
        Path file = dir.resolve("cut.gguf");
        Files.write(file, Arrays.copyOf(whole, 10_000)); // inside the vocabulary
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> GgufWeights.open(file, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith(file + " is truncated: its GGUF header runs past"), e.getMessage());

        Files.write(file, Arrays.copyOf(whole, whole.length - 100)); // inside the last tensor
        e = assertThrows(ModelLoadException.class, () -> GgufWeights.open(file, LoadOptions.quietly()));
        assertTrue(e.getMessage().startsWith(file + " is truncated: tensor blk.4.ffn_norm.weight ends at byte"), e.getMessage());

        Files.writeString(file, "{\"not\": \"gguf\"}");
        e = assertThrows(ModelLoadException.class, () -> GgufWeights.open(file, LoadOptions.quietly()));
        assertEquals(file + " is not a GGUF file (bad magic)", e.getMessage());
    }
}
