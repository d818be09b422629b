package io.lightllm.models.vision;

import java.util.List;

/**
 * An image encoder in front of a language model: square pixel values [3, side, side] in, a fixed number of
 * feature rows per image out, each as wide as the language model's embeddings. {@link ClipVisionTower} (Llava's
 * CLIP tower and projector) and {@link QwenVisionTower} (Qwen-VL's ViT and Resampler).
 */
public interface VisionTower extends AutoCloseable {
    /** Features [images * tokensPerImage, the language model's hidden] of the images' pixel values, on the host. */
    float[] encode(List<float[]> pixelValues);

    /** Image tokens one image becomes in the prompt. */
    int tokensPerImage();

    /** The pixel values' side: the tower reads [3, imageSize, imageSize]. */
    int imageSize();

    /** Bytes the tower's weights take on the device. */
    long weightBytes();

    /** {@code pixelValues} if they are [3, imageSize, imageSize]; else an IllegalArgumentException saying what the tower reads. */
    default float[] checkPixels(float[] pixelValues) {
        int side = imageSize();
        if (pixelValues.length != 3 * side * side) {
            throw new IllegalArgumentException("pixel values of " + pixelValues.length + " floats; the tower reads 3 x " + side + " x " + side);
        }
        return pixelValues;
    }

    @Override
    void close();

    /**
     * Patch p of each image as a row (channel, y, x within the patch: a patch convolution's weight layout), the
     * rows of all patches in raster order written into {@code out} from {@code offset}.
     */
    static void unfold(float[] px, int imageSize, int patchSize, io.lightllm.tornado.api.FloatArray out, int offset) {
        int side = imageSize / patchSize, ps = patchSize;
        int o = offset;
        for (int py = 0; py < side; py++) {
            for (int pxIndex = 0; pxIndex < side; pxIndex++) {
                for (int ch = 0; ch < 3; ch++) {
                    for (int y = 0; y < ps; y++) {
                        int row = (ch * imageSize + py * ps + y) * imageSize + pxIndex * ps;
                        for (int x = 0; x < ps; x++) {
                            out.set(o++, px[row + x]);
                        }
                    }
                }
            }
        }
    }
}
