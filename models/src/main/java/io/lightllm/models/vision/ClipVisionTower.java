package io.lightllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Embedding;
import io.lightllm.kernels.Vision;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.decoder.Architecture.NormKind;
import io.lightllm.models.decoder.Linear;
import io.lightllm.models.decoder.Norm;
import io.lightllm.models.decoder.WeightLoader;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * CLIP's vision transformer, up to the layer whose output a multimodal model reads (Llava: the second to
 * last), then that model's projector into the language model's embedding width:
 *
 * <pre>
 * pixels ─ patches · W (the patch convolution as a matmul) ─ [CLS, patches] + positions ─ pre-LayerNorm
 *   ─ layers: x += o(attention(LN1 x)); x += fc2(quick_gelu(fc1(LN2 x)))  (every token of an image sees all of them)
 *   ─ the feature layer's patch rows (CLS dropped: "default") ─ linear_1 ─ act ─ linear_2 ─ features [patches, text hidden]
 * </pre>
 *
 * The patch convolution's stride equals its size, so it is a matmul over the unfolded patches, which the host
 * unfolds when the pixels go up.
 */
public final class ClipVisionTower implements VisionTower {
    private final Device device;
    private final WeightLoader weights;
    private final int hidden, heads, intermediate, patchSize, imageSize, patchesPerSide, outHidden;
    private final boolean dropClass;
    private final Activations.Kind act, projectorAct;
    private final Linear patchEmbedding, projector1, projector2;
    private final DeviceBuffer classEmbedding, positions;
    private final Norm preNorm;
    private final List<VitBlock> layers = new ArrayList<>();

    /**
     * The tower of {@code vision_config} under {@code tower}, run to hidden state {@code featureLayer}
     * (transformers' hidden_states index: 0 the embeddings, -1 the last layer), and the projector under
     * {@code projector} into {@code outHidden}.
     */
    public ClipVisionTower(Device device, WeightLoader weights, JsonNode visionConfig, String tower, String projector, int featureLayer,
            String selectStrategy, String projectorActivation, int outHidden) {
        this.device = device;
        this.weights = weights;
        this.outHidden = outHidden;
        hidden = visionConfig.path("hidden_size").asInt(1024);
        heads = visionConfig.path("num_attention_heads").asInt(16);
        intermediate = visionConfig.path("intermediate_size").asInt(4096);
        patchSize = visionConfig.path("patch_size").asInt(14);
        imageSize = visionConfig.path("image_size").asInt(336);
        int allLayers = visionConfig.path("num_hidden_layers").asInt(24);
        float eps = (float) visionConfig.path("layer_norm_eps").asDouble(1e-5);
        act = Activations.Kind.fromConfig(visionConfig.path("hidden_act").asText("quick_gelu"));
        projectorAct = Activations.Kind.fromConfig(projectorActivation);
        if (hidden % heads != 0 || imageSize % patchSize != 0) {
            throw new ModelLoadException("vision_config: hidden " + hidden + " / heads " + heads + ", image " + imageSize + " / patch " + patchSize
                    + " must divide");
        }
        if (!selectStrategy.equals("default") && !selectStrategy.equals("full")) {
            throw new ModelLoadException("vision_feature_select_strategy '" + selectStrategy + "' is not supported (default, full)");
        }
        dropClass = selectStrategy.equals("default");
        int used = featureLayer >= 0 ? featureLayer : allLayers + 1 + featureLayer;
        if (used < 0 || used > allLayers) {
            throw new ModelLoadException("vision_feature_layer " + featureLayer + " is outside the tower's " + allLayers + " layers");
        }
        patchesPerSide = imageSize / patchSize;
        String e = tower + ".embeddings.";
        patchEmbedding = weights.linear(e + "patch_embedding", hidden, 3 * patchSize * patchSize);
        classEmbedding = weights.vector(e + "class_embedding");
        positions = weights.vector(e + "position_embedding.weight");
        preNorm = Norm.load(NormKind.LAYER, weights, tower + ".pre_layrnorm", eps, hidden);
        for (int l = 0; l < used; l++) {
            String p = tower + ".encoder.layers." + l + ".";
            layers.add(new VitBlock(Norm.load(NormKind.LAYER, weights, p + "layer_norm1", eps, hidden),
                    weights.linear(p + "self_attn.q_proj", hidden, hidden), weights.linear(p + "self_attn.k_proj", hidden, hidden),
                    weights.linear(p + "self_attn.v_proj", hidden, hidden), weights.linear(p + "self_attn.out_proj", hidden, hidden),
                    Norm.load(NormKind.LAYER, weights, p + "layer_norm2", eps, hidden),
                    weights.linear(p + "mlp.fc1", intermediate, hidden), weights.linear(p + "mlp.fc2", hidden, intermediate)));
        }
        projector1 = weights.linear(projector + ".linear_1", outHidden, hidden);
        projector2 = weights.linear(projector + ".linear_2", outHidden, outHidden);
    }

    /** Bytes the tower's and projector's weights take on the device. */
    @Override
    public long weightBytes() {
        return weights.deviceBytes();
    }

    @Override
    public int tokensPerImage() {
        return patchesPerSide * patchesPerSide + (dropClass ? 0 : 1);
    }

    @Override
    public int imageSize() {
        return imageSize;
    }

    @Override
    public float[] encode(List<float[]> pixelValues) {
        int n = pixelValues.size(), patches = patchesPerSide * patchesPerSide, seq = patches + 1, rows = n * seq;
        int unfolded = 3 * patchSize * patchSize;
        FloatArray patchPixels = FloatArray.allocate(n * patches * unfolded);
        for (int i = 0; i < n; i++) {
            VisionTower.unfold(checkPixels(pixelValues.get(i)), imageSize, patchSize, patchPixels, i * patches * unfolded);
        }
        try (DeviceScratch scratch = new DeviceScratch(device)) {
            DeviceBuffer pixels = scratch.f32(patchPixels.getSize());
            device.copyIn(patchPixels, pixels);
            DeviceBuffer patchRows = scratch.f32((long) n * patches * hidden);
            patchEmbedding.apply(device, patchRows, pixels, n * patches);
            DeviceBuffer x = scratch.f32((long) rows * hidden);
            DeviceBuffer h = scratch.f32((long) rows * hidden);
            Vision.launchAssemble(device, h, patchRows, classEmbedding, positions, n, patches, hidden);
            preNorm.apply(device, x, h, rows);
            DeviceBuffer q = scratch.f32((long) rows * hidden);
            DeviceBuffer k = scratch.f32((long) rows * hidden);
            DeviceBuffer v = scratch.f32((long) rows * hidden);
            DeviceBuffer mlp = scratch.f32((long) rows * intermediate);
            for (VitBlock layer : layers) {
                layer.apply(device, x, h, q, k, v, mlp, n, seq, heads, hidden, intermediate, act);
            }
            int out = n * tokensPerImage();
            DeviceBuffer features = x;
            if (dropClass) { // the patch rows of each image, gathered on the device (a lookup of x's rows by index)
                IntArray patchIndex = IntArray.allocate(out);
                for (int i = 0; i < out; i++) {
                    patchIndex.set(i, i / patches * seq + 1 + i % patches);
                }
                DeviceBuffer index = scratch.allocate(DType.I32, out);
                device.copyIn(patchIndex, index);
                features = scratch.f32((long) out * hidden);
                Embedding.launchGather(device, features, x, index, out, hidden);
            }
            DeviceBuffer projected = scratch.f32((long) out * outHidden);
            DeviceBuffer result = scratch.f32((long) out * outHidden);
            projector1.apply(device, projected, features, out);
            Activations.launchInPlace(device, projectorAct, projected, out * outHidden);
            projector2.apply(device, result, projected, out);
            return scratch.download(result, out * outHidden);
        }
    }

    @Override
    public void close() {
        weights.close();
    }
}
