package io.lightllm.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * What tokenizer_config.json (and chat_template.jinja or chat_template.json, where newer checkpoints keep the template)
 * say about special tokens.
 *
 * @param addBosToken  add_bos_token when the file states it: transformers' Llama tokenizers then
 *                     add BOS by this flag rather than by tokenizer.json's post-processor
 * @param addEosToken  add_eos_token when stated
 * @param bosToken     the BOS token text
 * @param eosToken     the EOS token text
 * @param chatTemplate the Jinja chat template (the "default" one where several are named)
 * @param tokenizerClass tokenizer_class (the tokenizers whose code adds tokens outside the model file: ChatGLMTokenizer)
 */
public record TokenizerSettings(Optional<Boolean> addBosToken, Optional<Boolean> addEosToken,
                                Optional<String> bosToken, Optional<String> eosToken,
                                Optional<String> chatTemplate, Optional<String> tokenizerClass) {

    public TokenizerSettings(Optional<Boolean> addBosToken, Optional<Boolean> addEosToken, Optional<String> bosToken,
                             Optional<String> eosToken, Optional<String> chatTemplate) {
        this(addBosToken, addEosToken, bosToken, eosToken, chatTemplate, Optional.empty());
    }

    public static TokenizerSettings none() {
        return new TokenizerSettings(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
    }

    /**
     * Reads {@code dir/tokenizer_config.json}, and the chat template where newer checkpoints keep it, each if
     * present, the first found winning as in transformers: {@code chat_template.jinja}, then
     * {@code chat_template.json} (a processor's, as vision models such as llava-hf's ship it), then
     * tokenizer_config.json's.
     */
    public static TokenizerSettings load(Path dir) {
        Path file = dir.resolve("tokenizer_config.json");
        JsonNode c = Files.isRegularFile(file) ? JsonFields.read(file) : JsonFields.mapper().createObjectNode();
        Optional<String> template = chatTemplate(c);
        Path processorTemplate = dir.resolve("chat_template.json");
        if (Files.isRegularFile(processorTemplate)) {
            template = chatTemplate(JsonFields.read(processorTemplate)).or(() -> chatTemplate(c));
        }
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                template = Optional.of(Files.readString(jinja));
            } catch (IOException e) {
                throw new ModelLoadException("cannot read " + jinja + ": " + e.getMessage(), e);
            }
        }
        return new TokenizerSettings(JsonFields.firstBoolean(c, "add_bos_token"), JsonFields.firstBoolean(c, "add_eos_token"),
                JsonFields.tokenText(c, "bos_token"), JsonFields.tokenText(c, "eos_token"), template,
                JsonFields.firstString(c, "tokenizer_class"));
    }

    /** chat_template is a string, or a list of {name, template} of which "default" is the chat one. */
    private static Optional<String> chatTemplate(JsonNode c) {
        return JsonFields.first(c, "chat_template").flatMap(t -> {
            if (t.isTextual()) {
                return Optional.of(t.asText());
            }
            for (JsonNode named : t) {
                if (named.path("name").asText().equals("default")) {
                    return Optional.of(named.path("template").asText());
                }
            }
            return Optional.empty();
        });
    }
}
