package io.lightllm.server.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Draws each request's prompt and output length.
 *
 * <p>{@code fixed}: every request asks for exactly (inputLen, outputLen). {@code sharegpt-like}: a
 * seeded log-normal for each length, with inputLen and outputLen as the means before clipping (about
 * 200 and 180 in ShareGPT under Llama tokenizers) and spreads of sigma 1.0 for prompts and 0.8 for
 * outputs, which give ShareGPT's long right tail (many short turns, a few long ones). This is a chosen
 * shape, not a fit to the data set, which the benchmark cannot download. Like vLLM's ShareGPT filter,
 * lengths under 4 tokens are raised to 4 and pairs that do not fit the context are drawn again.
 */
final class LengthSampler {
    /** A request's wanted lengths. */
    record Lengths(int input, int output) { }

    static final double INPUT_SIGMA = 1.0;
    static final double OUTPUT_SIGMA = 0.8;
    static final int MIN_LEN = 4;
    /** Redraws of one pair before giving up: a context that rejects almost every pair is a configuration error. */
    private static final int MAX_DRAWS = 1000;

    private LengthSampler() {
    }

    static List<Lengths> sample(ServingBenchConfig.Dataset dataset, int n, int inputLen, int outputLen, int context, Random rng) {
        List<Lengths> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(dataset == ServingBenchConfig.Dataset.FIXED ? fixed(inputLen, outputLen, context)
                    : logNormalPair(inputLen, outputLen, context, rng));
        }
        return out;
    }

    private static Lengths fixed(int input, int output, int context) {
        if (input + output > context) {
            throw new IllegalArgumentException("--input-len " + input + " + --output-len " + output + " exceeds the model's context of "
                    + context + " tokens");
        }
        return new Lengths(input, output);
    }

    private static Lengths logNormalPair(int meanIn, int meanOut, int context, Random rng) {
        for (int draw = 0; draw < MAX_DRAWS; draw++) {
            int in = Math.max(MIN_LEN, (int) Math.round(logNormal(meanIn, INPUT_SIGMA, rng)));
            int out = Math.max(MIN_LEN, (int) Math.round(logNormal(meanOut, OUTPUT_SIGMA, rng)));
            if (in + out <= context) {
                return new Lengths(in, out);
            }
        }
        throw new IllegalArgumentException("the model's context of " + context + " tokens rejects nearly every sharegpt-like length pair with means "
                + meanIn + "/" + meanOut + "; lower --input-len/--output-len or use --dataset fixed");
    }

    /** A log-normal draw with the given mean: mu = ln(mean) - sigma^2/2. */
    static double logNormal(double mean, double sigma, Random rng) {
        double mu = Math.log(mean) - sigma * sigma / 2;
        return Math.exp(mu + sigma * rng.nextGaussian());
    }
}
