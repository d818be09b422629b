package io.lightllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/**
 * A checkpoint's image preprocessing (preprocessor_config.json, transformers' CLIPImageProcessor family):
 * RGB, resize (the shortest edge to {@code size.shortest_edge}, or to {@code size.height x size.width}), center
 * crop, rescale and normalise, giving pixel values [3, height, width] channel-first as the vision tower reads
 * them. The resize is Pillow's 8-bit resampling, reproduced exactly (its fixed-point coefficients and the
 * rounding between its horizontal and vertical passes), so the pixels equal transformers' PIL path.
 * Qwen-VL's checkpoints have no preprocessor_config.json: visual.py's torchvision transforms (resize to
 * image_size x image_size, bicubic, on the PIL image; ToTensor; Normalize with CLIP's mean and std) are read
 * from config.json's {@code visual.image_size} instead ({@link #qwenVl}).
 */
public final class ImageProcessor {
    private final int shortestEdge, resizeHeight, resizeWidth, cropHeight, cropWidth, resample;
    private final boolean resize, centerCrop, rescale, normalize;
    /** torchvision's ToTensor: the division by 255 in float (transformers' rescale multiplies in double). */
    private final boolean floatRescale;
    private final double rescaleFactor;
    private final float[] mean, std;

    private ImageProcessor(JsonNode c) {
        resize = c.path("do_resize").asBoolean(true);
        JsonNode size = c.path("size");
        shortestEdge = size.isInt() ? size.asInt() : size.path("shortest_edge").asInt(0);
        resizeHeight = size.path("height").asInt(0);
        resizeWidth = size.path("width").asInt(0);
        if (resize && shortestEdge <= 0 && (resizeHeight <= 0 || resizeWidth <= 0)) {
            throw new ModelLoadException("preprocessor_config.json: size needs shortest_edge or height and width, got " + size);
        }
        centerCrop = c.path("do_center_crop").asBoolean(false);
        JsonNode crop = c.path("crop_size");
        cropHeight = crop.isInt() ? crop.asInt() : crop.path("height").asInt(0);
        cropWidth = crop.isInt() ? crop.asInt() : crop.path("width").asInt(0);
        resample = c.path("resample").asInt(Resampling.BICUBIC);
        if (resample != Resampling.BICUBIC && resample != Resampling.BILINEAR) {
            throw new ModelLoadException("preprocessor_config.json: resample " + resample + " is not supported (2 bilinear and 3 bicubic are)");
        }
        rescale = c.path("do_rescale").asBoolean(true);
        rescaleFactor = c.path("rescale_factor").asDouble(1 / 255.0);
        normalize = c.path("do_normalize").asBoolean(true);
        mean = floats(c.path("image_mean"), 0.48145466f, 0.4578275f, 0.40821073f);
        std = floats(c.path("image_std"), 0.26862954f, 0.26130258f, 0.27577711f);
        floatRescale = c.path("torchvision").asBoolean(false);
    }

    /** Qwen-VL's visual.py transform: resize to {@code side} x {@code side} (PIL bicubic), ToTensor, Normalize (CLIP's mean and std). */
    public static ImageProcessor qwenVl(int side) {
        var c = JsonFields.mapper().createObjectNode().put("torchvision", true).put("resample", Resampling.BICUBIC);
        c.putObject("size").put("height", side).put("width", side);
        return new ImageProcessor(c);
    }

    /** The processor of a checkpoint folder's preprocessor_config.json. */
    public static ImageProcessor load(Path dir) {
        Path file = dir.resolve("preprocessor_config.json");
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(file) && Files.isRegularFile(config) && JsonFields.read(config).path("visual").path("image_size").isInt()) {
            return qwenVl(JsonFields.read(config).path("visual").path("image_size").asInt());
        }
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(dir + " has no preprocessor_config.json, which a vision model needs");
        }
        return new ImageProcessor(JsonFields.read(file));
    }

    /** Decodes a PNG, JPEG, GIF or BMP file's bytes; anything else (or a broken file) is an IllegalArgumentException. */
    public static BufferedImage decode(byte[] bytes) {
        try {
            BufferedImage image = ImageIO.read(new ByteArrayInputStream(bytes));
            if (image == null) {
                throw new IllegalArgumentException("not an image in a format read here (PNG, JPEG, GIF, BMP)");
            }
            return image;
        } catch (IOException | RuntimeException e) {
            throw e instanceof IllegalArgumentException iae ? iae : new IllegalArgumentException("the image cannot be decoded: " + e.getMessage(), e);
        }
    }

    /** Pixel values [3, h, w] of {@code image}, channel-first. */
    public float[] process(BufferedImage image) {
        int h = image.getHeight(), w = image.getWidth();
        int[][] rgb = rgb(image);
        if (resize) {
            int[] to = resizedSize(h, w);
            for (int ch = 0; ch < 3; ch++) {
                rgb[ch] = Resampling.resize(rgb[ch], w, h, to[1], to[0], resample);
            }
            h = to[0];
            w = to[1];
        }
        int top = 0, left = 0, oh = h, ow = w;
        if (centerCrop) {
            if (cropHeight > h || cropWidth > w) {
                throw new IllegalArgumentException("the image (" + w + "x" + h + " after resizing) is smaller than the crop " + cropWidth + "x" + cropHeight);
            }
            top = (h - cropHeight) / 2;
            left = (w - cropWidth) / 2;
            oh = cropHeight;
            ow = cropWidth;
        }
        float[] out = new float[3 * oh * ow];
        for (int ch = 0; ch < 3; ch++) {
            for (int y = 0; y < oh; y++) {
                for (int x = 0; x < ow; x++) {
                    int v = rgb[ch][(top + y) * w + left + x];
                    // as numpy: the rescale in double, rounded to float, the normalisation in float
                    float f = floatRescale ? v / 255f : rescale ? (float) (v * rescaleFactor) : v;
                    out[(ch * oh + y) * ow + x] = normalize ? (f - mean[ch]) / std[ch] : f;
                }
            }
        }
        return out;
    }

    /** transformers' get_resize_output_image_size: the short edge to {@code shortestEdge}, the long one scaled and truncated. */
    private int[] resizedSize(int h, int w) {
        if (shortestEdge <= 0) {
            return new int[] {resizeHeight, resizeWidth};
        }
        int shortSide = Math.min(h, w), longSide = Math.max(h, w);
        int newLong = (int) ((double) shortestEdge * longSide / shortSide);
        return w <= h ? new int[] {newLong, shortestEdge} : new int[] {shortestEdge, newLong};
    }

    /**
     * The three 8-bit channels of an image, as PIL's convert("RGB"): alpha dropped (not composited), grey
     * replicated, palettes looked up. Component rasters are read directly, since going through getRGB would
     * convert grey through a colour space.
     */
    static int[][] rgb(BufferedImage image) {
        int w = image.getWidth(), h = image.getHeight();
        int[][] out = new int[3][w * h];
        Raster raster = image.getRaster();
        boolean direct = image.getColorModel() instanceof ComponentColorModel && raster.getTransferType() == DataBuffer.TYPE_BYTE;
        int bands = raster.getNumBands();
        int[] pixel = new int[bands];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (direct) {
                    raster.getPixel(x, y, pixel);
                    for (int ch = 0; ch < 3; ch++) {
                        out[ch][y * w + x] = bands < 3 ? pixel[0] : pixel[ch];
                    }
                } else {
                    int argb = image.getRGB(x, y);
                    out[0][y * w + x] = (argb >> 16) & 0xff;
                    out[1][y * w + x] = (argb >> 8) & 0xff;
                    out[2][y * w + x] = argb & 0xff;
                }
            }
        }
        return out;
    }

    private static float[] floats(JsonNode array, float... defaults) {
        if (array.isNumber()) {
            return new float[] {array.floatValue(), array.floatValue(), array.floatValue()};
        }
        if (!array.isArray()) {
            return defaults;
        }
        float[] out = new float[3];
        for (int i = 0; i < 3; i++) {
            out[i] = array.get(i).floatValue();
        }
        return out;
    }
}
