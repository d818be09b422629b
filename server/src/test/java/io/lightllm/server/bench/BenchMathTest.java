package io.lightllm.server.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The benchmark's statistics and length sampling, against values computed by hand (or by numpy, as noted). */
class BenchMathTest {
    @Test
    void percentilesInterpolateLikeNumpy() {
        double[] v = {1, 2, 3, 4};
        assertEquals(2.5, Stat.percentile(v, 50), 1e-12);
        assertEquals(3.97, Stat.percentile(v, 99), 1e-12); // numpy.percentile([1, 2, 3, 4], 99) = 3.97
        assertEquals(4, Stat.percentile(new double[] {4}, 99), 0);
    }

    @Test
    void statIsInMillisecondsWithPopulationStd() {
        Stat s = Stat.ofSeconds(new double[] {0.001, 0.003, Double.NaN});
        assertEquals(2, s.count(), "NaN (no TPOT for one-token outputs) is left out");
        assertEquals(2, s.mean(), 1e-12);
        assertEquals(2, s.median(), 1e-12);
        assertEquals(1, s.std(), 1e-12);
        assertEquals(2.98, s.p99(), 1e-12);
    }

    @Test
    void shareGptLikeLengthsHaveTheWantedMeansWhenTheContextIsLarge() {
        List<LengthSampler.Lengths> l = LengthSampler.sample(ServingBenchConfig.Dataset.SHAREGPT_LIKE, 20000, 200, 180, 1 << 20, new Random(1));
        double in = l.stream().mapToInt(LengthSampler.Lengths::input).average().orElseThrow();
        double out = l.stream().mapToInt(LengthSampler.Lengths::output).average().orElseThrow();
        // sd of a log-normal with sigma 1 is 1.31 x its mean, so the mean of 20000 draws has a 0.93% standard error: 4% is over 4 of them
        assertEquals(200, in, 200 * 0.04);
        assertEquals(180, out, 180 * 0.04);
    }

    @Test
    void shareGptLikeLengthsFitTheContext() {
        for (LengthSampler.Lengths l : LengthSampler.sample(ServingBenchConfig.Dataset.SHAREGPT_LIKE, 2000, 200, 180, 512, new Random(2))) {
            assertTrue(l.input() + l.output() <= 512 && l.input() >= 4 && l.output() >= 4, l.toString());
        }
    }

    @Test
    void fixedLengthsPastTheContextAreRefusedWithTheFlags() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LengthSampler.sample(ServingBenchConfig.Dataset.FIXED, 1, 400, 200, 512, new Random(0)));
        assertTrue(e.getMessage().contains("--input-len 400 + --output-len 200"), e.getMessage());
    }

    @Test
    void badConfigsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> ServingBenchConfig.Endpoint.parse("vllm"));
        assertThrows(IllegalArgumentException.class, () -> ServingBenchConfig.Dataset.parse("alpaca"));
        IllegalArgumentException noFile = assertThrows(IllegalArgumentException.class, () -> new ServingBenchConfig(java.net.URI.create("http://x"),
                ServingBenchConfig.Endpoint.OPENAI, null, 1, 0, 1, 1, ServingBenchConfig.Dataset.SHAREGPT, 0, 0, java.time.Duration.ofSeconds(1)));
        assertTrue(noFile.getMessage().contains("--dataset-path"), noFile.getMessage());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ServingBenchConfig(java.net.URI.create("ftp://x"),
                ServingBenchConfig.Endpoint.OPENAI, null, 1, 0, 1, 1, ServingBenchConfig.Dataset.FIXED, 0, 0, java.time.Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("--url"), e.getMessage());
    }
}
