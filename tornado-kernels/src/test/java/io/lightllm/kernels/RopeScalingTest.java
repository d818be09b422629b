package io.lightllm.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.FloatArray;
import java.io.IOException;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class RopeScalingTest {
    // Expected values are derived by hand below and written to 8 significant digits; the table
    // is one double computation rounded to float, so it agrees to float precision (6e-8 relative).
    private static final double RTOL = 2e-7;

    @Test
    void defaultIsThetaToTheMinusTwoIOverDim() {
        // dim 4: theta^0 and theta^(-2/4) = 1 / sqrt(10000)
        assertTable(new double[] {1, 0.01}, RopeScaling.none(10000).inverseFrequencies(4, 0));
    }

    @Test
    void linearDividesEveryFrequencyByTheFactor() {
        assertTable(new double[] {0.25, 0.0025}, RopeScaling.linear(10000, 4).inverseFrequencies(4, 0));
    }

    @Test
    void dynamicNtkGrowsTheBaseOnlyBeyondTheTrainedLength() {
        RopeScaling dynamic = RopeScaling.dynamicNtk(10000, 2, 100);
        assertTable(new double[] {1, 0.01}, dynamic.inverseFrequencies(4, 100));
        // seqLen 200: base = 10000 * (2 * 200 / 100 - (2 - 1))^(4 / (4 - 2)) = 10000 * 3^2 = 90000; 90000^(-1/2) = 1/300
        assertTable(new double[] {1, 1.0 / 300}, dynamic.inverseFrequencies(4, 200));
    }

    @Test
    void llama3FromTheFixtureConfig() throws IOException {
        // rope_parameters of the tiny llama3 fixture: theta 500000, factor 8, low 1, high 4, original 256; head_dim 16
        RopeScaling s = RopeScaling.fromConfig(ropeParameters("llama3_tied"), 10000, 1024);
        assertEquals(RopeScaling.Type.LLAMA3, s.type());
        FloatArray inv = s.inverseFrequencies(16, 0);
        // Wavelength limits: 256 / high = 64 and 256 / low = 256. Unscaled inv_i = 500000^(-i/8).
        // i = 0: inv 1, wavelength 2 pi = 6.28 < 64: kept.
        assertClose(1.0, inv.get(0), "i=0");
        // i = 1: inv = 500000^(-1/8) = 0.19392274, wavelength 32.40 < 64: kept.
        assertClose(0.19392274, inv.get(1), "i=1");
        // i = 2: inv = 500000^(-1/4) = 1 / 26.591479 = 0.037606031, wavelength 167.08 in [64, 256]:
        // smooth = (256 / 167.07919 - 1) / (4 - 1) = 0.17740251;
        // inv * ((1 - smooth) / 8 + smooth) = 0.037606031 * 0.28022720 = 0.010538233.
        assertClose(0.010538233, inv.get(2), "i=2");
        // i = 4: inv = 500000^(-1/2) = sqrt(2) / 1000, wavelength 4442.9 > 256: divided by 8 = 1.7677670e-4.
        assertClose(1.7677670e-4, inv.get(4), "i=4");
        // i = 7: inv = 500000^(-7/8) = 1.0313385e-5, divided by 8 = 1.2891732e-6.
        assertClose(1.2891732e-6, inv.get(7), "i=7");
        assertEquals(1f, s.attentionScaling());
    }

    @Test
    void configParsingDefaultsAndErrors() {
        assertEquals(RopeScaling.none(10000), RopeScaling.fromConfig(null, 10000, 2048));
        assertEquals(RopeScaling.linear(10000, 2), RopeScaling.fromConfig(Map.of("type", "linear", "factor", 2.0), 10000, 2048));
        assertEquals(RopeScaling.dynamicNtk(1e6, 4, 2048),
                RopeScaling.fromConfig(Map.of("rope_type", "dynamic", "factor", 4, "rope_theta", 1e6), 10000, 2048));
        assertEquals("unsupported rope scaling type 'yarn' (supported: default, linear, dynamic, llama3)",
                assertThrows(IllegalArgumentException.class, () -> RopeScaling.fromConfig(Map.of("rope_type", "yarn", "factor", 4), 1e4, 1))
                        .getMessage());
        assertEquals("rope scaling parameter 'factor' must be a number, got null",
                assertThrows(IllegalArgumentException.class, () -> RopeScaling.fromConfig(Map.of("rope_type", "linear"), 1e4, 1))
                        .getMessage());
    }

    private static void assertTable(double[] expected, FloatArray actual) {
        assertEquals(expected.length, actual.getSize());
        for (int i = 0; i < expected.length; i++) {
            assertClose(expected[i], actual.get(i), "index " + i);
        }
    }

    private static void assertClose(double expected, float actual, String what) {
        assertEquals(expected, actual, RTOL * Math.abs(expected), what);
    }

    /** The flat "rope_parameters" object of a fixture's config.json (numbers and strings only). */
    private static Map<String, Object> ropeParameters(String fixture) throws IOException {
        String json = Files.readString(SharedData.tinyFixture(fixture).resolve("config.json"));
        Matcher block = Pattern.compile("\"rope_parameters\"\\s*:\\s*\\{([^}]*)}").matcher(json);
        if (!block.find()) {
            throw new IllegalStateException("no rope_parameters in " + fixture);
        }
        Map<String, Object> params = new HashMap<>();
        Matcher entry = Pattern.compile("\"(\\w+)\"\\s*:\\s*(\"([^\"]*)\"|[-0-9.eE+]+)").matcher(block.group(1));
        while (entry.find()) {
            params.put(entry.group(1), entry.group(3) != null ? entry.group(3) : (Object) Double.parseDouble(entry.group(2)));
        }
        return params;
    }
}
