package io.lightllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Elementwise;
import io.lightllm.kernels.Vision;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.decoder.Architecture.NormKind;
import io.lightllm.models.decoder.Linear;
import io.lightllm.models.decoder.Norm;
import io.lightllm.models.decoder.WeightLoader;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Qwen-VL's vision module ({@code transformer.visual}, visual.py's VisionTransformer; config.json's {@code visual}):
 * a ViT (ViT-bigG in Qwen-VL-Chat: width 1664, 48 layers, 448 x 448 pixels in patches of 14), then a Resampler whose
 * learned queries (256) read each image by cross-attention, into the language model's width:
 *
 * <pre>
 * pixels ─ patches · conv1 (the patch convolution as a matmul) + positional_embedding (bicubic to the patch grid) ─ ln_pre
 *   ─ resblocks: x += out_proj(attention(ln_1 x)); x += c_proj(gelu(c_fc(ln_2 x)))   (every patch sees all of its image's)
 *   ─ attn_pool: kv = ln_kv(kv_proj x); out_proj(attention(q = ln_q(query) + pos_embed, k = kv + pos_embed at the grid, v = kv))
 *   ─ ln_post ─ · proj ─ features [queries, output_dim]
 * </pre>
 *
 * The position tables are interpolated once, at load, as torch's F.interpolate(mode="bicubic", align_corners=False)
 * does (visual.py's get_abs_pos): the images are always the configured size, so the grid is fixed. Each layer's
 * in_proj holds q, k and v per head ([heads, 3, headDim] rows); they are loaded as three projections.
 */
public final class QwenVisionTower implements VisionTower {
    private final Device device;
    private final WeightLoader weights;
    private final int width, heads, mlp, patchSize, imageSize, grid, queries, outDim, poolHeads;
    private final Linear patchEmbedding, kvProj, poolQ, poolK, poolV, poolO, proj;
    private final DeviceBuffer positions, keyPositions, queryIn;
    private final Norm preNorm, lnQ, lnKv, lnPost;
    private final List<VitBlock> layers = new ArrayList<>();

    /** The module of config.json's {@code visual} under {@code prefix} ({@code transformer.visual}), into {@code outHidden}. */
    public QwenVisionTower(Device device, WeightLoader weights, JsonNode visual, String prefix, int outHidden) {
        this.device = device;
        this.weights = weights;
        width = visual.path("width").asInt(1664);
        heads = visual.path("heads").asInt(16);
        mlp = (int) (width * visual.path("mlp_ratio").asDouble(4.9231));
        patchSize = visual.path("patch_size").asInt(14);
        imageSize = visual.path("image_size").asInt(448);
        queries = visual.path("n_queries").asInt(256);
        outDim = visual.path("output_dim").asInt(4096);
        poolHeads = outDim / 128;
        int layerCount = visual.path("layers").asInt(48);
        int queryGrid = (int) Math.round(Math.sqrt(queries));
        if (width % heads != 0 || imageSize % patchSize != 0 || poolHeads < 1 || outDim % poolHeads != 0 || queryGrid * queryGrid != queries) {
            throw new ModelLoadException("visual: width " + width + " / heads " + heads + ", image " + imageSize + " / patch " + patchSize
                    + ", output_dim " + outDim + " / 128 heads, n_queries " + queries + " a square: must divide");
        }
        if (outDim != outHidden) {
            throw new ModelLoadException("visual.output_dim " + outDim + " is not the language model's hidden size " + outHidden);
        }
        grid = imageSize / patchSize;
        float eps = 1e-6f;
        String v = prefix + ".";
        patchEmbedding = weights.linear(v + "conv1", width, 3 * patchSize * patchSize);
        positions = weights.derived(bicubic(weights.tensor(v + "positional_embedding").toFloat(), width, grid));
        preNorm = Norm.load(NormKind.LAYER, weights, v + "ln_pre", eps, width);
        int headDim = width / heads;
        for (int l = 0; l < layerCount; l++) {
            String p = v + "transformer.resblocks." + l + ".";
            Linear[] qkv = perHeadQkv(weights, p + "attn.in_proj", heads, headDim, width);
            layers.add(new VitBlock(Norm.load(NormKind.LAYER, weights, p + "ln_1", eps, width), qkv[0], qkv[1], qkv[2],
                    weights.linear(p + "attn.out_proj", width, width), Norm.load(NormKind.LAYER, weights, p + "ln_2", eps, width),
                    weights.linear(p + "mlp.c_fc", mlp, width), weights.linear(p + "mlp.c_proj", width, mlp)));
        }
        String a = v + "attn_pool.";
        kvProj = weights.has(a + "kv_proj.weight") ? weights.linear(a + "kv_proj", outDim, width) : null;
        if (kvProj == null && width != outDim) {
            throw new ModelLoadException(a + "kv_proj.weight is missing (width " + width + ", output_dim " + outDim + ")");
        }
        NativeArray inW = weights.tensor(a + "attn.in_proj_weight").view();
        FloatArray inB = weights.tensor(a + "attn.in_proj_bias").toFloat();
        Linear[] pool = new Linear[3];
        for (int part = 0; part < 3; part++) { // nn.MultiheadAttention's in_proj: the q, k and v rows one after another
            pool[part] = weights.derivedLinear(rows(inW, part * outDim, outDim, outDim), (FloatArray) rows(inB, part * outDim, outDim, 1), outDim, outDim);
        }
        poolQ = pool[0];
        poolK = pool[1];
        poolV = pool[2];
        poolO = weights.linear(a + "attn.out_proj", outDim, outDim);
        lnQ = Norm.load(NormKind.LAYER, weights, a + "ln_q", eps, outDim);
        lnKv = Norm.load(NormKind.LAYER, weights, a + "ln_kv", eps, outDim);
        FloatArray posEmbed = weights.tensor(a + "pos_embed").toFloat();
        keyPositions = weights.derived(bicubic(posEmbed, outDim, grid));
        lnPost = Norm.load(NormKind.LAYER, weights, v + "ln_post", eps, outDim);
        NativeArray p = weights.tensor(v + "proj").view();
        NativeArray transposed = NativeArray.allocate(p.dtype(), (long) outDim * outDim); // x @ proj: a linear layer of proj's transpose
        for (int i = 0; i < outDim; i++) {
            for (int j = 0; j < outDim; j++) {
                transposed.setFloat(j * outDim + i, p.getFloat(i * outDim + j));
            }
        }
        proj = weights.derivedLinear(transposed, null, outDim, outDim);
        queryIn = queryProjection(weights.tensor(a + "query").toFloat(), posEmbed);
    }

    /**
     * The Resampler's projected queries, Wq (ln_q(query) + pos_embed) + bq [queries, outDim]: the same for every image,
     * computed once on the device.
     */
    private DeviceBuffer queryProjection(FloatArray query, FloatArray posEmbed) {
        try (DeviceScratch scratch = new DeviceScratch(device)) {
            DeviceBuffer raw = scratch.f32((long) queries * outDim);
            device.copyIn(query, raw);
            DeviceBuffer normed = scratch.f32((long) queries * outDim);
            lnQ.apply(device, normed, raw, queries);
            device.copyIn(posEmbed, raw);
            Elementwise.launchAdd(device, normed, raw, queries * outDim);
            DeviceBuffer q = weights.derived(FloatArray.allocate(queries * outDim));
            poolQ.apply(device, q, normed, queries);
            return q;
        }
    }

    /** A fused q/k/v projection whose rows are [heads, 3, headDim] (visual.py's VisualAttention) as three [heads * headDim] ones. */
    private static Linear[] perHeadQkv(WeightLoader weights, String prefix, int heads, int headDim, int in) {
        NativeArray w = weights.tensor(prefix + ".weight").view();
        FloatArray b = weights.tensor(prefix + ".bias").toFloat();
        Linear[] out = new Linear[3];
        for (int part = 0; part < 3; part++) {
            NativeArray pw = NativeArray.allocate(w.dtype(), (long) heads * headDim * in);
            FloatArray pb = FloatArray.allocate(heads * headDim);
            long row = (long) in * w.dtype().bytes();
            for (int h = 0; h < heads; h++) {
                for (int d = 0; d < headDim; d++) {
                    int from = (h * 3 + part) * headDim + d, to = h * headDim + d;
                    pb.set(to, b.get(from));
                    MemorySegment.copy(w.segment(), from * row, pw.segment(), to * row, row);
                }
            }
            out[part] = weights.derivedLinear(pw, pb, heads * headDim, in);
        }
        return out;
    }

    /** Rows [from, from + count) of a row-major table [*, width], in its dtype. */
    private static NativeArray rows(NativeArray a, int from, int count, int width) {
        NativeArray out = NativeArray.allocate(a.dtype(), (long) count * width);
        long row = (long) width * a.dtype().bytes();
        MemorySegment.copy(a.segment(), from * row, out.segment(), 0, count * row);
        return out;
    }

    /**
     * A square table [side * side, dim] (rows in raster order) resized to [to * to, dim] as torch's
     * F.interpolate(mode="bicubic", align_corners=False) resizes an image: source coordinate (o + 0.5) · side / to - 0.5,
     * Keys' cubic convolution with a = -0.75, indices clamped at the borders. The same table when the sizes agree.
     */
    static FloatArray bicubic(FloatArray table, int dim, int to) {
        int side = (int) Math.round(Math.sqrt(table.getSize() / dim));
        if (side * side * dim != table.getSize()) {
            throw new ModelLoadException("a position table of " + table.getSize() + " values is not square rows of " + dim);
        }
        if (side == to) {
            return table;
        }
        double scale = (double) (float) ((float) side / to);
        double[][] w = new double[to][];
        int[] base = new int[to];
        for (int o = 0; o < to; o++) {
            double src = scale * (o + 0.5) - 0.5;
            int i = (int) Math.floor(src);
            double t = src - i;
            base[o] = i;
            w[o] = new double[] {cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)};
        }
        FloatArray out = FloatArray.allocate(to * to * dim);
        for (int oy = 0; oy < to; oy++) {
            for (int ox = 0; ox < to; ox++) {
                for (int d = 0; d < dim; d++) {
                    double sum = 0;
                    for (int a = 0; a < 4; a++) {
                        int y = Math.clamp(base[oy] - 1 + a, 0, side - 1);
                        double row = 0;
                        for (int b = 0; b < 4; b++) {
                            int x = Math.clamp(base[ox] - 1 + b, 0, side - 1);
                            row += w[ox][b] * table.get((y * side + x) * dim + d);
                        }
                        sum += w[oy][a] * row;
                    }
                    out.set((oy * to + ox) * dim + d, (float) sum);
                }
            }
        }
        return out;
    }

    private static final double A = -0.75;

    private static double cubic1(double x) {
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    }

    private static double cubic2(double x) {
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    }

    @Override
    public long weightBytes() {
        return weights.deviceBytes();
    }

    @Override
    public int tokensPerImage() {
        return queries;
    }

    @Override
    public int imageSize() {
        return imageSize;
    }

    @Override
    public float[] encode(List<float[]> pixelValues) {
        int n = pixelValues.size(), patches = grid * grid, rows = n * patches;
        int unfolded = 3 * patchSize * patchSize;
        FloatArray patchPixels = FloatArray.allocate(rows * unfolded);
        for (int i = 0; i < n; i++) {
            VisionTower.unfold(checkPixels(pixelValues.get(i)), imageSize, patchSize, patchPixels, i * patches * unfolded);
        }
        try (DeviceScratch scratch = new DeviceScratch(device)) {
            DeviceBuffer pixels = scratch.f32(patchPixels.getSize());
            device.copyIn(patchPixels, pixels);
            DeviceBuffer h = scratch.f32((long) rows * Math.max(width, outDim));
            patchEmbedding.apply(device, h, pixels, rows);
            Elementwise.launchAddBias(device, h, positions, n, patches * width);
            DeviceBuffer x = scratch.f32((long) rows * Math.max(width, outDim));
            preNorm.apply(device, x, h, rows);
            DeviceBuffer q = scratch.f32((long) rows * Math.max(width, outDim));
            DeviceBuffer k = scratch.f32((long) rows * Math.max(width, outDim));
            DeviceBuffer v = scratch.f32((long) rows * Math.max(width, outDim));
            DeviceBuffer hidden = scratch.f32((long) rows * mlp);
            for (VitBlock layer : layers) {
                layer.apply(device, x, h, q, k, v, hidden, n, patches, heads, width, mlp, Activations.Kind.GELU_ERF);
            }
            // the Resampler: keys and values of each image's patches, the shared queries
            DeviceBuffer kv = x;
            if (kvProj != null) {
                kvProj.apply(device, h, x, rows);
                kv = h;
            }
            DeviceBuffer normed = kv == x ? h : x;
            lnKv.apply(device, normed, kv, rows);
            poolV.apply(device, v, normed, rows);
            Elementwise.launchAddBias(device, normed, keyPositions, n, patches * outDim);
            poolK.apply(device, k, normed, rows);
            int out = n * queries;
            DeviceBuffer attended = scratch.f32((long) out * outDim);
            DeviceBuffer projected = scratch.f32((long) out * outDim);
            Vision.launchCrossAttention(device, attended, queryIn, k, v, n, queries, patches, poolHeads, outDim / poolHeads);
            poolO.apply(device, projected, attended, out);
            lnPost.apply(device, attended, projected, out);
            proj.apply(device, projected, attended, out);
            return scratch.download(projected, out * outDim);
        }
    }

    @Override
    public void close() {
        weights.close();
    }
}
