package io.lightllm.models;

/**
 * How {@link ModelFiles#open(java.nio.file.Path, LoadOptions)} behaves.
 *
 * @param quiet    no progress bar on stderr
 * @param prefault read every mapped weight page once while loading, so that the first forward
 *                 pass does not wait on disk (and the progress bar measures real work); off by
 *                 default because a model larger than RAM would then be read twice
 */
public record LoadOptions(boolean quiet, boolean prefault) {
    public static LoadOptions defaults() {
        return new LoadOptions(false, false);
    }

    public static LoadOptions quietly() {
        return new LoadOptions(true, false);
    }
}
