package io.lightllm.models.llama;

import io.lightllm.kernels.RopeScaling;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.config.RopeConfig;

/** The rotary scaling of a config, in the form the rotary kernel's host side computes tables from. */
final class LlamaRope {
    private LlamaRope() {
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
}
