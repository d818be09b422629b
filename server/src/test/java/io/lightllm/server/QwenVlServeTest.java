package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.lightllm.engine.SamplingParams;
import io.lightllm.models.Models;
import io.lightllm.models.vision.VisionLanguageModel;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Qwen-VL served (the tiny fixture of {@code make_qwenvl.py}, whose checkpoint, like Qwen-VL-Chat's, has no
 * preprocessor_config.json: the transform follows config.json's visual.image_size). The fixture's tokenizer gets
 * Qwen-VL's {@code <img>}, {@code </img>} and {@code <imgpad>} as added tokens at the config's image_start_id (512)
 * and a ChatML template that reads string content, so an image part renders as Qwen-VL's tokenizer writes a
 * query's images: {@code Picture 1: <img></img>}, whose span the server fills with the image's ids.
 */
class QwenVlServeTest {
    /** ChatML, as Qwen-VL-Chat's make_context writes turns (the template reads each message's content as a string). */
    static final String TEMPLATE = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    private static final String NAME = "qwen-vl-tiny";

    @TempDir
    static Path dir;
    private static final FixtureImages IMAGES = new FixtureImages("qwenvl");
    private static ModelServer server;
    private static OpenAIClient client;
    private static Path media;

    @BeforeAll
    static void start() throws Exception {
        Path model = VisionFixtureModel.write("qwenvl", dir, 512, List.of("<img>", "</img>", "<imgpad>"), TEMPLATE);
        media = VisionFixtureModel.media("qwenvl", dir);
        server = ModelServer.start(new ServeOptions(model, "jvm", NAME, VisionFixtureModel.ENGINE,
                ServerConfig.local(0).withMedia(new ServerConfig.MediaPolicy(media, false)), Models.Quantization.NONE, true));
        client = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("unused").maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    /** The prompt ids of a user turn {@code text} after one image per entry of {@code pixels}, built without the server. */
    private static int[] expectedIds(List<float[]> pixels, String text) {
        VisionLanguageModel vl = (VisionLanguageModel) server.local().model();
        StringBuilder turn = new StringBuilder();
        for (int i = 0; i < pixels.size(); i++) {
            turn.append("Picture ").append(i + 1).append(": <img></img>\n");
        }
        String rendered = "<|im_start|>user\n" + turn + text + "<|im_end|>\n<|im_start|>assistant\n";
        return vl.withImages(server.local().tokenizer().encode(rendered, false), pixels);
    }

    private static String expected(int[] ids, int maxTokens) {
        return server.engine().generate(ids, SamplingParams.greedy(maxTokens)).getFirst().text();
    }



    @Test
    void theJavaSdkSendsAnImageAsADataUrl() throws Exception {
        ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder().model(NAME).maxCompletionTokens(8).temperature(0.0)
                .addUserMessageOfArrayOfContentParts(FixtureImages.imageThenText(IMAGES.dataUri("landscape.png"), "What is this?"))
                .build());
        int[] ids = expectedIds(List.of(IMAGES.pixels("landscape.png")), "What is this?");
        assertEquals(expected(ids, 8), c.choices().getFirst().message().content().orElseThrow());
        assertEquals(ids.length, c.usage().orElseThrow().promptTokens(), "the image counts as its 16 tokens between <img> and </img>");
        int[] other = expectedIds(List.of(IMAGES.pixels("portrait.png")), "What is this?");
        assertTrue(!java.util.Arrays.equals(ids, other), "another image, other ids");
    }

    @Test
    void twoImagesOneAsALocalFileStreamed() throws Exception {
        String body = "{\"model\": \"" + NAME + "\", \"max_tokens\": 6, \"temperature\": 0, \"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": ["
                + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + IMAGES.dataUri("landscape.png") + "\"}},"
                + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + media.resolve("portrait.png").toUri() + "\"}},"
                + "{\"type\": \"text\", \"text\": \"Compare them.\"}]}]}";
        Http.Answer a = Http.post(server.url() + "/v1/chat/completions", body);
        assertEquals(200, a.status(), a.body());
        assertEquals(expected(expectedIds(List.of(IMAGES.pixels("landscape.png"), IMAGES.pixels("portrait.png")), "Compare them."), 6), Http.streamedChatText(a));
    }

    /** Parts stay in their order, as Qwen-VL's from_list_format writes them: text, the image's line, more text. */
    @Test
    void anImageBetweenTextsStaysBetweenThem() throws Exception {
        String body = "{\"model\": \"" + NAME + "\", \"max_tokens\": 6, \"temperature\": 0, \"messages\": [{\"role\": \"user\", \"content\": ["
                + "{\"type\": \"text\", \"text\": \"Look: \"},"
                + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + IMAGES.dataUri("portrait.png") + "\"}},"
                + "{\"type\": \"text\", \"text\": \"What is it?\"}]}]}";
        Http.Answer a = Http.post(server.url() + "/v1/chat/completions", body);
        assertEquals(200, a.status(), a.body());
        VisionLanguageModel vl = (VisionLanguageModel) server.local().model();
        String rendered = "<|im_start|>user\nLook: Picture 1: <img></img>\nWhat is it?<|im_end|>\n<|im_start|>assistant\n";
        int[] ids = vl.withImages(server.local().tokenizer().encode(rendered, false), List.of(IMAGES.pixels("portrait.png")));
        assertEquals(expected(ids, 6), a.json().path("choices").path(0).path("message").path("content").asText());
        assertEquals(ids.length, a.json().path("usage").path("prompt_tokens").asInt());
    }

    /**
     * LightLLM's /generate with Qwen-VL's own prompt form, {@code <img>path</img>}: the path is only a placeholder's
     * text (the image comes in multimodal_params), and the span becomes the image's ids whatever it holds.
     */
    @Test
    void lightLlmGenerateFillsImgSpans() throws Exception {
        String inputs = "Picture 1: <img>https://example.com/cat.png</img>\nDescribe it.";
        String png = IMAGES.dataUri("portrait.png").substring("data:image/png;base64,".length());
        String body = "{\"inputs\": " + JsonOutTestSupport.quote(inputs) + ", \"parameters\": {\"max_new_tokens\": 6}, \"multimodal_params\": {\"images\": ["
                + "{\"type\": \"base64\", \"data\": \"" + png + "\"}]}}";
        Http.Answer a = Http.post(server.url() + "/generate", body);
        assertEquals(200, a.status(), a.body());
        VisionLanguageModel vl = (VisionLanguageModel) server.local().model();
        int[] ids = vl.withImages(server.local().tokenizer().encode("Picture 1: <img></img>\nDescribe it.", true), List.of(IMAGES.pixels("portrait.png")));
        assertEquals(expected(ids, 6), a.json().path("generated_text").get(0).asText());
        assertEquals(ids.length, a.json().path("prompt_tokens").asInt(), "the span is the image's 16 ids, whatever it held");
        Http.Answer unclosed = Http.post(server.url() + "/generate", body.replace("</img>", ""));
        assertEquals(400, unclosed.status(), unclosed.body());
        assertTrue(unclosed.json().path("error").path("message").asText().contains("not closed"), unclosed.body());
    }
}
