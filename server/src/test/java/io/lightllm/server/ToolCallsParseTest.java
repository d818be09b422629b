package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The answers that are tool calls, in the forms chat models write them. */
class ToolCallsParseTest {
    private static ToolCalls tools() {
        String body = "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}]}";
        return ToolCalls.read(JsonBody.parse(body.getBytes(StandardCharsets.UTF_8)));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> function(List<Object> calls, int i) {
        return (Map<String, Object>) ((Map<String, Object>) calls.get(i)).get("function");
    }

    @Test
    void hermesQwenLlamaAndPlainText() {
        ToolCalls t = tools();
        List<Object> hermes = t.parse("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
                + "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}</tool_call>");
        assertEquals(2, hermes.size());
        assertEquals("{\"city\":\"Paris\"}", function(hermes, 0).get("arguments"));
        List<Object> llama = t.parse(" {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}");
        assertEquals("get_weather", function(llama, 0).get("name"));
        assertEquals("{\"city\":\"Oslo\"}", function(llama, 0).get("arguments"));
        assertNull(t.parse("It is sunny in Paris."));
        assertNull(t.parse("{\"name\": \"other_tool\", \"arguments\": {}}"), "only the request's tools are calls");
    }
}
