package io.lightllm.server;

import io.lightllm.engine.Engine;
import io.lightllm.models.tokenizer.Tokenizer;
import java.util.Set;

/**
 * The model the server serves: its running engine and what the handlers need besides it.
 *
 * @param name          the model's id in the OpenAI API (requests naming another model get 400)
 * @param engine        the running engine; the server does not close it
 * @param tokenizer     encodes prompts in the handlers, so that lengths are checked before submission
 * @param contextLength the longest sequence (prompt + output) a request may reach
 * @param specialIds    ids reported as {@code special} in LightLLM's stream (bos and the stop ids)
 * @param chatTemplate  renders chat messages to a prompt
 * @param images        a vision model's image input, or null: a text model, whose chats take text parts only
 */
public record ServedModel(String name, Engine engine, Tokenizer tokenizer, int contextLength, Set<Integer> specialIds,
                          ChatTemplate chatTemplate, ImageInputs images) {
    public ServedModel {
        specialIds = Set.copyOf(specialIds);
    }
}
