package io.lightllm.models.infer;

import java.util.List;

/**
 * The image encoder of a model whose prompts hold images ({@link CausalLM#imageEncoder}): LightLLM's visual server.
 * The engine runs it as a stage of its own between tokenization and the router, so a prompt reaches prefill with
 * its images' features ready and the inference thread does not wait for an encoder. It runs on a device instance
 * of its own, beside the language model's steps. Thread-safe.
 */
public interface ImageEncoder {
    /** How many of the prompt's images have no features ready (0: the prompt can go to prefill as it is). */
    int imagesToEncode(int[] prompt);

    /**
     * Encodes, in one batch, the images of these prompts that have no features ready (an image in several prompts
     * once); returns how many it encoded. Throws IllegalStateException when an image can no longer be encoded (its
     * pixels were dropped from the host cache).
     */
    int encode(List<int[]> prompts);
}
