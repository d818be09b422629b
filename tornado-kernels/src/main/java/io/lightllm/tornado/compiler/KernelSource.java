package io.lightllm.tornado.compiler;

/**
 * A compiled kernel: the C-family source and the name of its entry function. The entry's
 * parameters are the kernel's launch arguments in order: a pointer for each array, the value
 * for each scalar (booleans as int). {@code features}: the parts of the kernel language it uses
 * that not every device has.
 */
public record KernelSource(String entryName, String source, java.util.Set<Feature> features) {
    public KernelSource {
        features = java.util.Set.copyOf(features);
    }
}
