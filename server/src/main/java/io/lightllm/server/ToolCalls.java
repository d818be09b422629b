package io.lightllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * OpenAI's tool calling on chat completions: {@code tools} (functions with JSON-schema parameters)
 * and {@code tool_choice} ({@code none}, {@code auto}, {@code required}, or one named function).
 * The tools reach the model through its chat template ({@code tools}, as transformers passes them;
 * a template that does not use them gets a system message describing them). The answer is parsed
 * into {@code tool_calls} when it is a call in the Hermes/Qwen form
 * ({@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>}) or Llama 3.1's JSON form
 * ({@code {"name": ..., "parameters": {...}}}). With {@code required} or a named function the
 * call is not left to the model: structured output constrains the answer to
 * {@code {"name":"...","arguments":...}} of the allowed functions' schemas.
 */
final class ToolCalls {
    /** One function: its name, and the JSON schema of its arguments (an object schema). */
    record Function(String name, JsonNode parameters) {
    }

    private final List<Function> functions;
    private final List<Object> toolsJson;
    private final String choice;
    private final String forced;

    private ToolCalls(List<Function> functions, List<Object> toolsJson, String choice, String forced) {
        this.functions = functions;
        this.toolsJson = toolsJson;
        this.choice = choice;
        this.forced = forced;
    }

    /** The request's tools, or null when it has none (or tool_choice is none). */
    static ToolCalls read(JsonBody b) {
        JsonNode tools = b.raw("tools");
        JsonNode toolChoice = b.raw("tool_choice");
        if (tools == null || tools.isEmpty()) {
            if (toolChoice != null && !(toolChoice.isTextual() && toolChoice.textValue().equals("none"))) {
                throw ApiException.invalid("tool_choice", "tool_choice needs tools");
            }
            return null;
        }
        if (!tools.isArray()) {
            throw ApiException.invalid("tools", "tools must be an array of {\"type\": \"function\", \"function\": {...}}");
        }
        List<Function> functions = new ArrayList<>();
        List<Object> json = new ArrayList<>();
        for (int i = 0; i < tools.size(); i++) {
            JsonNode t = tools.get(i);
            String field = "tools[" + i + "]";
            JsonNode f = t.path("function");
            if (!t.path("type").asText().equals("function") || !f.path("name").isTextual()) {
                throw ApiException.invalid(field, field + " must be {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": {...}}}");
            }
            JsonNode params = f.has("parameters") ? f.get("parameters") : JsonBody.MAPPER.createObjectNode().put("type", "object");
            functions.add(new Function(f.get("name").textValue(), params));
            json.add(JsonBody.MAPPER.convertValue(t, Map.class));
        }
        String choice = "auto";
        String forced = null;
        if (toolChoice != null) {
            if (toolChoice.isTextual() && List.of("none", "auto", "required").contains(toolChoice.textValue())) {
                choice = toolChoice.textValue();
            } else if (toolChoice.isObject() && toolChoice.path("function").path("name").isTextual()) {
                choice = "required";
                forced = toolChoice.path("function").path("name").textValue();
                String name = forced;
                if (functions.stream().noneMatch(fn -> fn.name().equals(name))) {
                    throw ApiException.invalid("tool_choice", "tool_choice names '" + name + "', which is not among the tools");
                }
            } else {
                throw ApiException.invalid("tool_choice", "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}");
            }
        }
        return choice.equals("none") ? null : new ToolCalls(functions, json, choice, forced);
    }

    /** The template variables: the tools as the request gave them. */
    Map<String, Object> templateVars() {
        return Map.of("tools", toolsJson);
    }

    /** For a template that ignores {@code tools}: a system message that describes them and the call format. */
    Map<String, Object> describe() {
        StringBuilder s = new StringBuilder("You can call these functions:\n");
        for (Object t : toolsJson) {
            s.append(JsonBody.MAPPER.valueToTree(t).toString()).append('\n');
        }
        s.append("To call one, answer with only {\"name\": <function name>, \"arguments\": <arguments object>}.");
        return JsonOut.obj("role", "system", "content", s.toString());
    }

    /** The constraint of required and named choices (null for auto): a call of one of the allowed functions. */
    String regex() {
        if (!choice.equals("required")) {
            return null;
        }
        List<String> calls = new ArrayList<>();
        for (Function f : functions) {
            if (forced == null || f.name().equals(forced)) {
                calls.add("\\{\"name\":" + Pattern.quote(JsonBody.MAPPER.valueToTree(f.name()).toString()) + ",\"arguments\":"
                        + StructuredOutput.schema(f.parameters(), "tools." + f.name() + ".parameters") + "\\}");
            }
        }
        return "(" + String.join("|", calls) + ")";
    }

    /** The calls an answer makes (OpenAI's tool_calls objects), or null when it is plain text. */
    List<Object> parse(String text) {
        String t = text.strip();
        List<String> candidates = new ArrayList<>();
        var m = Pattern.compile("<tool_call>(.*?)</tool_call>", Pattern.DOTALL).matcher(t);
        while (m.find()) {
            candidates.add(m.group(1).strip());
        }
        if (candidates.isEmpty()) {
            candidates.add(t);
        }
        List<Object> calls = new ArrayList<>();
        for (String c : candidates) {
            JsonNode node;
            try {
                node = JsonBody.MAPPER.readTree(c);
            } catch (Exception e) {
                return null;
            }
            for (JsonNode call : node.isArray() ? node : List.of(node)) {
                String name = call.path("name").asText(null);
                JsonNode args = call.has("arguments") ? call.get("arguments") : call.get("parameters");
                if (name == null || args == null || functions.stream().noneMatch(f -> f.name().equals(name))) {
                    return null;
                }
                Map<String, Object> function = new LinkedHashMap<>();
                function.put("name", name);
                function.put("arguments", args.isTextual() ? args.textValue() : args.toString());
                calls.add(JsonOut.obj("id", "call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24), "type", "function",
                        "function", function));
            }
        }
        return calls.isEmpty() ? null : calls;
    }
}
