package io.lightllm.tornado.compiler;

/**
 * A compiled kernel: the C-family source and the name of its entry function. The entry's
 * parameters are the kernel's launch arguments in order: a pointer for each array, the value
 * for each scalar (booleans as int). {@code features}: the parts of the kernel language it uses
 * that not every device has. {@code dynamicLocalBytes}: the dynamic shared memory a CUDA launch must
 * give it (its local arrays when they pass CUDA's 48 KB of static shared memory), else 0.
 */
public record KernelSource(String entryName, String source, java.util.Set<Feature> features, int dynamicLocalBytes) {
    public KernelSource {
        features = java.util.Set.copyOf(features);
    }
}
