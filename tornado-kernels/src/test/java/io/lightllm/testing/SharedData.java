package io.lightllm.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The one way tests find the project's shared test data: {@code ../shared} beside the project
 * root (fixtures, models, tokenizers). Never copied into the project.
 */
public final class SharedData {
    private SharedData() {
    }

    /**
     * The shared/ folder: {@code -Dlightllm.shared.dir} when given (a GPU machine gets a copy
     * inside the carried folder), else found by walking up to the project root.
     */
    public static Path root() {
        String override = System.getProperty("lightllm.shared.dir");
        if (override != null) {
            return Path.of(override);
        }
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null) {
            if (Files.exists(dir.resolve("tornado-kernels")) && Files.exists(dir.resolve("pom.xml"))) {
                Path shared = dir.resolveSibling("shared");
                if (Files.isDirectory(shared)) {
                    return shared;
                }
                throw new IllegalStateException("test data folder not found: " + shared);
            }
            dir = dir.getParent();
        }
        throw new IllegalStateException("project root not found above " + Path.of("").toAbsolutePath());
    }

    /** {@code shared/fixtures/tiny/<arch>}. */
    public static Path tinyFixture(String arch) {
        return root().resolve("fixtures/tiny").resolve(arch);
    }

    /** {@code shared/models/<name>}. */
    public static Path model(String name) {
        return root().resolve("models").resolve(name);
    }

    /** {@code shared/tokenizers/<name>}. */
    public static Path tokenizer(String name) {
        return root().resolve("tokenizers").resolve(name);
    }
}
