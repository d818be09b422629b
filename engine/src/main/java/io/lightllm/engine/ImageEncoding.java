package io.lightllm.engine;

import io.lightllm.models.infer.ImageEncoder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The image encoder's stage (LightLLM's visual server), between tokenization and the router: one thread that takes
 * the prompts whose images have no features yet, encodes the images of every prompt waiting (up to a batch of
 * {@code maxImages}, across requests) in one call of the model's encoder, which runs on a device instance of its
 * own beside the inference steps, and hands the prompts on to the inference loop. A prompt whose images cannot be
 * encoded ends with an error here and never reaches the router; one cancelled while it waits is passed on
 * unencoded, for the loop to end.
 */
final class ImageEncoding implements Runnable {
    private static final long POLL_MS = 20;
    private final ImageEncoder encoder;
    private final int maxImages;
    private final Consumer<Request> next;
    private final Consumer<GeneratedToken> failures;
    private final BlockingQueue<Request> queue = new LinkedBlockingQueue<>();
    /** Prompts submitted and not yet handed on (queued or being encoded). */
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicLong images = new AtomicLong(), batches = new AtomicLong(), nanos = new AtomicLong();
    private volatile boolean stopping;

    /** {@code next} takes an encoded prompt's first sequence; {@code failures} the ends of a prompt that failed. */
    ImageEncoding(ImageEncoder encoder, int maxImages, Consumer<Request> next, Consumer<GeneratedToken> failures) {
        if (maxImages < 1) {
            throw new IllegalArgumentException("the encoder's batch must take at least one image, got " + maxImages);
        }
        this.encoder = encoder;
        this.maxImages = maxImages;
        this.next = next;
        this.failures = failures;
    }

    /** Whether {@code prompt} has images to encode before prefill. */
    boolean needed(int[] prompt) {
        return encoder.imagesToEncode(prompt) > 0;
    }

    /** Queues a prompt's first sequence (thread-safe). */
    void submit(Request first) {
        pending.incrementAndGet();
        queue.add(first);
    }

    /** Prompts waiting for their images (queued or being encoded). */
    int pending() {
        return pending.get();
    }

    /** Images encoded, encoder calls, and seconds spent in them, so far. */
    ImageEncodingStats stats() {
        return new ImageEncodingStats(pending.get(), images.get(), batches.get(), nanos.get() / 1e9);
    }

    /** Stops after the batch in hand; what is still queued is handed on (the loop, closing, ends it). */
    void stop() {
        stopping = true;
    }

    @Override
    public void run() {
        try {
            while (!stopping) {
                Request first = queue.poll(POLL_MS, TimeUnit.MILLISECONDS);
                if (first != null) {
                    encode(batch(first));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<Request> left = new ArrayList<>();
        queue.drainTo(left);
        left.forEach(this::handOn);
    }

    /** {@code first} and the prompts queued behind it whose images fit the batch (at least {@code first}). */
    private List<Request> batch(Request first) {
        List<Request> batch = new ArrayList<>(List.of(first));
        int count = encoder.imagesToEncode(first.prompt());
        for (Request r = queue.peek(); r != null; r = queue.peek()) {
            int more = encoder.imagesToEncode(r.prompt());
            if (count + more > maxImages) {
                break;
            }
            batch.add(queue.poll());
            count += more;
        }
        return batch;
    }

    private void encode(List<Request> batch) {
        List<Request> live = batch.stream().filter(r -> r.requestedFinish() == null).toList();
        try {
            if (!live.isEmpty()) {
                long start = System.nanoTime();
                int n = encoder.encode(live.stream().map(Request::prompt).toList());
                if (n > 0) {
                    images.addAndGet(n);
                    batches.incrementAndGet();
                    nanos.addAndGet(System.nanoTime() - start);
                }
            }
            batch.forEach(this::handOn);
        } catch (RuntimeException e) {
            // one prompt's dropped image must not fail the others: encode them one by one
            if (live.size() > 1) {
                batch.forEach(r -> encode(List.of(r)));
                return;
            }
            for (Request r : batch) {
                for (Request s : r.siblings()) {
                    failures.accept(new GeneratedToken(s, -1, null, FinishReason.ERROR, "the prompt's images could not be encoded: " + e.getMessage()));
                }
                pending.decrementAndGet();
            }
        }
    }

    private void handOn(Request first) {
        next.accept(first);
        pending.decrementAndGet();
    }
}
