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
 * dropped too fails the request that needs it, with a message naming the budget. Thread-safe: requests register,
 * the encoder stage encodes, the inference thread reads (and encodes what was dropped since).
 */
final class ImageTokens {
    /** {@code -Dlightllm.vision.features.bytes}: host bytes of encoded features kept (default 1 GiB, ~100 Llava-7B images), read when a model loads. */
    static long featureBudget() {
        return Long.getLong("lightllm.vision.features.bytes", 1L << 30);
    }

    /** {@code -Dlightllm.vision.pixels.bytes}: host bytes of pixel values kept (default 4 GiB, ~3,000 images of 336 x 336), read when a model loads. */
    static long pixelBudget() {
        return Long.getLong("lightllm.vision.pixels.bytes", 4L << 30);
    }

    private final int vocab, perImage;
    private final long featureBudget, pixelBudget;
    private final Map<String, Integer> firstIdByContent = new HashMap<>();
    private final LinkedHashMap<Integer, float[]> pixels = new LinkedHashMap<>(16, 0.75f, true);
    private final LinkedHashMap<Integer, float[]> features = new LinkedHashMap<>(16, 0.75f, true);
    private int nextFirst;
    private long pixelBytes, featureBytes;

    /** The ids of a model's images, and their pixels and features within these budgets (bytes). */
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
            pixelBytes = evict(pixels, pixelBytes, pixelBudget, List.of(first));
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
     * Encodes, with {@code encode}, the images of {@code ids} (placeholder ids, in any order and repeated) that have no
     * features, all in one call, outside this object's lock (so requests register while an image encodes); returns
     * how many images it encoded. Throws IllegalStateException for an image whose pixels were dropped before it was
     * encoded.
     */
    int encodeMissing(int[] ids, Function<List<float[]>, float[]> encode) {
        List<Integer> needed;
        List<float[]> values = new ArrayList<>();
        synchronized (this) {
            needed = withoutFeatures(ids);
            for (int first : needed) {
                float[] px = pixels.get(first);
                if (px == null) {
                    throw new IllegalStateException("image token " + first + " has no image: its pixels were dropped from the image cache "
                            + "(-Dlightllm.vision.pixels.bytes=" + pixelBudget + ") before it was encoded");
                }
                values.add(px);
            }
        }
        if (needed.isEmpty()) {
            return 0;
        }
        float[] all = encode.apply(values);
        int per = all.length / needed.size();
        synchronized (this) {
            for (int j = 0; j < needed.size(); j++) {
                if (features.put(needed.get(j), java.util.Arrays.copyOfRange(all, j * per, (j + 1) * per)) == null) {
                    featureBytes += 4L * per;
                }
            }
            // the images just encoded are the most recent: dropped last
            featureBytes = evict(features, featureBytes, featureBudget, needed);
        }
        return needed.size();
    }

    /** How many distinct images of {@code ids} (placeholder ids) have no features. */
    synchronized int unencoded(int[] ids) {
        return withoutFeatures(ids).size();
    }

    /** The first ids of the distinct images of {@code ids} that have no features, in order of appearance (the caller holds the lock). */
    private List<Integer> withoutFeatures(int[] ids) {
        List<Integer> firsts = new ArrayList<>();
        for (int id : ids) {
            int first = firstOf(id);
            if (!features.containsKey(first) && !firsts.contains(first)) {
                firsts.add(first);
            }
        }
        return firsts;
    }

    /**
     * The feature rows of the ids, row i for ids[i], [ids, width] (the staging array that goes to the device); null
     * when an image among them has no features (never encoded, or dropped since: {@link #encodeMissing} first).
     */
    synchronized FloatArray rows(int[] ids) {
        float[][] of = new float[ids.length][];
        for (int i = 0; i < ids.length; i++) {
            of[i] = features.get(firstOf(ids[i]));
            if (of[i] == null) {
                return null;
            }
        }
        int width = of[0].length / perImage;
        FloatArray rows = FloatArray.allocate(ids.length * width);
        for (int i = 0; i < ids.length; i++) {
            int r = ids[i] - firstOf(ids[i]);
            MemorySegment.copy(of[i], r * width, rows.segment(), ValueLayout.JAVA_FLOAT, (long) i * width * Float.BYTES, width);
        }
        return rows;
    }

    /** The first id of the image a placeholder id belongs to. */
    private int firstOf(int id) {
        if (!isPlaceholder(id)) {
            throw new IllegalStateException("token " + id + " is no image token");
        }
        return vocab + (id - vocab) / perImage * perImage;
    }

    /** Drops the least recently used entries until {@code bytes} fits {@code budget}, never those of {@code keep}; the bytes left. */
    private static long evict(LinkedHashMap<Integer, float[]> map, long bytes, long budget, List<Integer> keep) {
        var it = map.entrySet().iterator();
        while (bytes > budget && it.hasNext()) {
            var e = it.next();
            if (keep.contains(e.getKey())) {
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
