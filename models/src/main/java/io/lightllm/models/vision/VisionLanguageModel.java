package io.lightllm.models.vision;

import io.lightllm.kernels.Vision;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.Models;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture;
import io.lightllm.models.decoder.DecoderModel;
import io.lightllm.models.decoder.Shard;
import io.lightllm.models.decoder.TensorParallelModel;
import io.lightllm.models.decoder.WeightLoader;
import io.lightllm.kernels.KernelLibrary;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.ImageEncoder;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;

/**
 * A language model that reads images (Llava, Qwen-VL): a {@link DecoderModel} (or its tensor-parallel ranks) whose prompts
 * hold, for each image, a run of placeholder ids past the vocabulary ({@link ImageTokens}), and a
 * {@link VisionTower} (Llava's {@link ClipVisionTower}, Qwen-VL's {@link QwenVisionTower}) whose features take those
 * tokens' places in the first layer's input. Llava writes an image as its image token; Qwen-VL as
 * {@code <img>...</img>}, whose inside (the image's path or URL, as Qwen-VL's tokenizer writes it, or nothing)
 * becomes the image's placeholders. The tower runs on a device instance of its own ({@link Devices#openInstance}:
 * its own stream, queue or threads), driven by the engine's encoder stage through {@link #imageEncoder} before a
 * prompt reaches prefill, beside the language model's steps; the features are kept on the host for the steps,
 * later chunks and repeats. A step whose images have no features (dropped from the cache since) encodes them
 * itself, all of the step's in one batch.
 * As in LightLLM, an image's placeholder ids follow from its content, so the prefix cache, which keys on ids,
 * reuses a prompt's KV only for the same images.
 */
public final class VisionLanguageModel implements CausalLM {
    private final CausalLM text;
    private final ModelConfig config;
    private final VisionTower vision;
    /** The tower's own instance of the first device, so that encoding runs beside the steps, not between their launches. */
    private final Device encoderDevice;
    /** The stage's encoder and a step's (rare) one share the tower, one at a time. */
    private final Object towerLock = new Object();
    private final java.util.concurrent.atomic.AtomicLong imagesEncodedInSteps = new java.util.concurrent.atomic.AtomicLong();
    private final ImageEncoder encoder = new ImageEncoder() {
        @Override
        public int imagesToEncode(int[] prompt) {
            return images.unencoded(placeholders(prompt));
        }

        @Override
        public int encode(List<int[]> prompts) {
            return images.encodeMissing(placeholders(prompts.stream().flatMapToInt(java.util.Arrays::stream).toArray()), VisionLanguageModel.this::encode);
        }
    };
    private final ImageTokens images;
    /** Llava's image token; Qwen-VL's {@code <img>}, with {@code </img>} in {@link #imageEndIndex} (-1 for Llava). */
    private final int imageTokenIndex, imageEndIndex;
    /** This step's image rows, found on the calling thread before the ranks run: token indices and rows. */
    private volatile Placement placement;
    /** Each device's buffers for the rows (a rank's thread uses its own). */
    private final Map<Device, DeviceBuffer[]> placed = new ConcurrentHashMap<>();

    private record Placement(NopadBatch batch, IntArray at, FloatArray rows) {
    }

    /**
     * The model on {@code devices}: one, or the language model split over several by tensor parallelism (the
     * vision tower on the first, its features placed by every rank, as LightLLM runs Llava).
     */
    public VisionLanguageModel(List<Device> devices, Architecture a, ModelConfig c, WeightSource source, Models.Quantization quant, LongConsumer onBytes) {
        this.config = c;
        var raw = c.raw();
        boolean qwen = a.vision().kind() == Architecture.VisionSpec.Tower.QWEN_VL;
        var visionConfig = raw.path(qwen ? "visual" : "vision_config");
        if (!qwen && !visionConfig.path("model_type").asText("clip_vision_model").equals("clip_vision_model")) {
            throw new ModelLoadException("vision_config.model_type '" + visionConfig.path("model_type").asText() + "' is not supported (clip_vision_model)");
        }
        imageTokenIndex = qwen ? visionConfig.path("image_start_id").asInt(-1) : raw.path("image_token_index").asInt(raw.path("image_token_id").asInt(-1));
        imageEndIndex = qwen ? imageTokenIndex + 1 : -1;
        if (imageTokenIndex < 0) {
            throw new ModelLoadException(qwen ? "config.json's visual has no image_start_id" : "config.json has no image_token_index");
        }
        Device first = devices.getFirst();
        if (devices.size() == 1) {
            DecoderModel one = new DecoderModel(first, a, c, source, quant, onBytes);
            one.embeddingOverride(this::placeImages);
            text = one;
        } else {
            TensorParallelModel split = new TensorParallelModel(devices, a, c, source, quant, onBytes);
            split.embeddingOverride(this::placeImages);
            text = split;
        }
        try {
            encoderDevice = Devices.openInstance(first.id());
        } catch (RuntimeException e) {
            text.close();
            throw e;
        }
        try {
            KernelLibrary.installOverrides(encoderDevice);
            WeightLoader towerWeights = new WeightLoader(encoderDevice, source, Shard.whole(c), Models.Quantization.NONE, onBytes);
            vision = qwen ? new QwenVisionTower(encoderDevice, towerWeights, visionConfig, a.vision().tower(), c.hiddenSize())
                    : new ClipVisionTower(encoderDevice, towerWeights, visionConfig, a.vision().tower(), a.vision().projector(),
                            raw.path("vision_feature_layer").asInt(-2), raw.path("vision_feature_select_strategy").asText("default"),
                            raw.path("projector_hidden_act").asText("gelu"), c.hiddenSize());
        } catch (RuntimeException e) {
            encoderDevice.close();
            text.close();
            throw e;
        }
        images = new ImageTokens(c.vocabSize(), vision.tokensPerImage(), ImageTokens.featureBudget(), ImageTokens.pixelBudget());
    }

    /** The id that stands for an image in a tokenized chat prompt (before {@link #imageTokens} replaces it); Qwen-VL's {@code <img>}. */
    public int imageTokenIndex() {
        return imageTokenIndex;
    }

    /** Qwen-VL's {@code </img>}, which closes an image that {@link #imageTokenIndex} opens; -1 where an image is one token (Llava). */
    public int imageEndIndex() {
        return imageEndIndex;
    }

    /** The side of the square pixel values the tower reads. */
    public int imageSize() {
        return vision.imageSize();
    }

    /** Registers an image's pixel values [3, side, side] and returns the placeholder ids that stand for it in a prompt. */
    public int[] imageTokens(float[] pixelValues) {
        return images.register(vision.checkPixels(pixelValues));
    }

    /**
     * The prompt with its image tokens replaced by the ids of the images, in order. A run of image tokens is
     * one image when it is a single token (a chat template's) or {@code k} images when it is {@code k} times
     * the tokens of an image (transformers' processor expands each image so); a count that differs from the
     * images given is an error. Qwen-VL: what is between each {@code <img>} and its {@code </img>} (a path or
     * URL, its padding, or nothing) becomes the next image's ids, the tags kept.
     */
    public int[] withImages(int[] prompt, List<float[]> pixelValues) {
        if (imageEndIndex >= 0) {
            return withImageSpans(prompt, pixelValues);
        }
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

    private int[] withImageSpans(int[] prompt, List<float[]> pixelValues) {
        List<Integer> out = new ArrayList<>();
        int next = 0;
        for (int i = 0; i < prompt.length; i++) {
            out.add(prompt[i]);
            if (prompt[i] == imageEndIndex) {
                throw new IllegalArgumentException("an image's end token " + imageEndIndex + " at " + i + " without its start " + imageTokenIndex);
            }
            if (prompt[i] != imageTokenIndex) {
                continue;
            }
            int end = i + 1;
            while (end < prompt.length && prompt[end] != imageEndIndex && prompt[end] != imageTokenIndex) {
                end++;
            }
            if (end == prompt.length || prompt[end] != imageEndIndex) {
                throw new IllegalArgumentException("an image's start token " + imageTokenIndex + " at " + i + " is not closed by " + imageEndIndex);
            }
            if (next == pixelValues.size()) {
                throw new IllegalArgumentException("the prompt has more images than the " + pixelValues.size() + " given");
            }
            for (int t : imageTokens(pixelValues.get(next++))) {
                out.add(t);
            }
            out.add(imageEndIndex);
            i = end;
        }
        if (next != pixelValues.size()) {
            throw new IllegalArgumentException(pixelValues.size() + " images but " + next + " in the prompt");
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The features [images x tokens per image, hidden] of pixel values, encoded now in one batch on the tower's device. */
    public float[] encode(List<float[]> pixelValues) {
        synchronized (towerLock) {
            return vision.encode(pixelValues);
        }
    }

    @Override
    public ImageEncoder imageEncoder() {
        return encoder;
    }

    /** The device instance the tower runs on: the first device's hardware, not its shared instance. */
    public Device encoderDevice() {
        return encoderDevice;
    }

    /** Images a step had to encode itself (their features were never encoded by the stage, or dropped since). */
    public long imagesEncodedInSteps() {
        return imagesEncodedInSteps.get();
    }

    /** The placeholder ids among {@code ids}. */
    private int[] placeholders(int[] ids) {
        return java.util.Arrays.stream(ids).filter(images::isPlaceholder).toArray();
    }

    /** Image tokens one image becomes. */
    public int tokensPerImage() {
        return vision.tokensPerImage();
    }

    @Override
    public boolean isPlaceholder(int id) {
        return images.isPlaceholder(id);
    }

    /**
     * The rows of the batch's image tokens, on the calling thread before any rank's step. The encoder stage has
     * encoded them; images whose features were dropped since are encoded here, all together.
     */
    private Placement prepare(NopadBatch batch) {
        int[] ids = batch.tokenIds();
        List<Integer> at = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] >= config.vocabSize()) {
                at.add(i);
            }
        }
        if (at.isEmpty()) {
            return null;
        }
        int[] placeholderIds = at.stream().mapToInt(i -> ids[i]).toArray();
        FloatArray rows;
        for (int attempt = 0; (rows = images.rows(placeholderIds)) == null; attempt++) {
            if (attempt == 3) {
                throw new IllegalStateException("the images' features were dropped again before the step could read them: "
                        + "-Dlightllm.vision.features.bytes=" + ImageTokens.featureBudget() + " holds fewer images than a step reads");
            }
            imagesEncodedInSteps.addAndGet(images.encodeMissing(placeholderIds, this::encode));
        }
        IntArray hostAt = IntArray.allocate(at.size());
        for (int j = 0; j < at.size(); j++) {
            hostAt.set(j, at.get(j));
        }
        return new Placement(batch, hostAt, rows);
    }

    /**
     * Writes this step's image rows over their (NaN) embedding rows, on the device of {@code embeddings} (a rank's);
     * nothing when {@link #prepare} found no image tokens in the step.
     */
    private void placeImages(NopadBatch batch, DeviceBuffer embeddings) {
        Placement p = placement;
        if (p == null) {
            return;
        }
        if (p.batch() != batch) {
            throw new IllegalStateException("image rows were not prepared for this step");
        }
        Device device = embeddings.device();
        int n = p.at().getSize(), hidden = config.hiddenSize();
        DeviceBuffer[] buffers = placed.compute(device, (d, old) -> {
            if (old != null && old[0].elements() >= (long) n * hidden) {
                return old;
            }
            if (old != null) {
                old[0].close();
                old[1].close();
            }
            return new DeviceBuffer[] {d.allocate(DType.F32, (long) n * hidden), d.allocate(DType.I32, n)};
        });
        device.copyIn(p.rows(), buffers[0]);
        device.copyIn(p.at(), buffers[1]);
        Vision.launchScatter(device, embeddings, buffers[0], buffers[1], n, hidden);
    }

    private void closePlaced() {
        placed.values().forEach(b -> {
            b[0].close();
            b[1].close();
        });
        placed.clear();
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
    public void tuningChanged() {
        text.tuningChanged();
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
        placement = batch.prefill() ? prepare(batch) : null;
        return text.forward(batch, pool, table);
    }

    @Override
    public int ranksSharingMemory() {
        return text.ranksSharingMemory();
    }

    @Override
    public void close() {
        closePlaced();
        vision.close();
        encoderDevice.close();
        text.close();
    }
}
