package io.lightllm.server;

import io.lightllm.engine.EngineConfig;
import io.lightllm.models.Models;
import java.nio.file.Path;

/**
 * What {@code lightllm serve} serves and how.
 *
 * @param model     a model directory or .gguf file
 * @param device    the device id ("jvm", "opencl:0:0", "cuda:0"), or one per rank ("cuda:0,cuda:1")
 * @param tp        tensor-parallel ranks (1: the whole model on one device)
 * @param name      the model's id in the API; null: the directory or file name
 * @param engine    the engine's router limits, KV dtype and eos ids (the eos ids are replaced by the model's)
 * @param server    host, port, API key and limits
 * @param quantization weight-only int8, or the stored dtype
 * @param quiet     no progress bar while loading (tests)
 * @param memFraction when positive, the KV pool is sized from this fraction of the memory left
 *                  after the weights, replacing the router's maxTotalTokens
 */
public record ServeOptions(Path model, String device, int tp, String name, EngineConfig engine, ServerConfig server,
                           Models.Quantization quantization, boolean quiet, double memFraction) {
    /** A KV pool of exactly the router's maxTotalTokens. */
    public ServeOptions(Path model, String device, String name, EngineConfig engine, ServerConfig server,
                        Models.Quantization quantization, boolean quiet) {
        this(model, device, 1, name, engine, server, quantization, quiet, 0);
    }

    public String servedName() {
        if (name != null) {
            return name;
        }
        String file = model.toAbsolutePath().normalize().getFileName().toString();
        return file.endsWith(".gguf") ? file.substring(0, file.length() - ".gguf".length()) : file;
    }
}
