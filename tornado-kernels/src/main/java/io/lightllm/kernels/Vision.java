package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.KernelContext;
import io.lightllm.tornado.api.KMath;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * The kernels a vision encoder (a ViT such as CLIP's) needs beyond the language model's: its token
 * sequence assembled from patch embeddings, attention in which every token of an image sees every other
 * (no causal mask, no KV pool), a resampler's cross-attention of learned queries over an image's tokens
 * (Qwen-VL), and image features placed into a prompt's token embeddings.
 */
public final class Vision {
    public static final KernelRef ASSEMBLE = KernelRef.of(Vision.class, "assembleTokens");
    public static final KernelRef ATTENTION = KernelRef.of(Vision.class, "imageAttention");
    /** {@link #imageAttention} at head dimension 64 (CLIP ViT-L's), bound: a constant the C compiler unrolls the row loops by. */
    public static final KernelRef ATTENTION_D64 = ATTENTION.with("headDim", 64);
    public static final KernelRef SCATTER = KernelRef.of(Vision.class, "scatterRows");
    public static final KernelRef CROSS_ATTENTION = KernelRef.of(Vision.class, "crossAttention");

    private Vision() {
    }

    /**
     * Each image's token sequence [1 + patches, dim]: the class embedding, then its patches' embeddings,
     * each plus the learned position embedding of its place. {@code patchRows} is [images * patches, dim].
     */
    public static void assembleTokens(FloatArray out, FloatArray patchRows, NativeArray classEmbedding, NativeArray positions,
            int images, int patches, int dim) {
        for (@Parallel int r = 0; r < images * (patches + 1); r++) {
            for (@Parallel int d = 0; d < dim; d++) {
                int image = r / (patches + 1);
                int place = r - image * (patches + 1);
                float v;
                if (place == 0) {
                    v = classEmbedding.getFloat(d);
                } else {
                    v = patchRows.get((image * patches + place - 1) * dim + d);
                }
                out.set(r * dim + d, v + positions.getFloat(place * dim + d));
            }
        }
    }

    /** Largest head dimension of {@link #imageAttention} (its query and accumulator are private arrays of this size). */
    public static final int MAX_HEAD_DIM = 128;
    /** Queries of a work-group: one a work-item. */
    public static final int QUERY_TILE = 64;
    /** Keys (and values) a work-group holds in local memory at a time: 2 x 32 x 128 floats = 32 KiB at most. */
    public static final int KEY_TILE = 32;

    /**
     * Attention within each image, every token seeing all {@code seq} tokens of its image: out = softmax(q kᵀ ·
     * scale) v per head. q, k, v and out are [images * seq, heads * headDim]. A work-group of {@link #QUERY_TILE}
     * items per (image, head, tile of queries), group index {@code (image * heads + head) * queryTiles + tile}:
     * the group copies {@link #KEY_TILE} keys and values of its head into local memory, every item scores them
     * against its query (held in private memory) and folds them in with an online softmax (the running maximum
     * rescales the sum and the accumulator), so each key is read from global memory once per tile of queries.
     */
    public static void imageAttention(KernelContext ctx, FloatArray out, FloatArray q, FloatArray k, FloatArray v, int images, int seq,
            int heads, int headDim, float scale, int queryTiles) {
        attend(ctx, out, q, k, v, seq, seq, 0, heads, headDim, scale, queryTiles);
    }

    /**
     * The tiled attention of {@link #imageAttention} and {@link #crossAttention}: each image's {@code queries} rows of
     * out from its {@code keys} rows of k and v; the queries are each image's own rows of q, or with
     * {@code sharedQueries} != 0 the same {@code queries} rows of q for every image.
     */
    private static void attend(KernelContext ctx, FloatArray out, FloatArray q, FloatArray k, FloatArray v, int queries, int seq,
            int sharedQueries, int heads, int headDim, float scale, int queryTiles) {
        float[] kTile = ctx.allocateFloatLocalArray(KEY_TILE * MAX_HEAD_DIM);
        float[] vTile = ctx.allocateFloatLocalArray(KEY_TILE * MAX_HEAD_DIM);
        float[] query = new float[MAX_HEAD_DIM];
        float[] acc = new float[MAX_HEAD_DIM];
        int lid = ctx.localIdx;
        int size = ctx.localGroupSizeX;
        int tile = ctx.groupIdx % queryTiles;
        int head = (ctx.groupIdx / queryTiles) % heads;
        int image = ctx.groupIdx / (queryTiles * heads);
        int width = heads * headDim;
        int first = image * seq;
        int r = tile * QUERY_TILE + lid;
        boolean valid = r < queries && lid < QUERY_TILE;
        int qo = ((sharedQueries != 0 ? 0 : image * queries) + r) * width + head * headDim;
        int oo = (image * queries + r) * width + head * headDim;
        for (int d = 0; d < headDim; d++) {
            query[d] = valid ? q.get(qo + d) * scale : 0f;
            acc[d] = 0f;
        }
        float max = Float.NEGATIVE_INFINITY;
        float sum = 0f;
        for (int kb = 0; kb < seq; kb += KEY_TILE) {
            int keys = Math.min(KEY_TILE, seq - kb);
            ctx.localBarrier(); // every item is done with the last tile
            for (int i = lid; i < keys * headDim; i += size) {
                int j = i / headDim;
                int at = (first + kb + j) * width + head * headDim + i - j * headDim;
                kTile[i] = k.get(at);
                vTile[i] = v.get(at);
            }
            ctx.localBarrier();
            if (valid) {
                for (int j = 0; j < keys; j++) {
                    float s = 0f;
                    for (int d = 0; d < headDim; d++) {
                        s += query[d] * kTile[j * headDim + d];
                    }
                    float newMax = KMath.max(max, s);
                    float correction = KMath.exp(max - newMax); // 0 for the first key (max was -inf)
                    float p = KMath.exp(s - newMax);
                    sum = sum * correction + p;
                    for (int d = 0; d < headDim; d++) {
                        acc[d] = acc[d] * correction + p * vTile[j * headDim + d];
                    }
                    max = newMax;
                }
            }
        }
        if (valid) {
            for (int d = 0; d < headDim; d++) {
                out.set(oo + d, acc[d] / sum);
            }
        }
    }

    /**
     * Cross-attention of one set of queries, the same for every image, over each image's keys: out = softmax(q kᵀ ·
     * scale) v per image and head. q is [queries, heads * headDim]; k and v [images * keys, heads * headDim]; out
     * [images * queries, heads * headDim]. Tiled as {@link #imageAttention} (a work-group of {@link #QUERY_TILE}
     * queries per image and head, keys and values through local memory {@link #KEY_TILE} at a time, an online
     * softmax). Qwen-VL's Resampler: 256 queries over an image's 1,024 patches, 32 heads of 128.
     */
    public static void crossAttention(KernelContext ctx, FloatArray out, FloatArray q, FloatArray k, FloatArray v, int images, int queries,
            int keys, int heads, int headDim, float scale, int queryTiles) {
        attend(ctx, out, q, k, v, queries, keys, 1, heads, headDim, scale, queryTiles);
    }

    /** out[rowsOf[i]] = rows[i] for i < n: image features put in place of their tokens' embeddings. */
    public static void scatterRows(FloatArray out, FloatArray rows, IntArray rowsOf, int n, int dim) {
        for (@Parallel int i = 0; i < n; i++) {
            for (@Parallel int d = 0; d < dim; d++) {
                out.set(rowsOf.get(i) * dim + d, rows.get(i * dim + d));
            }
        }
    }

    // ---- host launchers -----------------------------------------------------------

    public static void launchAssemble(Device device, DeviceBuffer out, DeviceBuffer patchRows, DeviceBuffer classEmbedding,
            DeviceBuffer positions, int images, int patches, int dim) {
        Shapes.positive(images, "images");
        Shapes.positive(dim, "dim");
        Shapes.atLeast(patchRows, (long) images * patches * dim, "patch rows");
        Shapes.atLeast(positions, (long) (patches + 1) * dim, "position embeddings");
        Shapes.atLeast(classEmbedding, dim, "class embedding");
        Shapes.atLeast(out, (long) images * (patches + 1) * dim, "out");
        device.launch(ASSEMBLE, Grid.of(images * (patches + 1), dim), out, patchRows, classEmbedding, positions, images, patches, dim);
    }

    public static void launchAttention(Device device, DeviceBuffer out, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int images, int seq,
            int heads, int headDim) {
        Shapes.positive(images * seq, "tokens");
        long n = (long) images * seq * heads * headDim;
        Shapes.intIndexable(n, "q");
        for (DeviceBuffer b : new DeviceBuffer[] {out, q, k, v}) {
            Shapes.atLeast(b, n, "q/k/v/out");
        }
        if (headDim < 1 || headDim > MAX_HEAD_DIM) {
            throw new IllegalArgumentException("image attention takes head dimensions up to " + MAX_HEAD_DIM + ", got " + headDim);
        }
        int queryTiles = (seq + QUERY_TILE - 1) / QUERY_TILE;
        device.launch(headDim == 64 ? ATTENTION_D64 : ATTENTION, Grid.groups((long) images * heads * queryTiles, QUERY_TILE), out, q, k, v, images, seq, heads, headDim,
                (float) (1.0 / Math.sqrt(headDim)), queryTiles);
    }

    public static void launchCrossAttention(Device device, DeviceBuffer out, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int images, int queries,
            int keys, int heads, int headDim) {
        Shapes.positive(images * queries * heads, "work items");
        Shapes.positive(keys, "keys");
        int width = heads * headDim;
        Shapes.intIndexable((long) images * Math.max(queries, keys) * width, "k/v/out");
        Shapes.atLeast(q, (long) queries * width, "q");
        Shapes.atLeast(k, (long) images * keys * width, "k");
        Shapes.atLeast(v, (long) images * keys * width, "v");
        Shapes.atLeast(out, (long) images * queries * width, "out");
        if (headDim < 1 || headDim > MAX_HEAD_DIM) {
            throw new IllegalArgumentException("cross-attention takes head dimensions up to " + MAX_HEAD_DIM + ", got " + headDim);
        }
        int queryTiles = (queries + QUERY_TILE - 1) / QUERY_TILE;
        device.launch(CROSS_ATTENTION, Grid.groups((long) images * heads * queryTiles, QUERY_TILE), out, q, k, v, images, queries, keys, heads,
                headDim, (float) (1.0 / Math.sqrt(headDim)), queryTiles);
    }

    public static void launchScatter(Device device, DeviceBuffer out, DeviceBuffer rows, DeviceBuffer rowsOf, int n, int dim) {
        Shapes.positive(n, "rows");
        Shapes.atLeast(rows, (long) n * dim, "rows");
        Shapes.atLeast(rowsOf, n, "row indices");
        device.launch(SCATTER, Grid.of(n, dim), out, rows, rowsOf, n, dim);
    }
}
