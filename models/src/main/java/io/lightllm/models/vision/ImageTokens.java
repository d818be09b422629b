package io.lightllm.models.vision;

import io.lightllm.tornado.api.FloatArray;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The images a vision model has been given, each a run of placeholder ids past the vocabulary: an image's
 * first id follows from its pixels' SHA-256 (the same image always gets the same ids, so the prefix cache
 * can reuse its KV and never shares it between different images). Pixels and features are kept least
 * recently used first out, each within a byte budget: features dropped are encoded again from the pixels when
 * a step needs them (a request paused and prefilled again, a long queue); only an image whose pixels were
 * dropped too fails the step that needs it, with a message naming the budget. Thread-safe: requests register,
 * the inference thread reads.
 */
final class ImageTokens {
    /** {@code -Dlightllm.vision.features.bytes}: host bytes of encoded features kept (default 1 GiB, ~100 Llava-7B images). */
    static final long FEATURE_BUDGET = Long.getLong("lightllm.vision.features.bytes", 1L << 30);
    /** {@code -Dlightllm.vision.pixels.bytes}: host bytes of pixel values kept (default 4 GiB, ~3,000 images of 336 x 336). */
    static final long PIXEL_BUDGET = Long.getLong("lightllm.vision.pixels.bytes", 4L << 30);

    private final int vocab, perImage;
    private final long featureBudget, pixelBudget;
    private final Map<String, Integer> firstIdByContent = new HashMap<>();
    private final LinkedHashMap<Integer, float[]> pixels = new LinkedHashMap<>(16, 0.75f, true);
    private final LinkedHashMap<Integer, float[]> features = new LinkedHashMap<>(16, 0.75f, true);
    private int nextFirst;
    private long pixelBytes, featureBytes;

    ImageTokens(int vocab, int perImage, long featureBudget, long pixelBudget) {
        this.vocab = vocab;
        this.perImage = perImage;
        this.featureBudget = featureBudget;
        this.pixelBudget = pixelBudget;
        this.nextFirst = vocab;
    }

    /** The ids of an image (the same ids for the same pixels). */
    synchronized int[] register(float[] values) {
        String key = digest(values);
        Integer first = firstIdByContent.get(key);
        if (first == null) {
            if (nextFirst > Integer.MAX_VALUE - perImage) {
                throw new IllegalStateException("no placeholder ids left for more images");
            }
            first = nextFirst;
            nextFirst += perImage;
            firstIdByContent.put(key, first);
        }
        if (pixels.get(first) == null) {
            pixels.put(first, values.clone());
            pixelBytes += 4L * values.length;
            pixelBytes = evict(pixels, pixelBytes, pixelBudget, first);
        }
        int[] ids = new int[perImage];
        for (int i = 0; i < perImage; i++) {
            ids[i] = first + i;
        }
        return ids;
    }

    synchronized boolean isPlaceholder(int id) {
        return id >= vocab && id < nextFirst;
    }

    /**
     * The feature rows of the ids, row i for ids[i], [ids, width] (the staging array that goes to the device);
     * the images without features (never encoded, or dropped) are encoded together by {@code encode} first.
     */
    synchronized FloatArray rows(int[] ids, Function<List<float[]>, float[]> encode) {
        List<Integer> needed = new ArrayList<>();
        int[] firstOf = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (!isPlaceholder(ids[i])) {
                throw new IllegalStateException("token " + ids[i] + " is no image token");
            }
            firstOf[i] = vocab + (ids[i] - vocab) / perImage * perImage;
            if (!features.containsKey(firstOf[i]) && !needed.contains(firstOf[i])) {
                if (!pixels.containsKey(firstOf[i])) {
                    throw new IllegalStateException("image token " + ids[i] + " has no image: its pixels were dropped from the image cache "
                            + "(-Dlightllm.vision.pixels.bytes=" + pixelBudget + ") before it was encoded");
                }
                needed.add(firstOf[i]);
            }
        }
        if (!needed.isEmpty()) {
            float[] all = encode.apply(needed.stream().map(pixels::get).toList());
            int per = all.length / needed.size();
            for (int j = 0; j < needed.size(); j++) {
                features.put(needed.get(j), java.util.Arrays.copyOfRange(all, j * per, (j + 1) * per));
                featureBytes += 4L * per;
            }
        }
        int width = features.get(firstOf[0]).length / perImage;
        FloatArray rows = FloatArray.allocate(ids.length * width);
        for (int i = 0; i < ids.length; i++) {
            int r = ids[i] - firstOf[i];
            MemorySegment.copy(features.get(firstOf[i]), r * width, rows.segment(), ValueLayout.JAVA_FLOAT, (long) i * width * Float.BYTES, width);
        }
        // after the rows are taken: this step's images are the most recent, dropped last
        featureBytes = evict(features, featureBytes, featureBudget, -1);
        return rows;
    }

    /** Drops the least recently used entries until {@code bytes} fits {@code budget}, never {@code keep}; the bytes left. */
    private static long evict(LinkedHashMap<Integer, float[]> map, long bytes, long budget, int keep) {
        var it = map.entrySet().iterator();
        while (bytes > budget && it.hasNext()) {
            var e = it.next();
            if (e.getKey() == keep) {
                continue;
            }
            bytes -= 4L * e.getValue().length;
            it.remove();
        }
        return bytes;
    }

    private static String digest(float[] values) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            ByteBuffer b = ByteBuffer.allocate(values.length * 4);
            b.asFloatBuffer().put(values);
            return java.util.HexFormat.of().formatHex(sha.digest(b.array()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
