package io.lightllm.server;

/** JSON string literals for request bodies written inline in tests. */
final class JsonOutTestSupport {
    private JsonOutTestSupport() {
    }

    static String quote(String s) {
        try {
            return JsonBody.MAPPER.writeValueAsString(s);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
