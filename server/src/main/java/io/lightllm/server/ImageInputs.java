package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.vision.ImageProcessor;
import io.lightllm.models.vision.VisionLanguageModel;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;

/**
 * A vision model's images in chat requests (OpenAI's {@code {"type": "image_url", "image_url": {"url": ...}}}
 * parts): read from a {@code data:} URI, from a file under {@code --allowed-local-media-path}, or, with
 * {@code --allow-remote-images}, fetched over http(s); decoded, preprocessed as the checkpoint's
 * preprocessor_config.json says, and put into the tokenized prompt in place of the image placeholders the
 * chat template wrote. Every problem with an image is a 400 naming its part.
 */
final class ImageInputs {
    private static final int MAX_IMAGE_BYTES = 32 << 20;
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10))
            .followRedirects(HttpClient.Redirect.NORMAL).build();

    private final VisionLanguageModel model;
    private final ImageProcessor processor;
    private final String placeholder;
    private final ServerConfig.MediaPolicy policy;

    ImageInputs(VisionLanguageModel model, ImageProcessor processor, String placeholder, ServerConfig.MediaPolicy policy) {
        this.model = model;
        this.processor = processor;
        this.placeholder = placeholder;
        this.policy = policy;
    }

    /** Whether {@code id} is an image's placeholder (never accepted from a client as a token id). */
    boolean isPlaceholder(int id) {
        return model.isPlaceholder(id);
    }

    /** The text a chat template writes for an image (the tokenizer's text of the image token, e.g. {@code <image>}; Qwen-VL's {@code <img></img>}). */
    String placeholder() {
        return placeholder;
    }

    /**
     * The line a message's {@code n}th image (from 1) becomes when the template reads strings: the placeholder, or as
     * Qwen-VL's tokenizer writes a query's images (from_list_format), {@code Picture n: <img></img>}.
     */
    String placeholderLine(int n) {
        return (placesImagesInline() ? "Picture " + n + ": " : "") + placeholder + "\n";
    }

    /** Whether a message's images stay where its parts put them, between its texts (Qwen-VL), rather than before them (Llava). */
    boolean placesImagesInline() {
        return model.imageEndIndex() >= 0;
    }

    /** The pixel values of an OpenAI image_url part. */
    float[] read(JsonNode part, String field) {
        JsonNode url = part.path("image_url");
        String u = url.isTextual() ? url.textValue() : url.path("url").asText(null);
        if (u == null || u.isBlank()) {
            throw ApiException.invalid(field, field + " needs image_url.url (a data: URI" + (policy.allowedLocalMediaPath() != null ? ", a file:// URL" : "")
                    + (policy.allowRemote() ? ", an http(s) URL" : "") + ")");
        }
        return pixels(bytes(u, field), field);
    }

    /** The pixel values of a LightLLM {@code multimodal_params.images} entry: {@code {"type": "base64" | "url", "data": ...}}. */
    float[] readLightLlm(JsonNode image, String field) {
        String type = image.path("type").asText(""), data = image.path("data").asText(null);
        if (data == null || data.isBlank()) {
            throw ApiException.invalid(field, field + " needs data (the base64 image, or its URL)");
        }
        return switch (type) {
            case "base64" -> pixels(base64(data, field, "data"), field);
            case "url" -> pixels(bytes(data, field), field);
            default -> throw ApiException.invalid(field, field + ".type must be base64 or url, got '" + type + "'");
        };
    }

    private float[] pixels(byte[] bytes, String field) {
        try {
            float[] pixels = processor.process(ImageProcessor.decode(bytes));
            int side = model.imageSize();
            if (pixels.length != 3 * side * side) {
                throw new IllegalStateException("the preprocessor makes " + pixels.length + " values; the vision tower reads 3 x " + side + " x " + side);
            }
            return pixels;
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(field, field + ": " + e.getMessage());
        }
    }

    /** The prompt with the images in place of their placeholders; a count that differs is a 400 on {@code field}. */
    int[] withImages(int[] prompt, List<float[]> images, String field) {
        try {
            return model.withImages(prompt, images);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(field, "the prompt's image placeholders (" + placeholder + ") and the images disagree: " + e.getMessage());
        }
    }

    private byte[] bytes(String url, String field) {
        if (url.startsWith("data:")) {
            int comma = url.indexOf(',');
            if (comma < 0 || !url.substring(0, comma).endsWith(";base64")) {
                throw ApiException.invalid(field, field + ": a data: URI must be base64 (data:image/png;base64,...)");
            }
            return base64(url.substring(comma + 1), field, "the data: URI");
        }
        URI uri;
        try {
            uri = URI.create(url);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(field, field + ": not a URL: " + e.getMessage());
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme();
        return switch (scheme) {
            case "file" -> localFile(uri, field);
            case "http", "https" -> remote(uri, field);
            default -> throw ApiException.invalid(field, field + ": image URLs are data:, file: or http(s): URLs, got '" + scheme + ":'");
        };
    }

    private static byte[] base64(String data, String field, String what) {
        try {
            return Base64.getMimeDecoder().decode(data);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(field, field + ": " + what + " is not valid base64");
        }
    }

    private byte[] localFile(URI uri, String field) {
        Path allowed = policy.allowedLocalMediaPath();
        if (allowed == null) {
            throw ApiException.invalid(field, field + ": local files are not read; start the server with --allowed-local-media-path DIR");
        }
        try {
            Path file = Path.of(uri).toRealPath();
            if (!file.startsWith(allowed.toRealPath())) {
                throw ApiException.invalid(field, field + ": " + uri.getPath() + " is outside --allowed-local-media-path");
            }
            if (Files.size(file) > MAX_IMAGE_BYTES) {
                throw ApiException.invalid(field, field + ": the image is larger than " + MAX_IMAGE_BYTES + " bytes");
            }
            return Files.readAllBytes(file);
        } catch (IOException | IllegalArgumentException e) {
            throw ApiException.invalid(field, field + ": cannot read " + uri.getPath() + " (" + e.getClass().getSimpleName() + ")");
        }
    }

    private byte[] remote(URI uri, String field) {
        if (!policy.allowRemote()) {
            throw ApiException.invalid(field, field + ": remote images are not fetched; start the server with --allow-remote-images");
        }
        try {
            HttpResponse<byte[]> r = HTTP.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(20)).GET().build(),
                    HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() != 200) {
                throw ApiException.invalid(field, field + ": fetching the image gave HTTP " + r.statusCode());
            }
            if (r.body().length > MAX_IMAGE_BYTES) {
                throw ApiException.invalid(field, field + ": the image is larger than " + MAX_IMAGE_BYTES + " bytes");
            }
            return r.body();
        } catch (IOException e) {
            throw ApiException.invalid(field, field + ": cannot fetch the image: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiException.invalid(field, field + ": interrupted while fetching the image");
        }
    }
}
