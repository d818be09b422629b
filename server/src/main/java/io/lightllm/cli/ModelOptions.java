package io.lightllm.cli;

import io.lightllm.models.LoadOptions;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.Models;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.parallel.RankDevices;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The model and device flags every model command shares: {@code --model PATH} (a HF directory or
 * a .gguf file), {@code --device D}, {@code --quant none|int8|int4}, {@code --load-format auto|dummy}
 * (dummy: {@code --model} names a preset or config.json and weights are random, {@code --dtype}),
 * {@code --tp N} (tensor parallelism over N ranks: {@code --device jvm} gives N JVM devices, a
 * comma list names one device per rank; see docs/tensor-parallel.md), {@code --batch-invariant}.
 *
 * @param devices one per rank; {@code device} is rank 0's, where logits and the request table live
 */
record ModelOptions(String model, Device device, List<Device> devices, Models.Quantization quant, boolean dummy, DType dummyDtype) {

    static ModelOptions read(Flags f) {
        String model = f.required("model");
        batchInvariance(f);
        List<Device> devices = RankDevices.resolve(deviceId(f), tp(f));
        Models.Quantization quant = quantization(f);
        boolean dummy = switch (f.string("load-format", "auto")) {
            case "auto" -> false;
            case "dummy" -> true;
            default -> throw new IllegalArgumentException("--load-format must be auto or dummy");
        };
        DType dtype = DType.fromName(f.string("dtype", "bf16"));
        if (!dummy && !Files.exists(Path.of(model))) {
            throw new IllegalArgumentException("--model " + model + ": no such file or directory");
        }
        return new ModelOptions(model, devices.getFirst(), devices, quant, dummy, dtype);
    }

    /**
     * {@code --device}, else the default device: {@code -Dtornado.device=B:D}, {@code -Dlightllm.device=ID} or
     * the JVM. Also reads {@code --threads N}, the JVM device's kernel threads, which must be set before a device opens.
     */
    static String deviceId(Flags f) {
        int threads = f.integer("threads", 0, 1, 4096);
        if (threads > 0) {
            System.setProperty(JvmDevice.THREADS_PROPERTY, Integer.toString(threads));
        }
        String explicit = f.string("device", null);
        return explicit != null ? explicit : Devices.defaultId(); // an explicit --device wins, even over a wrong property
    }

    /**
     * {@code --batch-invariant}: kernels whose results do not depend on the batch. The kernel launchers read it
     * ({@link io.lightllm.kernels.BatchInvariance}), so it is set before anything launches.
     */
    static void batchInvariance(Flags f) {
        if (f.bool("batch-invariant")) {
            System.setProperty(io.lightllm.kernels.BatchInvariance.PROPERTY, "true");
        }
    }

    /** {@code --tp N}: ranks of tensor parallelism (1: one device). */
    static int tp(Flags f) {
        return f.integer("tp", 1, 1, 64);
    }

    /** {@code --quant none|int8|int4}: weight-only int8 (per row) or int4 (per group of 128), or the stored dtype. */
    static Models.Quantization quantization(Flags f) {
        return switch (f.string("quant", "none")) {
            case "none" -> Models.Quantization.NONE;
            case "int8" -> Models.Quantization.INT8;
            case "int4" -> Models.Quantization.INT4;
            default -> throw new IllegalArgumentException("--quant must be none, int8 or int4");
        };
    }

    /**
     * {@code --kv-dtype auto|f32|f16|i8|fp8} (serve, generate, bench static): the KV pool's dtype, or null for auto (the
     * model's preferred pool dtype on its device, decided once it is loaded). fp8 is e4m3 with a scale per token and head.
     */
    static DType kvDtype(Flags f) {
        String name = f.string("kv-dtype", "auto");
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "auto" -> null;
            case "f32", "float32" -> DType.F32;
            case "f16", "float16" -> DType.F16;
            case "i8", "int8" -> DType.I8;
            case "fp8", "f8", "fp8_e4m3" -> DType.F8_E4M3;
            default -> throw new IllegalArgumentException("--kv-dtype must be auto, f32, f16, i8 or fp8 (got '" + name + "')");
        };
    }

    /** Opens the checkpoint files (null for dummy weights). */
    ModelFiles files(boolean quiet) {
        return dummy ? null : ModelFiles.open(Path.of(model), quiet ? LoadOptions.quietly() : LoadOptions.defaults());
    }

    CausalLM load(ModelFiles files, boolean quiet) {
        return dummy ? Models.dummy(model, dummyDtype, devices, quant, quiet) : Models.load(files, devices, quant, quiet);
    }
}
