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
 * string or an array of {@code {"type": "text", "text": ...}} parts (joined); other part types
 * (images, audio) get a 400.
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
        List<Map<String, Object>> messages = messages(body.raw("messages"));
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

    static List<Map<String, Object>> messages(JsonNode list) {
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
                    JsonOut.obj("role", role.textValue(), "content", content(m.get("content"), field + ".content", role.textValue())));
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

    private static String content(JsonNode c, String field, String role) {
        if (c == null || c.isNull()) {
            if (role.equals("assistant")) {
                return "";
            }
            throw ApiException.invalid(field, field + " is required for role " + role);
        }
        if (c.isTextual()) {
            return c.textValue();
        }
        if (!c.isArray()) {
            throw ApiException.invalid(field, field + " must be a string or an array of text parts");
        }
        StringBuilder text = new StringBuilder();
        for (JsonNode part : c) {
            JsonNode type = part.get("type");
            JsonNode partText = part.get("text");
            if (type == null || !"text".equals(type.asText()) || partText == null || !partText.isTextual()) {
                throw ApiException.unsupported(field, field + " parts must be {\"type\": \"text\", \"text\": \"...\"}; this model reads text only");
            }
            text.append(partText.textValue());
        }
        return text.toString();
    }
}
