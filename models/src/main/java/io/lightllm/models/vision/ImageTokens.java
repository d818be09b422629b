package io.lightllm.models.vision;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * The images a vision model has been given, each a run of placeholder ids past the vocabulary: an image's
 * first id follows from its pixels' SHA-256 (the same image always gets the same ids, so the prefix cache
 * can reuse its KV and never shares it between different images), and its features once encoded. Pixels and
 * features are kept, least recently used first out, within a byte budget; an image needed by a step after it
 * was dropped is an error naming the budget. Thread-safe: requests register, the inference thread reads.
 */
final class ImageTokens {
    /** {@code -Dlightllm.vision.cache.bytes}: host bytes of pixels and features kept (default 1 GiB). */
    static final long DEFAULT_BUDGET_BYTES = Long.getLong("lightllm.vision.cache.bytes", 1L << 30);

    private static final class Image {
        final int first;
        final float[] pixels;
        float[] features;

        Image(int first, float[] pixels) {
            this.first = first;
            this.pixels = pixels;
        }

        long bytes() {
            return 4L * (pixels.length + (features == null ? 0 : features.length));
        }
    }

    private final int vocab, perImage;
    private final long budget;
    private final Map<String, Integer> firstIdByContent = new HashMap<>();
    private final TreeMap<Integer, Image> byFirstId = new TreeMap<>();
    private final LinkedHashMap<Integer, Image> recent = new LinkedHashMap<>(16, 0.75f, true);
    private int nextFirst;
    private long bytes;

    ImageTokens(int vocab, int perImage, long budget) {
        this.vocab = vocab;
        this.perImage = perImage;
        this.budget = budget;
        this.nextFirst = vocab;
    }

    /** The ids of an image (the same ids for the same pixels). */
    synchronized int[] register(float[] pixels) {
        String key = digest(pixels);
        Integer first = firstIdByContent.get(key);
        if (first == null) {
            if (nextFirst > Integer.MAX_VALUE - perImage) {
                throw new IllegalStateException("no placeholder ids left for more images");
            }
            first = nextFirst;
            nextFirst += perImage;
            firstIdByContent.put(key, first);
        }
        Image image = recent.get(first);
        if (image == null) {
            image = new Image(first, pixels.clone());
            byFirstId.put(first, image);
            recent.put(first, image);
            bytes += image.bytes();
            evict(first);
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

    /** The feature row of each id; the images without features yet are encoded together by {@code encode} first. */
    synchronized float[][] rows(int[] ids, Function<List<float[]>, float[]> encode) {
        List<Image> needed = new ArrayList<>();
        Image[] of = new Image[ids.length];
        for (int i = 0; i < ids.length; i++) {
            var e = byFirstId.floorEntry(ids[i]);
            if (e == null || ids[i] - e.getKey() >= perImage || !recent.containsKey(e.getKey())) {
                throw new IllegalStateException("image token " + ids[i] + " has no image: dropped from the image cache (-Dlightllm.vision.cache.bytes="
                        + budget + ") or never registered");
            }
            of[i] = recent.get(e.getKey());
            if (of[i].features == null && !needed.contains(of[i])) {
                needed.add(of[i]);
            }
        }
        if (!needed.isEmpty()) {
            float[] all = encode.apply(needed.stream().map(im -> im.pixels).toList());
            int per = all.length / needed.size();
            for (int j = 0; j < needed.size(); j++) {
                needed.get(j).features = java.util.Arrays.copyOfRange(all, j * per, (j + 1) * per);
                bytes += 4L * per;
            }
        }
        int width = of.length == 0 ? 0 : of[0].features.length / perImage;
        float[][] rows = new float[ids.length][];
        for (int i = 0; i < ids.length; i++) {
            int r = ids[i] - of[i].first;
            rows[i] = java.util.Arrays.copyOfRange(of[i].features, r * width, (r + 1) * width);
        }
        evict(-1);
        return rows;
    }

    /** Drops the least recently used images beyond the budget, never {@code keep}. */
    private void evict(int keep) {
        var it = recent.entrySet().iterator();
        while (bytes > budget && it.hasNext()) {
            var e = it.next();
            if (e.getKey() == keep) {
                continue;
            }
            bytes -= e.getValue().bytes();
            byFirstId.remove(e.getKey());
            it.remove();
        }
    }

    private static String digest(float[] pixels) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            ByteBuffer b = ByteBuffer.allocate(pixels.length * 4);
            b.asFloatBuffer().put(pixels);
            return java.util.HexFormat.of().formatHex(sha.digest(b.array()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
