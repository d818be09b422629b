package io.lightllm.models.weights;

import io.lightllm.models.ConsoleProgress;
import io.lightllm.models.LoadOptions;

import java.util.Collection;

/** The last loading step shared by every format: the progress bar over all tensors, and prefaulting. */
public final class WeightLoading {
    private WeightLoading() {
    }

    /**
     * Walks {@code tensors} with a progress bar counting their bytes (unless quiet), reading each
     * one's pages into memory first when {@link LoadOptions#prefault()} is set.
     */
    public static void touch(Collection<Tensor> tensors, String label, LoadOptions options) {
        long total = tensors.stream().mapToLong(t -> t.data().byteSize()).sum();
        try (ConsoleProgress progress = ConsoleProgress.start(label, total, options.quiet())) {
            for (Tensor t : tensors) {
                if (options.prefault()) {
                    t.data().load();
                }
                progress.advance(t.data().byteSize());
            }
        }
    }
}
