package io.lightllm.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.RouterConfig;
import io.lightllm.models.config.JsonFields;
import io.lightllm.testing.SharedData;
import io.lightllm.tornado.api.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/** A made vision fixture as the serve tests serve it: a model directory with the image tags and a chat template, and a media folder. */
final class VisionFixtureModel {
    /**
     * No prefix cache: the expected answers recompute each prompt as the server's did (reading a cached prefix sums in
     * another order, which can flip a tiny model's near ties); VisionEngineTest covers the cache.
     */
    static final EngineConfig ENGINE = new EngineConfig(new RouterConfig(1024, 512, 8, 64, 6), DType.F32, Set.of(), 1, false, 0);

    private VisionFixtureModel() {
    }

    /**
     * {@code dir/model}: the fixture's files linked, except its tokenizer files, which are rewritten with {@code tags}
     * added as special tokens from id {@code firstTagId} and {@code template} as the chat template.
     */
    static Path write(String fixture, Path dir, int firstTagId, List<String> tags, String template) throws IOException {
        Path source = SharedData.madeFixture(fixture);
        Path model = Files.createDirectories(dir.resolve("model"));
        try (var files = Files.list(source)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (!f.getFileName().toString().startsWith("tokenizer")) {
                    Files.createSymbolicLink(model.resolve(f.getFileName()), f.toRealPath());
                }
            }
        }
        ObjectNode tokenizer = (ObjectNode) JsonFields.read(source.resolve("tokenizer.json"));
        for (int i = 0; i < tags.size(); i++) {
            tokenizer.withArray("added_tokens").addObject().put("id", firstTagId + i).put("content", tags.get(i)).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        Files.writeString(model.resolve("tokenizer.json"), tokenizer.toString());
        ObjectNode tokenizerConfig = (ObjectNode) JsonFields.read(source.resolve("tokenizer_config.json"));
        Files.writeString(model.resolve("tokenizer_config.json"), tokenizerConfig.put("chat_template", template).toString());
        return model;
    }

    /** {@code dir/media} holding the fixture's portrait.png: the folder --allowed-local-media-path names. */
    static Path media(String fixture, Path dir) throws IOException {
        Path media = Files.createDirectories(dir.resolve("media"));
        Files.copy(SharedData.madeFixture(fixture).resolve("portrait.png"), media.resolve("portrait.png"));
        return media;
    }
}
