package io.lightllm.models.vision;

import io.lightllm.kernels.Vision;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.Models;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture;
import io.lightllm.models.decoder.DecoderModel;
import io.lightllm.models.decoder.Shard;
import io.lightllm.models.decoder.WeightLoader;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A language model that reads images (Llava): a {@link DecoderModel} whose prompts hold, for each image, a run
 * of placeholder ids past the vocabulary ({@link ImageTokens}), and a {@link ClipVisionTower} whose features
 * take those tokens' places in the first layer's input. Images are encoded when a step first needs them, all
 * images of that step in one batch (across requests); the features are kept for later chunks and repeats.
 * As in LightLLM, an image's placeholder ids follow from its content, so the prefix cache, which keys on ids,
 * reuses a prompt's KV only for the same images.
 */
public final class LlavaModel implements CausalLM {
    private final DecoderModel text;
    private final ClipVisionTower vision;
    private final ImageTokens images;
    private final int imageTokenIndex;
    private DeviceBuffer placedRows, placedIndex;

    public LlavaModel(Device device, Architecture a, ModelConfig c, WeightSource source, Models.Quantization quant, LongConsumer onBytes) {
        var raw = c.raw();
        var visionConfig = raw.path("vision_config");
        if (!visionConfig.path("model_type").asText("clip_vision_model").equals("clip_vision_model")) {
            throw new ModelLoadException("vision_config.model_type '" + visionConfig.path("model_type").asText() + "' is not supported (clip_vision_model)");
        }
        imageTokenIndex = raw.path("image_token_index").asInt(raw.path("image_token_id").asInt(-1));
        if (imageTokenIndex < 0) {
            throw new ModelLoadException("config.json has no image_token_index");
        }
        text = new DecoderModel(device, a, c, source, quant, onBytes);
        try {
            vision = new ClipVisionTower(device, new WeightLoader(device, source, Shard.whole(c), Models.Quantization.NONE, onBytes), visionConfig,
                    a.vision().tower(), a.vision().projector(), raw.path("vision_feature_layer").asInt(-2),
                    raw.path("vision_feature_select_strategy").asText("default"), raw.path("projector_hidden_act").asText("gelu"), c.hiddenSize());
        } catch (RuntimeException e) {
            text.close();
            throw e;
        }
        images = new ImageTokens(c.vocabSize(), vision.tokensPerImage(), ImageTokens.FEATURE_BUDGET, ImageTokens.PIXEL_BUDGET);
        text.embeddingOverride(this::placeImages);
    }

    /** The id that stands for an image in a tokenized chat prompt (before {@link #imageTokens} replaces it). */
    public int imageTokenIndex() {
        return imageTokenIndex;
    }

    /** The side of the square pixel values the tower reads. */
    public int imageSize() {
        return vision.imageSize();
    }

    /** Registers an image's pixel values [3, side, side] and returns the placeholder ids that stand for it in a prompt. */
    public int[] imageTokens(float[] pixelValues) {
        if (pixelValues.length != 3 * vision.imageSize() * vision.imageSize()) {
            throw new IllegalArgumentException("pixel values of " + pixelValues.length + " floats; the tower reads 3 x " + vision.imageSize()
                    + " x " + vision.imageSize());
        }
        return images.register(pixelValues);
    }

    /**
     * The prompt with its image tokens replaced by the ids of the images, in order. A run of image tokens is
     * one image when it is a single token (a chat template's) or {@code k} images when it is {@code k} times
     * the tokens of an image (transformers' processor expands each image so); a count that differs from the
     * images given is an error.
     */
    public int[] withImages(int[] prompt, List<float[]> pixelValues) {
        List<Integer> out = new ArrayList<>();
        int next = 0, perImage = vision.tokensPerImage();
        for (int i = 0; i < prompt.length; ) {
            if (prompt[i] != imageTokenIndex) {
                out.add(prompt[i++]);
                continue;
            }
            int run = 0;
            while (i + run < prompt.length && prompt[i + run] == imageTokenIndex) {
                run++;
            }
            i += run;
            if (run != 1 && run % perImage != 0) {
                throw new IllegalArgumentException("a run of " + run + " image tokens: one image is 1 token or " + perImage);
            }
            for (int k = 0; k < Math.max(1, run / perImage); k++) {
                if (next == pixelValues.size()) {
                    throw new IllegalArgumentException("the prompt has more images than the " + pixelValues.size() + " given");
                }
                for (int t : imageTokens(pixelValues.get(next++))) {
                    out.add(t);
                }
            }
        }
        if (next != pixelValues.size()) {
            throw new IllegalArgumentException(pixelValues.size() + " images but " + next + " in the prompt");
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The features [images x tokens per image, hidden] of pixel values, encoded now in one batch (what a step does for its new images). */
    public float[] encode(List<float[]> pixelValues) {
        return vision.encode(pixelValues);
    }

    /** Image tokens one image becomes. */
    public int tokensPerImage() {
        return vision.tokensPerImage();
    }

    @Override
    public boolean isPlaceholder(int id) {
        return images.isPlaceholder(id);
    }

    /** Writes the features of the batch's image tokens over their (NaN) embedding rows, encoding the images not yet encoded. */
    private void placeImages(NopadBatch batch, DeviceBuffer embeddings) {
        int[] ids = batch.tokenIds();
        int hidden = text.config().hiddenSize();
        List<Integer> at = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] >= text.config().vocabSize()) {
                at.add(i);
            }
        }
        float[][] rows = images.rows(at.stream().mapToInt(i -> ids[i]).toArray(), vision::encode);
        int n = at.size();
        FloatArray hostRows = FloatArray.allocate(n * hidden);
        IntArray hostIndex = IntArray.allocate(n);
        for (int j = 0; j < n; j++) {
            hostRows.segment().asSlice((long) j * hidden * Float.BYTES, (long) hidden * Float.BYTES)
                    .copyFrom(java.lang.foreign.MemorySegment.ofArray(rows[j]));
            hostIndex.set(j, at.get(j));
        }
        Device device = text.device();
        if (placedRows == null || placedRows.elements() < (long) n * hidden) {
            closePlaced();
            placedRows = device.allocate(DType.F32, (long) n * hidden);
            placedIndex = device.allocate(DType.I32, n);
        }
        device.copyIn(hostRows, placedRows);
        device.copyIn(hostIndex, placedIndex);
        Vision.launchScatter(device, embeddings, placedRows, placedIndex, n, hidden);
    }

    private void closePlaced() {
        if (placedRows != null) {
            placedRows.close();
            placedIndex.close();
            placedRows = null;
        }
    }

    @Override
    public Device device() {
        return text.device();
    }

    @Override
    public int vocabSize() {
        return text.vocabSize();
    }

    /** Both models' weights: the KV pool sized from memory must leave the tower's. */
    @Override
    public long weightBytes() {
        return text.weightBytes() + vision.weightBytes();
    }

    @Override
    public int maxSequenceLength() {
        return text.maxSequenceLength();
    }

    @Override
    public DType preferredKvDtype() {
        return text.preferredKvDtype();
    }

    @Override
    public TokenKvPool newKvPool(int slots, DType dtype) {
        return text.newKvPool(slots, dtype);
    }

    @Override
    public DeviceBuffer forward(NopadBatch batch, TokenKvPool pool, RequestTokenTable table) {
        return text.forward(batch, pool, table);
    }

    @Override
    public void close() {
        closePlaced();
        vision.close();
        text.close();
    }
}
