package io.lightllm.engine;

/**
 * The image encoder stage's counters ({@link Engine#imageStats}).
 *
 * @param pending  prompts waiting for their images to be encoded (queued or in the encoder)
 * @param images   images encoded so far
 * @param batches  encoder calls so far (each encodes the images of every prompt then waiting, up to the batch size)
 * @param seconds  time spent in those calls
 */
public record ImageEncodingStats(int pending, long images, long batches, double seconds) {
}
