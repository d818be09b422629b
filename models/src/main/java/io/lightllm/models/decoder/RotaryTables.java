package io.lightllm.models.decoder;

import io.lightllm.kernels.RopeScaling;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.config.RopeConfig;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * The rotary inverse-frequency table on the device. Dynamic NTK scaling depends on the sequence
 * length, the other scalings do not; GGUF llama3 files' rope_freqs divide the frequencies.
 */
final class RotaryTables implements AutoCloseable {
    private final Device device;
    private final ModelConfig config;
    private final RopeScaling rope;
    /** Per-pair divisors of the inverse frequencies (GGUF llama3 files), or null. */
    private final FloatArray frequencyFactors;
    private DeviceBuffer invFreq;
    private int invFreqKey = -1;

    RotaryTables(Device device, ModelConfig config, FloatArray frequencyFactors) {
        this.device = device;
        this.config = config;
        this.rope = of(config);
        this.frequencyFactors = frequencyFactors;
    }

    static RopeScaling of(ModelConfig c) {
        RopeConfig r = c.rope();
        return switch (r.type()) {
            case DEFAULT -> RopeScaling.none(r.theta());
            case LINEAR -> RopeScaling.linear(r.theta(), r.factor());
            case DYNAMIC -> RopeScaling.dynamicNtk(r.theta(), r.factor(),
                    r.originalMaxPositionEmbeddings() > 0 ? r.originalMaxPositionEmbeddings() : c.maxPositionEmbeddings());
            case LLAMA3 -> RopeScaling.llama3(r.theta(), r.factor(), r.lowFreqFactor(), r.highFreqFactor(),
                    r.originalMaxPositionEmbeddings());
        };
    }

    /** Whether the table for {@code seqLen} differs from the one last returned (what recorded steps read). */
    boolean changesFor(int seqLen) {
        return invFreq == null || key(seqLen) != invFreqKey;
    }

    DeviceBuffer forSeqLen(int seqLen) {
        int key = key(seqLen);
        if (invFreq == null || key != invFreqKey) {
            FloatArray host = rope.inverseFrequencies(config.rotaryDim(), key);
            if (frequencyFactors != null) {
                // llama.cpp: theta_i = pos * base^(-2i/d) / rope_freqs[i]
                for (int i = 0; i < frequencyFactors.getSize(); i++) {
                    host.set(i, host.get(i) / frequencyFactors.get(i));
                }
            }
            if (invFreq != null) {
                invFreq.close();
            }
            FloatArray copy = FloatArray.allocate(host.getSize());
            copy.copyFrom(host);
            invFreq = device.upload(copy);
            invFreqKey = key;
        }
        return invFreq;
    }

    private int key(int seqLen) {
        return rope.type() == RopeScaling.Type.DYNAMIC ? Math.max(seqLen, config.maxPositionEmbeddings()) : 0;
    }

    @Override
    public void close() {
        if (invFreq != null) {
            invFreq.close();
        }
    }
}
