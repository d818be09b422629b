package io.lightllm.models;

import io.lightllm.kernels.KernelLibrary;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.decoder.Architecture;
import io.lightllm.models.decoder.Architectures;
import io.lightllm.models.decoder.DecoderModel;
import io.lightllm.models.decoder.TensorParallelModel;
import io.lightllm.models.decoder.TensorShapes;
import io.lightllm.models.weights.DummyWeights;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import java.util.List;

/**
 * Loads a checkpoint as a runnable model: the {@link DecoderModel} of its architecture's
 * declaration ({@link Architectures}), on one device or split over several.
 */
public final class Models {

    private Models() {
    }

    /**
     * Weight-only quantisation of float matrices at load: int8 per row, int4 per group of 128
     * ({@link io.lightllm.kernels.QuantFormat#INT4}), or none (the stored dtype). GGUF block-quantised
     * matrices keep their format whatever this says.
     */
    public enum Quantization { NONE, INT8, INT4 }

    /** The model of {@code files} on {@code device}; weights are uploaded (or aliased on the JVM) with a progress bar. */
    public static CausalLM load(ModelFiles files, Device device, Quantization quant, boolean quiet) {
        return load(files, List.of(device), quant, quiet);
    }

    /**
     * The model of {@code files} split over {@code devices} by tensor parallelism (one rank per
     * device, rank 0 first; a device may repeat); one device is the plain single-device model.
     */
    public static CausalLM load(ModelFiles files, List<Device> devices, Quantization quant, boolean quiet) {
        return load(files.config(), files.weights(), files.source().getFileName().toString(), devices, quant, quiet);
    }

    /**
     * A model of the named preset ({@code llama-1b}, {@code llama-8b}) or config.json with random
     * weights of {@code dtype} ({@code --load-format dummy}): full-size benchmarks without a download.
     * The weights live as long as the model.
     */
    public static CausalLM dummy(String presetOrConfig, DType dtype, Device device, Quantization quant, boolean quiet) {
        return dummy(presetOrConfig, dtype, List.of(device), quant, quiet);
    }

    /** {@link #dummy(String, DType, Device, Quantization, boolean)} split over {@code devices}. */
    public static CausalLM dummy(String presetOrConfig, DType dtype, List<Device> devices, Quantization quant, boolean quiet) {
        ModelConfig c = dummyConfig(presetOrConfig);
        DummyWeights weights = new DummyWeights(TensorShapes.of(Architectures.of(c), c), dtype);
        CausalLM model = load(c, weights, "dummy " + presetOrConfig, devices, quant, quiet);
        return new DelegatingModel(model, weights);
    }

    public static ModelConfig dummyConfig(String presetOrConfig) {
        return Architectures.readConfig(dummyConfigJson(presetOrConfig), "preset " + presetOrConfig);
    }

    /** The config.json of a preset, or the given config.json file. */
    private static com.fasterxml.jackson.databind.JsonNode dummyConfigJson(String presetOrConfig) {
        java.nio.file.Path path = java.nio.file.Path.of(presetOrConfig);
        try (java.io.InputStream in = java.nio.file.Files.isRegularFile(path) ? java.nio.file.Files.newInputStream(path)
                : Models.class.getResourceAsStream("/dummy/" + presetOrConfig + ".json")) {
            if (in == null) {
                throw new ModelLoadException("no dummy preset '" + presetOrConfig + "' (presets: llama-1b, llama-8b, mixtral-8x7b, llava-1.5-7b, qwen-vl-chat; or a config.json path)");
            }
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(in);
        } catch (java.io.IOException e) {
            throw new ModelLoadException("cannot read preset " + presetOrConfig + ": " + e.getMessage());
        }
    }

    /**
     * Writes the dummy model of a preset or config.json as a Hugging Face checkpoint in {@code dir}:
     * config.json and model.safetensors with the same random weights {@link #dummy} makes (for
     * benchmarks that read files: serving, other engines on the same files). Returns the bytes of weights.
     */
    public static long writeDummyCheckpoint(String presetOrConfig, DType dtype, java.nio.file.Path dir) throws java.io.IOException {
        com.fasterxml.jackson.databind.node.ObjectNode json = (com.fasterxml.jackson.databind.node.ObjectNode) dummyConfigJson(presetOrConfig).deepCopy();
        json.put("torch_dtype", switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            default -> "bfloat16";
        });
        ModelConfig c = Architectures.readConfig(json, "preset " + presetOrConfig);
        java.nio.file.Files.createDirectories(dir);
        java.nio.file.Files.writeString(dir.resolve("config.json"), json.toPrettyString());
        try (DummyWeights weights = new DummyWeights(TensorShapes.of(Architectures.of(c), c), dtype)) {
            List<io.lightllm.models.weights.Tensor> tensors = weights.names().stream().map(weights::get).toList();
            io.lightllm.models.weights.SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors);
            return tensors.stream().mapToLong(t -> t.data().byteSize()).sum();
        }
    }

    private static CausalLM load(ModelConfig c, WeightSource weights, String label, List<Device> devices, Quantization quant, boolean quiet) {
        Architecture architecture = Architectures.of(c);
        if (devices.isEmpty()) {
            throw new IllegalArgumentException("no device to load " + label + " to");
        }
        devices.forEach(KernelLibrary::installOverrides);
        long bytes = 0;
        for (String name : weights.names()) {
            bytes += weights.get(name).data().byteSize();
        }
        String to = devices.stream().map(Device::id).collect(java.util.stream.Collectors.joining(","));
        CausalLM model;
        try (ConsoleProgress progress = ConsoleProgress.start("loading " + label + " to " + to, bytes, quiet)) {
            if (architecture.vision() != null) {
                model = new io.lightllm.models.vision.VisionLanguageModel(devices, architecture, c, weights, quant, progress::advance);
            } else {
                model = devices.size() == 1 ? new DecoderModel(devices.getFirst(), architecture, c, weights, quant, progress::advance)
                        : new TensorParallelModel(devices, architecture, c, weights, quant, progress::advance);
            }
        }
        if (!quiet && model instanceof TensorParallelModel tp) {
            System.err.println("tensor parallelism: " + tp.worldSize() + " ranks on " + to + ", collectives over " + tp.communicator());
        }
        return model;
    }

    /** A model that also owns what its weights alias (dummy weights in host memory). */
    private record DelegatingModel(CausalLM model, AutoCloseable owned) implements CausalLM {
        public CausalLM unwrap() {
            return model.unwrap();
        }

        public void tuningChanged() {
            model.tuningChanged();
        }

        public boolean isPlaceholder(int id) {
            return model.isPlaceholder(id);
        }

        public io.lightllm.models.infer.ImageEncoder imageEncoder() {
            return model.imageEncoder();
        }

        public Device device() {
            return model.device();
        }

        public int ranksSharingMemory() {
            return model.ranksSharingMemory();
        }

        public int vocabSize() {
            return model.vocabSize();
        }

        public int maxSequenceLength() {
            return model.maxSequenceLength();
        }

        public long weightBytes() {
            return model.weightBytes();
        }

        public DType preferredKvDtype() {
            return model.preferredKvDtype();
        }

        public io.lightllm.models.infer.TokenKvPool newKvPool(int slots, DType dtype) {
            return model.newKvPool(slots, dtype);
        }

        public io.lightllm.tornado.runtime.DeviceBuffer forward(io.lightllm.models.infer.NopadBatch batch,
                io.lightllm.models.infer.TokenKvPool pool, io.lightllm.models.infer.RequestTokenTable table) {
            return model.forward(batch, pool, table);
        }

        public void close() {
            model.close();
            try {
                owned.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

}
