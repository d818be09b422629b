package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class JsonBodyTest {
    private static JsonBody body(String json) {
        return JsonBody.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    private static void badField(String param, String messagePart, Executable read) {
        ApiException e = assertThrows(ApiException.class, read);
        assertEquals(400, e.status());
        assertEquals(param, e.param());
        assertTrue(e.getMessage().contains(messagePart), e.getMessage());
    }

    @Test
    void malformedOrNonObjectBodiesAre400WithoutAField() {
        badField(null, "not valid JSON", () -> body("{\"a\": "));
        badField(null, "must be a JSON object", () -> body("[1, 2]"));
        badField(null, "not valid JSON", () -> body("{\"temperature\": NaN}"));
        badField(null, "must be a JSON object", () -> body("\"text\""));
        badField(null, "empty", () -> JsonBody.parse(new byte[0]));
    }

    @Test
    void typedReadersNameTheNestedField() {
        JsonBody p = body("{\"parameters\": {\"top_p\": \"high\", \"n\": 2.5, \"seed\": 3.0, \"do_sample\": 1}}").object("parameters");
        badField("parameters.top_p", "must be a number", () -> p.number("top_p", 1, 0, 1));
        badField("parameters.n", "must be an integer", () -> p.integer("n", 1, 1, 8));
        assertEquals(3, p.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE));
        badField("parameters.do_sample", "true or false", () -> p.bool("do_sample", false));
    }

    @Test
    void rangesAreChecked() {
        JsonBody b = body("{\"temperature\": -1, \"max_tokens\": 1e30}");
        badField("temperature", "between 0.0 and 2.0", () -> b.number("temperature", 1, 0, 2));
        badField("max_tokens", "between 1 and 512", () -> b.integer("max_tokens", 16, 1, 512));
    }

    @Test
    void absentAndNullTakeTheDefault() {
        JsonBody b = body("{\"stop\": null}");
        assertEquals(List.of(), b.strings("stop", 4));
        assertEquals(0.5f, b.number("top_p", 0.5f, 0, 1));
        assertNull(b.string("model", null));
    }

    @Test
    void stopTakesAStringOrStrings() {
        assertEquals(List.of("\n"), body("{\"stop\": \"\\n\"}").strings("stop", 4));
        assertEquals(List.of("a", "b"), body("{\"stop\": [\"a\", \"b\"]}").strings("stop", 4));
        badField("stop", "at most 1", () -> body("{\"stop\": [\"a\", \"b\"]}").strings("stop", 1));
        badField("stop", "empty strings", () -> body("{\"stop\": [\"\"]}").strings("stop", 4));
        badField("stop", "a string or an array of strings", () -> body("{\"stop\": [1]}").strings("stop", 4));
    }
}
