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
        Path shared = projectRoot().resolveSibling("shared");
        if (Files.isDirectory(shared)) {
            return shared;
        }
        throw new IllegalStateException("test data folder not found: " + shared);
    }

    /** The reactor root: the first folder up from the working directory with tornado-kernels/ and a pom.xml. */
    private static Path projectRoot() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null) {
            if (Files.exists(dir.resolve("tornado-kernels")) && Files.exists(dir.resolve("pom.xml"))) {
                return dir;
            }
            dir = dir.getParent();
        }
        throw new IllegalStateException("project root not found above " + Path.of("").toAbsolutePath());
    }

    /**
     * A fixture the project made itself ({@code models/src/test/resources/fixtures/<arch>}, written by
     * {@code scripts/fixtures/make_tiny.py}) as a model folder: a temporary folder linking its files and,
     * beside them, the tokenizer and generation config of {@code shared/fixtures/tiny/llama}, which its
     * golden data was tokenized with (linked, so they are not copied into the project).
     */
    public static Path madeFixture(String arch) {
        Path own = projectRoot().resolve("models/src/test/resources/fixtures").resolve(arch);
        if (!Files.isDirectory(own)) {
            throw new IllegalStateException("no fixture " + own);
        }
        try {
            Path dir = Files.createTempDirectory("lightllm-fixture-" + arch + "-");
            dir.toFile().deleteOnExit();
            Path tokenizer = tinyFixture("llama");
            for (String f : new String[] {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
                Files.createSymbolicLink(dir.resolve(f), tokenizer.resolve(f).toAbsolutePath()).toFile().deleteOnExit();
            }
            try (var files = Files.list(own)) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    Files.createSymbolicLink(dir.resolve(f.getFileName()), f.toAbsolutePath()).toFile().deleteOnExit();
                }
            }
            return dir;
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
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
