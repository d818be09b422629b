package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * OpenAI's {@code POST /v1/chat/completions}: the messages are rendered by the model's chat
 * template ({@link ChatTemplate}) and the result tokenized as it stands. A message's content is a
 * string or an array of {@code {"type": "text", "text": ...}} parts (joined). A vision model also
 * takes {@code {"type": "image_url", ...}} parts ({@link ImageInputs}): the template gets them as
 * {@code {"type": "image"}} parts where it reads typed parts, else as the image placeholder's text
 * before the message's text (Qwen-VL: in the parts' order, as its tokenizer's from_list_format writes a query),
 * and each placeholder in the tokenized prompt becomes its image's tokens.
 * Other part types (audio), and images for a text model, get a 400.
 */
final class ChatCompletionsHandler implements Handler {
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    private final ServerState server;

    ChatCompletionsHandler(ServerState server) {
        this.server = server;
    }

    @Override
    public void handle(Context ctx) throws Exception {
        JsonBody body = Prompts.readBody(ctx, server.config().maxBodyBytes());
        OpenAiParams.checkModel(body, server.model());
        ToolCalls tools = ToolCalls.read(body);
        List<float[]> images = new ArrayList<>();
        List<Map<String, Object>> messages = messages(body.raw("messages"), server.model(), images);
        Map<String, Object> vars = new java.util.HashMap<>(templateKwargs(body));
        if (tools != null) {
            vars.putAll(tools.templateVars());
            if (!server.model().chatTemplate().usesTools()) {
                messages = new ArrayList<>(messages);
                messages.addFirst(tools.describe());
            }
        }
        String text = server.model().chatTemplate().render(messages, body.bool("add_generation_prompt", true), vars);
        int[] prompt = Prompts.encode(server.model(), text, "messages", false);
        if (!images.isEmpty()) {
            prompt = Prompts.checkLength(server.model(), server.model().images().withImages(prompt, images, "messages"), "messages");
        }
        new OpenAiResponse(server, true).answer(ctx, prompt, OpenAiParams.parse(body, prompt.length, server.model(), true, tools));
    }

    /** vLLM's chat_template_kwargs: more variables for the template (strings, numbers, booleans, lists, objects). */
    static Map<String, Object> templateKwargs(JsonBody body) {
        JsonNode kw = body.raw("chat_template_kwargs");
        if (kw == null) {
            return Map.of();
        }
        if (!kw.isObject()) {
            throw ApiException.invalid("chat_template_kwargs", "chat_template_kwargs must be an object of template variables");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> vars = JsonBody.MAPPER.convertValue(kw, Map.class);
        for (String reserved : List.of("messages", "bos_token", "eos_token", "add_generation_prompt")) {
            if (vars.containsKey(reserved)) {
                throw ApiException.invalid("chat_template_kwargs", "chat_template_kwargs cannot set " + reserved);
            }
        }
        return vars;
    }

    /** The messages of a text-only chat (an image part is a 400). */
    static List<Map<String, Object>> messages(JsonNode list) {
        return messages(list, null, new ArrayList<>());
    }

    /** The messages for the template; the pixel values of their image parts, in order, go to {@code images}. */
    static List<Map<String, Object>> messages(JsonNode list, ServedModel model, List<float[]> images) {
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array of {\"role\", \"content\"} objects");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String field = "messages[" + i + "]";
            if (!m.isObject()) {
                throw ApiException.invalid(field, field + " must be an object with role and content");
            }
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual() || !ROLES.contains(role.textValue())) {
                throw ApiException.invalid(field + ".role", field + ".role must be one of " + ROLES + ", got " + role);
            }
            Map<String, Object> message = new java.util.LinkedHashMap<>(
                    JsonOut.obj("role", role.textValue(), "content", content(m.get("content"), field + ".content", role.textValue(), model, images)));
            // the assistant's earlier calls and the tools' answers, for templates that render them
            for (String key : List.of("tool_calls", "tool_call_id", "name")) {
                if (m.hasNonNull(key)) {
                    message.put(key, JsonBody.MAPPER.convertValue(m.get(key), Object.class));
                }
            }
            out.add(message);
        }
        return out;
    }

    /**
     * A message's content for the template: a string, or with a vision model whose template reads typed parts,
     * the list of text and image parts.
     */
    private static Object content(JsonNode c, String field, String role, ServedModel model, List<float[]> images) {
        if (c == null || c.isNull()) {
            if (role.equals("assistant")) {
                return "";
            }
            throw ApiException.invalid(field, field + " is required for role " + role);
        }
        ImageInputs vision = model == null ? null : model.images();
        boolean typedParts = vision != null && model.chatTemplate().readsContentParts();
        if (c.isTextual()) {
            // a template that reads typed parts gets a string as one text part, as vLLM and transformers' processors pass it
            return typedParts ? List.of(JsonOut.obj("type", "text", "text", c.textValue())) : c.textValue();
        }
        if (!c.isArray()) {
            throw ApiException.invalid(field, field + " must be a string or an array of text parts");
        }
        StringBuilder text = new StringBuilder(), placeholders = new StringBuilder();
        List<Map<String, Object>> parts = new ArrayList<>();
        int imagesInMessage = 0;
        boolean inOrder = vision != null && vision.placesImagesInline();
        for (int i = 0; i < c.size(); i++) {
            JsonNode part = c.get(i);
            String type = part.path("type").asText("");
            JsonNode partText = part.get("text");
            if (type.equals("text") && partText != null && partText.isTextual()) {
                text.append(partText.textValue());
                parts.add(JsonOut.obj("type", "text", "text", partText.textValue()));
            } else if (type.equals("image_url") && vision != null) {
                images.add(vision.read(part, field + "[" + i + "]"));
                (inOrder ? text : placeholders).append(vision.placeholderLine(++imagesInMessage));
                parts.add(JsonOut.obj("type", "image"));
            } else {
                throw ApiException.unsupported(field, field + " parts must be {\"type\": \"text\", \"text\": \"...\"}"
                        + (vision != null ? " or {\"type\": \"image_url\", \"image_url\": {\"url\": \"...\"}}" : "; this model reads text only"));
            }
        }
        if (typedParts) {
            return parts;
        }
        return placeholders.toString() + text;
    }
}
