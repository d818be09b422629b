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
import io.lightllm.testing.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A vision model served (the tiny Llava fixture on the JVM, with the tiny tokenizer plus llava-hf's {@code <image>}
 * token and a llava-hf chat template): OpenAI chat requests with images through the official Java SDK and over
 * plain HTTP answer what the engine answers for the prompt built by hand (the template's text, the image's tokens),
 * and every bad image source is a 400 with a JSON body.
 */
class VisionServeTest {
    /** llava-hf's chat template for Llava-1.5 (llava-hf/llava-1.5-7b-hf chat_template.json), as published. */
    static final String TEMPLATE = "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
            + "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
            + "{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
            + "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
            + "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
            + "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
    private static final String NAME = "llava-tiny";

    @TempDir
    static Path dir;
    private static final FixtureImages IMAGES = new FixtureImages("llava");
    private static ModelServer server;
    private static OpenAIClient client;
    private static Path media;

    @BeforeAll
    static void start() throws Exception {
        Path model = VisionFixtureModel.write("llava", dir, 512, List.of("<image>"), TEMPLATE);
        media = VisionFixtureModel.media("llava", dir);
        server = ModelServer.start(new ServeOptions(model, "jvm", NAME, VisionFixtureModel.ENGINE,
                ServerConfig.local(0).withMedia(new ServerConfig.MediaPolicy(media, false)), Models.Quantization.NONE, true));
        client = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("unused").maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    /** The greedy text for the user turn {@code text} after one image per entry of {@code pixels}, built without the server. */
    private static String expected(List<float[]> pixels, String text, int maxTokens) {
        VisionLanguageModel llava = (VisionLanguageModel) server.local().model();
        String rendered = "USER: " + "<image>\n".repeat(pixels.size()) + text + " ASSISTANT:";
        int[] ids = llava.withImages(server.local().tokenizer().encode(rendered, false), pixels);
        return server.engine().generate(ids, SamplingParams.greedy(maxTokens)).getFirst().text();
    }



    @Test
    void theJavaSdkSendsAnImage() throws Exception {
        ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder().model(NAME).maxCompletionTokens(8).temperature(0.0)
                .addUserMessageOfArrayOfContentParts(FixtureImages.imageThenText(IMAGES.dataUri("landscape.png"), "What is this?"))
                .build());
        assertEquals(expected(List.of(IMAGES.pixels("landscape.png")), "What is this?", 8), c.choices().getFirst().message().content().orElseThrow());
        long textTokens = server.local().tokenizer().encode("USER: <image>\nWhat is this? ASSISTANT:", false).length;
        assertEquals(textTokens - 1 + 25, c.usage().orElseThrow().promptTokens(), "the image counts as its 25 tokens");
        // the encoder stage encoded it before prefill; /metrics says so
        String metrics = Http.get(server.url() + "/metrics").body();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^lightllm_images_encoded_total (\\S+)$").matcher(metrics);
        assertTrue(m.find(), metrics);
        assertTrue(Double.parseDouble(m.group(1)) >= 1, m.group());
        assertTrue(metrics.contains("lightllm_image_queue_length "), metrics);
        assertEquals(0, ((VisionLanguageModel) server.local().model()).imagesEncodedInSteps(), "no step had to encode the image");
    }

    /** A text-only chat to the vision model: llava-hf's template reads typed parts, so a string content is passed as one text part. */
    @Test
    void aTextOnlyChatStillWorks() {
        Http.Answer a = Http.post(server.url() + "/v1/chat/completions", "{\"model\": \"" + NAME
                + "\", \"max_tokens\": 5, \"temperature\": 0, \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story.\"}]}");
        assertEquals(200, a.status(), a.body());
        int[] ids = server.local().tokenizer().encode("USER: Tell me a story. ASSISTANT:", false);
        assertEquals(server.engine().generate(ids, SamplingParams.greedy(5)).getFirst().text(),
                a.json().path("choices").path(0).path("message").path("content").asText());
    }

    @Test
    void twoImagesOneAsALocalFileStreamed() throws Exception {
        String body = "{\"model\": \"" + NAME + "\", \"max_tokens\": 6, \"temperature\": 0, \"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": ["
                + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + IMAGES.dataUri("landscape.png") + "\"}},"
                + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + media.resolve("portrait.png").toUri() + "\"}},"
                + "{\"type\": \"text\", \"text\": \"Compare them.\"}]}]}";
        Http.Answer a = Http.post(server.url() + "/v1/chat/completions", body);
        assertEquals(200, a.status(), a.body());
        assertEquals(expected(List.of(IMAGES.pixels("landscape.png"), IMAGES.pixels("portrait.png")), "Compare them.", 6), Http.streamedChatText(a));
    }

    /** LightLLM's /generate with multimodal_params: one base64 image and one URL for the prompt's two placeholders. */
    @Test
    void lightLlmGenerateTakesMultimodalParams() throws Exception {
        String inputs = "USER: <image>\n<image>\nCompare them. ASSISTANT:";
        String png = IMAGES.dataUri("landscape.png").substring("data:image/png;base64,".length());
        String body = "{\"inputs\": " + JsonOutTestSupport.quote(inputs) + ", \"parameters\": {\"max_new_tokens\": 6}, \"multimodal_params\": {\"images\": ["
                + "{\"type\": \"base64\", \"data\": \"" + png + "\"}, {\"type\": \"url\", \"data\": \"" + media.resolve("portrait.png").toUri() + "\"}]}}";
        Http.Answer a = Http.post(server.url() + "/generate", body);
        assertEquals(200, a.status(), a.body());
        VisionLanguageModel llava = (VisionLanguageModel) server.local().model();
        int[] ids = llava.withImages(server.local().tokenizer().encode(inputs, true), List.of(IMAGES.pixels("landscape.png"), IMAGES.pixels("portrait.png")));
        String expected = server.engine().generate(ids, SamplingParams.greedy(6)).getFirst().text();
        assertEquals(expected, a.json().path("generated_text").get(0).asText());
        assertEquals(ids.length, a.json().path("prompt_tokens").asInt(), "each image counts as its tokens");
        String oneImageTwoPlaceholders = "{\"inputs\": " + JsonOutTestSupport.quote(inputs) + ", \"multimodal_params\": {\"images\": ["
                + "{\"type\": \"base64\", \"data\": \"" + png + "\"}]}}";
        Http.Answer bad = Http.post(server.url() + "/generate", oneImageTwoPlaceholders);
        assertEquals(400, bad.status(), bad.body());
        assertTrue(bad.json().path("error").path("message").asText().contains("disagree"), bad.body());
        Http.Answer badType = Http.post(server.url() + "/generate_stream", "{\"inputs\": \"USER: <image>\", \"multimodal_params\": {\"images\": ["
                + "{\"type\": \"file\", \"data\": \"x\"}]}}");
        assertEquals(400, badType.status(), badType.body());
    }

    /** --allow-remote-images: an http image is fetched (here from a loopback server); a 404 is a 400 naming the part. */
    @Test
    void remoteImagesAreFetchedWhenAllowed() throws Exception {
        byte[] png = Files.readAllBytes(SharedData.madeFixture("llava").resolve("landscape.png"));
        com.sun.net.httpserver.HttpServer images = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        images.createContext("/cat.png", ex -> {
            ex.sendResponseHeaders(200, png.length);
            ex.getResponseBody().write(png);
            ex.close();
        });
        images.start();
        try (ModelServer remote = ModelServer.start(new ServeOptions(dir.resolve("model"), "jvm", NAME, VisionFixtureModel.ENGINE,
                ServerConfig.local(0).withMedia(new ServerConfig.MediaPolicy(null, true)), Models.Quantization.NONE, true))) {
            String base = "http://127.0.0.1:" + images.getAddress().getPort();
            String body = "{\"model\": \"" + NAME + "\", \"max_tokens\": 4, \"temperature\": 0, \"messages\": [{\"role\": \"user\", \"content\": ["
                    + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + base + "/cat.png\"}}, {\"type\": \"text\", \"text\": \"What is this?\"}]}]}";
            Http.Answer a = Http.post(remote.url() + "/v1/chat/completions", body);
            assertEquals(200, a.status(), a.body());
            VisionLanguageModel llava = (VisionLanguageModel) remote.local().model();
            int[] ids = llava.withImages(remote.local().tokenizer().encode("USER: <image>\nWhat is this? ASSISTANT:", false), List.of(IMAGES.pixels("landscape.png")));
            assertEquals(remote.engine().generate(ids, SamplingParams.greedy(4)).getFirst().text(),
                    a.json().path("choices").path(0).path("message").path("content").asText());
            Http.Answer missing = Http.post(remote.url() + "/v1/chat/completions", body.replace("/cat.png", "/dog.png"));
            assertEquals(400, missing.status(), missing.body());
            assertTrue(missing.json().path("error").path("message").asText().contains("HTTP 404"), missing.body());
        } finally {
            images.stop(0);
        }
    }

    /** An image's placeholder ids cannot be sent as token ids: they would read another client's image. */
    @Test
    void placeholderIdsAreNoTokenIds() throws Exception {
        int[] image = ((VisionLanguageModel) server.local().model()).imageTokens(IMAGES.pixels("portrait.png"));
        Http.Answer a = Http.post(server.url() + "/v1/completions", "{\"model\": \"" + NAME + "\", \"max_tokens\": 2, \"prompt\": [0, "
                + image[0] + ", " + image[1] + "]}");
        assertEquals(400, a.status(), a.body());
        assertTrue(a.json().path("error").path("message").asText().contains("not a token of the vocabulary"), a.body());
    }

    @Test
    void badImagesAreRefusedWithAReason() throws Exception {
        List<String[]> cases = new ArrayList<>();
        cases.add(new String[] {"data:image/png;base64,!!!notbase64", "base64"});
        cases.add(new String[] {"data:image/png;base64," + Base64.getEncoder().encodeToString("not an image".getBytes()), "image"});
        cases.add(new String[] {"data:text/plain,hello", "base64"});
        cases.add(new String[] {dir.resolve("model/config.json").toUri().toString(), "outside --allowed-local-media-path"});
        cases.add(new String[] {media.resolve("missing.png").toUri().toString(), "cannot read"});
        cases.add(new String[] {"https://example.com/cat.png", "--allow-remote-images"});
        cases.add(new String[] {"ftp://example.com/cat.png", "data:, file: or http(s)"});
        for (String[] c : cases) {
            String body = "{\"model\": \"" + NAME + "\", \"max_tokens\": 2, \"messages\": [{\"role\": \"user\", \"content\": ["
                    + "{\"type\": \"image_url\", \"image_url\": {\"url\": \"" + c[0] + "\"}}, {\"type\": \"text\", \"text\": \"hi\"}]}]}";
            Http.Answer a = Http.post(server.url() + "/v1/chat/completions", body);
            assertEquals(400, a.status(), c[0] + ": " + a.body());
            assertTrue(a.json().path("error").path("message").asText().contains(c[1]), c[0] + ": " + a.body());
        }
        String audio = "{\"model\": \"" + NAME + "\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_audio\", \"input_audio\": {}}]}]}";
        assertEquals(400, Http.post(server.url() + "/v1/chat/completions", audio).status());
        assertEquals(0, server.engine().awaitIdle(5_000).usedSlots(), "no request was left holding KV");
    }
}
