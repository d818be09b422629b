package io.lightllm.tornado.compiler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.Float8Array;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fp8 e4m3 ("fn") conversion against torch's {@code float8_e4m3fn}
 * ({@code fp8_e4m3fn.json}, made by {@code scripts/fixtures/make_fp8_e4m3.py}): every code's
 * value, and the code of about 2,000 floats (random normals at nine scales, every tie between
 * neighbouring codes and the floats beside it, the subnormal boundary, +-448 and past it, zeros,
 * infinities, NaNs). Out-of-range values are expected saturated to +-448: the fixture holds
 * torch's code of clamp(x, -448, 448), which the torch that made it (2.13) also gives unclamped.
 * Then the same through compiled kernels, whose loads, stores and {@link KMath} calls go through
 * the C helpers of the OpenCL and CUDA preludes: on the JVM and every accelerator (PoCL here),
 * and through nvcc for sm_90.
 */
class Fp8E4m3Test {
    static final KernelRef WIDEN = KernelRef.of(Fp8E4m3Test.class, "widen");
    static final KernelRef NARROW = KernelRef.of(Fp8E4m3Test.class, "narrow");
    static final KernelRef BY_KMATH = KernelRef.of(Fp8E4m3Test.class, "byKMath");
    static final KernelRef VECTORS = KernelRef.of(Fp8E4m3Test.class, "vectors");

    /** Reads a dtype-generic array as float: an fp8 array through lj_e4m3_to_f32. */
    public static void widen(FloatArray out, NativeArray in, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, in.getFloat(i));
        }
    }

    /** Stores floats into a dtype-generic array: an fp8 array through lj_f32_to_e4m3. */
    public static void narrow(NativeArray out, FloatArray in, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.setFloat(i, in.get(i));
        }
    }

    /** The KMath intrinsics on plain arrays: codes[i] = floatToE4m3(in[i]) (sign-extended), decoded[i] = e4m3ToFloat(i). */
    public static void byKMath(IntArray codes, FloatArray decoded, FloatArray in, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            codes.set(i, KMath.floatToE4m3(in.get(i)));
            decoded.set(i, KMath.e4m3ToFloat((byte) i));
        }
    }

    /**
     * Vector accesses of 8, 4 and 2 elements: out[i] = in[i] through getFloats, then back into fp8
     * through setFloats; and the raw codes (getBits, sign-extended).
     */
    public static void vectors(Float8Array out, FloatArray widened, IntArray raw, Float8Array in, int blocks) {
        for (@Parallel int b = 0; b < blocks; b++) {
            float[] v = new float[8];
            in.getFloats(8 * b, v, 0, 8);
            in.getFloats(8 * b + 4, v, 4, 4);
            in.getFloats(8 * b + 6, v, 6, 2);
            for (int e = 0; e < 8; e++) {
                widened.set(8 * b + e, v[e]);
                raw.set(8 * b + e, in.getBits(8 * b + e));
            }
            out.setFloats(8 * b, v, 0, 8);
        }
    }

    /** The fixture: each code's value as float bits, and (float bits, code) samples. */
    record Fixture(int[] decode, int[] sampleBits, int[] sampleCodes) {
        static Fixture read() {
            String json;
            try (InputStream in = Fp8E4m3Test.class.getResourceAsStream("/fp8_e4m3fn.json")) {
                json = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            Matcher m = Pattern.compile("\"decode\": \\[([^\\]]*)]").matcher(json);
            assertTrue(m.find(), "decode table");
            int[] decode = Stream.of(m.group(1).split(",")).mapToInt(s -> (int) Long.parseLong(s.trim())).toArray();
            List<int[]> pairs = new ArrayList<>();
            Matcher p = Pattern.compile("\\[(\\d+), (\\d+)]").matcher(json.substring(json.indexOf("\"encode\"")));
            while (p.find()) {
                pairs.add(new int[] {(int) Long.parseLong(p.group(1)), Integer.parseInt(p.group(2))});
            }
            assertEquals(256, decode.length);
            assertTrue(pairs.size() > 2000, pairs.size() + " samples");
            return new Fixture(decode, pairs.stream().mapToInt(q -> q[0]).toArray(), pairs.stream().mapToInt(q -> q[1]).toArray());
        }

        FloatArray samples() {
            FloatArray a = FloatArray.allocate(sampleBits.length);
            for (int i = 0; i < sampleBits.length; i++) {
                a.set(i, Float.intBitsToFloat(sampleBits[i]));
            }
            return a;
        }
    }

    private static final Fixture FIXTURE = Fixture.read();

    static Stream<String> deviceIds() {
        return Stream.concat(Stream.of("jvm"), TestDevices.accelerators().stream());
    }

    /** A value against torch's: the same bits, or both NaN of the same sign (NaN payloads are not part of the format). */
    private static void assertDecoded(int code, float actual, String what) {
        float expected = Float.intBitsToFloat(FIXTURE.decode[code]);
        if (Float.isNaN(expected)) {
            assertTrue(Float.isNaN(actual), what + ": code 0x" + Integer.toHexString(code) + " is NaN, got " + actual);
            assertEquals(FIXTURE.decode[code] < 0, Float.floatToRawIntBits(actual) < 0, what + ": sign of NaN code " + code);
        } else {
            assertEquals(FIXTURE.decode[code], Float.floatToRawIntBits(actual),
                    what + ": code 0x" + Integer.toHexString(code) + " should be " + expected + ", got " + actual);
        }
    }

    private static void assertEncoded(int sample, int actualCode, String what) {
        float x = Float.intBitsToFloat(FIXTURE.sampleBits[sample]);
        assertEquals(FIXTURE.sampleCodes[sample], actualCode & 0xff,
                what + ": " + x + " (0x" + Integer.toHexString(FIXTURE.sampleBits[sample]) + ") should be code 0x"
                        + Integer.toHexString(FIXTURE.sampleCodes[sample]) + ", got 0x" + Integer.toHexString(actualCode & 0xff));
    }

    @Test
    void kmathDecodesEveryCodeAsTorch() {
        for (int c = 0; c < 256; c++) {
            assertDecoded(c, KMath.e4m3ToFloat((byte) c), "KMath");
        }
        assertEquals(448f, KMath.e4m3ToFloat((byte) 0x7e));
        assertEquals(0x1p-9f, KMath.e4m3ToFloat((byte) 0x01));
    }

    @Test
    void kmathEncodesTheSamplesAsTorchWithSaturation() {
        for (int i = 0; i < FIXTURE.sampleBits.length; i++) {
            assertEncoded(i, KMath.floatToE4m3(Float.intBitsToFloat(FIXTURE.sampleBits[i])), "KMath");
        }
        // the choices this project makes where the format leaves one: saturation, NaN, -0
        assertEquals(0x7e, KMath.floatToE4m3(1e9f) & 0xff);
        assertEquals(0xfe, KMath.floatToE4m3(Float.NEGATIVE_INFINITY) & 0xff);
        assertEquals(0x7f, KMath.floatToE4m3(Float.NaN) & 0xff);
        assertEquals(0x80, KMath.floatToE4m3(-0f) & 0xff);
    }

    @Test
    void everyCodeRoundTripsThroughTheArray() {
        Float8Array a = Float8Array.allocate(256);
        for (int c = 0; c < 256; c++) {
            a.set(c, KMath.e4m3ToFloat((byte) c));
        }
        for (int c = 0; c < 256; c++) {
            // NaN codes come back as the NaN of their sign, which is the code itself
            assertEquals(c, a.getBits(c) & 0xff, "code 0x" + Integer.toHexString(c));
            assertDecoded(c, a.get(c), "Float8Array");
        }
        assertEquals(DType.F8_E4M3, NativeArray.allocate(DType.F8_E4M3, 4).dtype());
        assertEquals(DType.F8_E4M3, DType.fromName("F8_E4M3"));
        assertEquals(DType.F8_E4M3, DType.fromName("fp8"));
        assertEquals(1, DType.F8_E4M3.bytes());
    }

    /** Loads and stores of fp8 arrays in compiled kernels, and the KMath intrinsics, give torch's values and codes. */
    @ParameterizedTest
    @MethodSource("deviceIds")
    void compiledKernelsDecodeAndEncodeAsTorch(String id) {
        Device dev = Devices.get(id);
        Float8Array codes = Float8Array.allocate(256);
        for (int c = 0; c < 256; c++) {
            codes.segment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, c, (byte) c);
        }
        try (DeviceBuffer in = copyOf(dev, codes); DeviceBuffer out = dev.allocate(DType.F32, 256)) {
            dev.launch(WIDEN, Grid.of(256), out, in, 256);
            FloatArray got = (FloatArray) dev.download(out);
            for (int c = 0; c < 256; c++) {
                assertDecoded(c, got.get(c), id + " load");
            }
        }
        FloatArray samples = FIXTURE.samples();
        int n = samples.getSize();
        try (DeviceBuffer in = copyOf(dev, samples); DeviceBuffer out = dev.allocate(DType.F8_E4M3, n)) {
            dev.launch(NARROW, Grid.of(n), out, in, n);
            Float8Array got = (Float8Array) dev.download(out);
            for (int i = 0; i < n; i++) {
                assertEncoded(i, got.getBits(i), id + " store");
            }
        }
        try (DeviceBuffer in = copyOf(dev, samples); DeviceBuffer c = dev.allocate(DType.I32, n); DeviceBuffer d = dev.allocate(DType.F32, n)) {
            dev.launch(BY_KMATH, Grid.of(256), c, d, in, 256);
            IntArray gotCodes = (IntArray) dev.download(c);
            FloatArray gotValues = (FloatArray) dev.download(d);
            for (int i = 0; i < 256; i++) {
                assertEncoded(i, gotCodes.get(i), id + " KMath.floatToE4m3");
                assertDecoded(i, gotValues.get(i), id + " KMath.e4m3ToFloat");
            }
        }
    }

    /** getFloats/setFloats of an fp8 array (one word load per 4 codes on CUDA, element by element on OpenCL) and getBits keep every code. */
    @ParameterizedTest
    @MethodSource("deviceIds")
    void vectorAccessesKeepEveryCode(String id) {
        Device dev = Devices.get(id);
        Float8Array codes = Float8Array.allocate(256);
        for (int c = 0; c < 256; c++) {
            codes.segment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, c, (byte) (c * 37 + 11)); // every code, shuffled
        }
        try (DeviceBuffer in = copyOf(dev, codes); DeviceBuffer out = dev.allocate(DType.F8_E4M3, 256);
             DeviceBuffer widened = dev.allocate(DType.F32, 256); DeviceBuffer raw = dev.allocate(DType.I32, 256)) {
            dev.launch(VECTORS, Grid.of(32), out, widened, raw, in, 32);
            Float8Array back = (Float8Array) dev.download(out);
            FloatArray values = (FloatArray) dev.download(widened);
            IntArray bits = (IntArray) dev.download(raw);
            for (int i = 0; i < 256; i++) {
                int code = codes.getBits(i) & 0xff;
                assertDecoded(code, values.get(i), id + " getFloats element " + i);
                assertEquals(code, back.getBits(i) & 0xff, id + " setFloats element " + i);
                assertEquals((byte) code, bits.get(i), id + " getBits element " + i);
            }
        }
    }

    @Test
    void kernelsCompileToCuda() {
        List<KernelSource> sources = List.of(
                KernelCompiler.compile(WIDEN, Dialect.CUDA, new DType[] {DType.F32, DType.F8_E4M3, null}),
                KernelCompiler.compile(NARROW, Dialect.CUDA, new DType[] {DType.F8_E4M3, DType.F32, null}),
                KernelCompiler.compile(BY_KMATH, Dialect.CUDA, null),
                KernelCompiler.compile(VECTORS, Dialect.CUDA, null));
        for (KernelSource s : sources) {
            CudaCheck.assertCompiles(s.source(), s.entryName());
        }
    }

    private static DeviceBuffer copyOf(Device device, NativeArray host) {
        DeviceBuffer b = device.allocate(host.dtype(), host.getSize());
        device.copyIn(host, b);
        return b;
    }
}
