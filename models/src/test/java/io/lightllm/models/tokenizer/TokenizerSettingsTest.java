package io.lightllm.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where a checkpoint keeps its chat template, first found first, as transformers looks: .jinja, chat_template.json, tokenizer_config.json. */
class TokenizerSettingsTest {
    @Test
    void theChatTemplateIsFoundWhereTransformersLooks(@TempDir Path dir) throws Exception {
        assertEquals(Optional.empty(), TokenizerSettings.load(dir).chatTemplate(), "none anywhere");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"from tokenizer_config\", \"bos_token\": \"<s>\"}");
        assertEquals(Optional.of("from tokenizer_config"), TokenizerSettings.load(dir).chatTemplate());
        Files.writeString(dir.resolve("chat_template.json"), "{\"chat_template\": \"from chat_template.json\"}");
        assertEquals(Optional.of("from chat_template.json"), TokenizerSettings.load(dir).chatTemplate(), "a processor's template (llava-hf)");
        Files.writeString(dir.resolve("chat_template.jinja"), "from the .jinja file");
        assertEquals(Optional.of("from the .jinja file"), TokenizerSettings.load(dir).chatTemplate());
        assertEquals(Optional.of("<s>"), TokenizerSettings.load(dir).bosToken(), "the rest still from tokenizer_config.json");
    }
}
