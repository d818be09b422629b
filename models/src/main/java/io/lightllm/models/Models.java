package io.lightllm.models;

import io.lightllm.kernels.KernelLibrary;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.llama.LlamaModel;
import io.lightllm.tornado.runtime.Device;
import java.util.Map;
import java.util.Set;

/**
 * Builds the model class for a checkpoint's architecture: the one place that maps
 * {@code model_type} to an implementation. Adding an architecture means adding its row.
 */
public final class Models {
    /** Architectures that run through the Llama layers (differences handled by config and weight names). */
    private static final Set<String> LLAMA_FAMILY = Set.of("llama", "mistral", "qwen2", "yi", "internlm", "baichuan", "minicpm");

    private Models() {
    }

    /** Weight-only int8 or the stored dtype. */
    public enum Quantization { NONE, INT8 }

    /** The model of {@code files} on {@code device}; weights are uploaded (or aliased on the JVM) with a progress bar. */
    public static CausalLM load(ModelFiles files, Device device, Quantization quant, boolean quiet) {
        ModelConfig c = files.config();
        if (!LLAMA_FAMILY.contains(c.modelType())) {
            throw new ModelLoadException("architecture '" + c.modelType() + "' (" + String.join(", ", c.architectures())
                    + ") is recognised but has no model class yet; implemented: " + String.join(", ", new java.util.TreeSet<>(LLAMA_FAMILY)));
        }
        if (c.modelType().equals("baichuan") && c.numHiddenLayers() == 40) {
            throw new ModelLoadException("Baichuan-13B uses ALiBi attention, which the Llama layers do not implement yet");
        }
        KernelLibrary.installOverrides(device);
        long bytes = 0;
        for (String name : files.weights().names()) {
            bytes += files.weights().get(name).data().byteSize();
        }
        try (ConsoleProgress progress = ConsoleProgress.start("loading " + files.source().getFileName() + " to " + device.id(),
                bytes, quiet)) {
            return new LlamaModel(device, c, files.weights(), quant == Quantization.INT8, progress::advance);
        }
    }

    /** Architectures with a model class, for messages and docs. */
    public static Map<String, String> implemented() {
        return Map.of("llama family", String.join(", ", new java.util.TreeSet<>(LLAMA_FAMILY)));
    }
}
