import io.lightllm.engine.Engine;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.SamplingParams;
import io.lightllm.engine.TokenEvent;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.vision.VisionLanguageModel;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Flow;

/**
 * What a running stream sees while another request's image is encoded: a text prompt decodes 400 tokens; after its
 * 40th, a prompt with one new image arrives. Prints the stream's median gap between tokens before the image, its
 * tokens and largest gap while the image request waits for its first token, and that request's time to first token.
 *
 * java -cp 'server/target/lib/*:server/target/classes:...' bench/vision/EncoderOverlap.java CONFIG [DEVICE]
 */
public class EncoderOverlap {
    public static void main(String[] args) throws Exception {
        String device = args.length > 1 ? args[1] : "jvm";
        try (CausalLM model = Models.dummy(args[0], DType.BF16, Devices.get(device), Models.Quantization.NONE, true);
             Engine engine = Engine.start(model, EngineConfig.of(4096, Set.of()), null)) {
            VisionLanguageModel llava = (VisionLanguageModel) model.unwrap();
            Random random = new Random(7);
            // warm-up: an image prompt and a text prompt
            engine.generate(imagePrompt(llava, random), SamplingParams.builder().maxNewTokens(2).ignoreEos(true).build());
            engine.generate(textPrompt(random), SamplingParams.builder().maxNewTokens(8).ignoreEos(true).build());

            List<Long> stream = new CopyOnWriteArrayList<>();
            CompletableFuture<Void> streamDone = new CompletableFuture<>();
            engine.submit(textPrompt(random), SamplingParams.builder().maxNewTokens(400).ignoreEos(true).build()).subscribe(new Flow.Subscriber<>() {
                public void onSubscribe(Flow.Subscription s) { s.request(Long.MAX_VALUE); }
                public void onNext(TokenEvent e) {
                    if (e.token() >= 0) { stream.add(System.nanoTime()); }
                    if (e.last()) { streamDone.complete(null); }
                }
                public void onError(Throwable t) { streamDone.completeExceptionally(t); }
                public void onComplete() { }
            });
            while (stream.size() < 40) {
                Thread.sleep(1);
            }
            int[] withImage = imagePrompt(llava, random);
            long submitted = System.nanoTime();
            engine.generate(withImage, SamplingParams.builder().maxNewTokens(1).ignoreEos(true).build());
            long firstToken = System.nanoTime();
            streamDone.get();
            // gaps between the stream's tokens: before the image arrived, and from its arrival to the stream's first token
            // after the image request's first (the stall, if the stream waited for the encoder)
            List<Long> gapsBefore = new ArrayList<>();
            long longest = 0;
            int during = 0;
            long previous = 0;
            for (long t : stream) {
                if (t <= submitted) {
                    if (previous != 0) {
                        gapsBefore.add(t - previous);
                    }
                } else if (previous != 0 && previous <= firstToken) {
                    longest = Math.max(longest, t - Math.max(previous, submitted));
                    during += t <= firstToken ? 1 : 0;
                }
                previous = t;
            }
            System.out.printf("device %s: stream median gap %.1f ms before the image; while the image request waited %.0f ms for its first token"
                    + " the stream produced %d tokens, longest gap %.0f ms%n", device, median(gapsBefore) / 1e6, (firstToken - submitted) / 1e6,
                    during, longest / 1e6);
        }
    }

    private static int[] textPrompt(Random random) {
        return random.ints(16, 3, 32000).toArray();
    }

    /** A chat-like prompt around one new random image (its pixels in [-1, 1]). */
    private static int[] imagePrompt(VisionLanguageModel llava, Random random) {
        int side = llava.imageSize();
        float[] pixels = new float[3 * side * side];
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = random.nextFloat() * 2 - 1;
        }
        int[] prompt = {1, 3148, 1001, llava.imageTokenIndex(), 13, 5618, 338, 445, 29973};
        return llava.withImages(prompt, List.of(pixels));
    }

    private static double median(List<Long> values) {
        long[] v = values.stream().mapToLong(Long::longValue).toArray();
        Arrays.sort(v);
        return v.length == 0 ? 0 : v[v.length / 2];
    }
}
