package io.lightllm.server;

import io.lightllm.models.ModelFiles;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.tornado.runtime.Device;

/** Placeholder until the model factory lands in main: then ModelServer calls it directly and this class goes. */
final class CausalLMs {
    private CausalLMs() {
    }

    static CausalLM build(ModelFiles files, Device device) {
        throw new UnsupportedOperationException("no model classes yet (the Llama model is being merged)");
    }
}
