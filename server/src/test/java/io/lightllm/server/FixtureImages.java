package io.lightllm.server;

import com.openai.models.chat.completions.ChatCompletionContentPart;
import com.openai.models.chat.completions.ChatCompletionContentPartImage;
import com.openai.models.chat.completions.ChatCompletionContentPartText;
import io.lightllm.models.vision.ImageProcessor;
import io.lightllm.testing.SharedData;
import java.io.IOException;
import java.nio.file.Files;
import java.util.Base64;
import java.util.List;

/** A made vision fixture's images as the serve tests send them and as the server turns them into pixel values. */
final class FixtureImages {
    private final String fixture;

    FixtureImages(String fixture) {
        this.fixture = fixture;
    }

    /**
     * The image's pixel values as the checkpoint's processor makes them (equal to the reference's to 1.5e-6: the
     * exact floats, since a tiny model's greedy choices include near ties).
     */
    float[] pixels(String image) throws IOException {
        var dir = SharedData.madeFixture(fixture);
        return ImageProcessor.load(dir).process(ImageProcessor.decode(Files.readAllBytes(dir.resolve(image))));
    }

    String dataUri(String image) throws IOException {
        return "data:image/png;base64," + Base64.getEncoder().encodeToString(Files.readAllBytes(SharedData.madeFixture(fixture).resolve(image)));
    }

    /** An OpenAI Java SDK user turn: the image at {@code url}, then {@code text}. */
    static List<ChatCompletionContentPart> imageThenText(String url, String text) {
        return List.of(
                ChatCompletionContentPart.ofImageUrl(ChatCompletionContentPartImage.builder()
                        .imageUrl(ChatCompletionContentPartImage.ImageUrl.builder().url(url).build()).build()),
                ChatCompletionContentPart.ofText(ChatCompletionContentPartText.builder().text(text).build()));
    }
}
