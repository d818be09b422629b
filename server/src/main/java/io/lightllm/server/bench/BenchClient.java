package io.lightllm.server.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.server.JsonBody;
import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.stream.Stream;

/**
 * The benchmark's HTTP side, over java.net.http: the server's model info, prompt token counts,
 * and streamed generations timed per token event. Requests are greedy with {@code ignore_eos}
 * (vLLM's extension, which this server and vLLM accept) so every output has the requested length.
 */
final class BenchClient {
    /** What the benchmark needs to know about the served model. */
    record ModelInfo(String name, int contextLength) { }

    private final ServingBenchConfig config;
    private final HttpClient http;
    private String modelName;

    BenchClient(ServingBenchConfig config) {
        this.config = config;
        // HTTP/1.1: one connection per stream in flight, as the Python benchmarks' aiohttp clients use
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    }

    /** {@code GET /v1/models}: the first model's id and max_model_len; remembers the id for OpenAI requests. */
    ModelInfo modelInfo() {
        JsonNode models = send(request("/v1/models").GET(), "GET /v1/models");
        JsonNode first = models.path("data").path(0);
        if (!first.hasNonNull("id")) {
            throw new IllegalStateException("GET /v1/models at " + config.url() + " lists no model: " + models);
        }
        modelName = first.get("id").asText();
        return new ModelInfo(modelName, first.path("max_model_len").asInt(0));
    }

    /** Whether the server has vLLM's {@code POST /tokenize}; null until asked. */
    private Boolean tokenizes;

    /**
     * The server's token count of a prompt, or {@link PromptBuilder#TOO_LONG} for a prompt past the
     * context: from {@code POST /tokenize} (vLLM's, this server's) where the server has it, which
     * computes nothing; else from a one-token generation request, whose 400 naming the prompt field
     * means too long. A generation probe prefills the prompt, so a server with a prefix cache would
     * hold every measured prompt before the run (the first H200 serving run hit the cache for 473k of
     * 512k prompt tokens that way).
     */
    int countPromptTokens(String text) {
        if (!Boolean.FALSE.equals(tokenizes)) {
            ObjectNode body = JsonBody.MAPPER.createObjectNode();
            body.put("prompt", text);
            HttpResponse<String> r = exchange(post("/tokenize", body), "POST /tokenize");
            tokenizes = r.statusCode() != 404 && r.statusCode() != 405;
            if (tokenizes) {
                JsonNode answer = ok(r, parse(r, "POST /tokenize"), "POST /tokenize");
                int count = requireInt(answer.path("count"), "count", answer);
                int context = answer.path("max_model_len").asInt(0);
                return context > 0 && count >= context ? PromptBuilder.TOO_LONG : count; // one generated token must fit too
            }
        }
        ObjectNode body = JsonBody.MAPPER.createObjectNode();
        boolean openAi = config.endpoint() == ServingBenchConfig.Endpoint.OPENAI;
        String path = openAi ? "/v1/completions" : "/generate";
        if (openAi) {
            openAiFields(body, text, 1);
        } else {
            lightLlmFields(body, text, 1);
        }
        HttpResponse<String> r = exchange(post(path, body), "POST " + path);
        JsonNode answer = parse(r, "POST " + path);
        if (r.statusCode() == 400 && answer.path("error").path("param").asText("").equals(openAi ? "prompt" : "inputs")) {
            return PromptBuilder.TOO_LONG;
        }
        answer = ok(r, answer, "POST " + path);
        return openAi ? requireInt(answer.path("usage").path("prompt_tokens"), "usage.prompt_tokens", answer)
                : requireInt(answer.path("prompt_tokens"), "prompt_tokens", answer);
    }

    /** Streams one generation, timing every event that carries a token. {@code t0}: the run's start (System.nanoTime). */
    RequestResult stream(int index, PromptBuilder.Prompt prompt, int maxTokens, long t0) {
        ObjectNode body = JsonBody.MAPPER.createObjectNode();
        boolean openAi = config.endpoint() == ServingBenchConfig.Endpoint.OPENAI;
        if (openAi) {
            openAiFields(body, prompt.text(), maxTokens);
            body.put("stream", true);
            body.putObject("stream_options").put("include_usage", true);
        } else {
            lightLlmFields(body, prompt.text(), maxTokens);
        }
        long start = System.nanoTime();
        double startS = (start - t0) / 1e9;
        StreamTimer timer = new StreamTimer(start, openAi);
        try {
            HttpResponse<Stream<String>> r = http.send(post(openAi ? "/v1/completions" : "/generate_stream", body),
                    HttpResponse.BodyHandlers.ofLines());
            try (Stream<String> lines = r.body()) {
                if (r.statusCode() != 200) {
                    return failed(index, prompt, maxTokens, startS, start, "HTTP " + r.statusCode() + ": " + String.join("\n", lines.toList()));
                }
                for (Iterator<String> it = lines.iterator(); it.hasNext() && !timer.done(); ) {
                    timer.line(it.next());
                }
            }
        } catch (IOException | RuntimeException e) {
            return failed(index, prompt, maxTokens, startS, start, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failed(index, prompt, maxTokens, startS, start, "interrupted (the run's deadline passed)");
        }
        String error = timer.error();
        if (error != null) {
            return failed(index, prompt, maxTokens, startS, start, error);
        }
        int promptTokens = openAi ? timer.usagePromptTokens() : prompt.tokens();
        return new RequestResult(index, promptTokens, maxTokens, timer.outputTokens(), true, null, startS, timer.ttftS(),
                timer.latencyS(), timer.itlS(), timer.text());
    }

    private static RequestResult failed(int index, PromptBuilder.Prompt p, int maxTokens, double startS, long start, String error) {
        return RequestResult.failed(index, p.tokens(), maxTokens, startS, (System.nanoTime() - start) / 1e9, error);
    }

    private void openAiFields(ObjectNode body, String text, int maxTokens) {
        if (modelName != null) {
            body.put("model", modelName);
        }
        body.put("prompt", text).put("max_tokens", maxTokens).put("temperature", 0).put("ignore_eos", true);
    }

    private static void lightLlmFields(ObjectNode body, String text, int maxTokens) {
        body.put("inputs", text);
        body.putObject("parameters").put("max_new_tokens", maxTokens).put("do_sample", false).put("ignore_eos", true);
    }

    /**
     * A server's own account of its work, from its Prometheus page: {@code stepSeconds} (lightllm_step_seconds by phase:
     * prefill, decode, scheduling) and {@code steps} (lightllm_prefill_steps and lightllm_decode_steps, as "prefill" and
     * "decode"); both empty for a server without them (another server, or no /metrics).
     */
    record ServerCounters(java.util.Map<String, Double> stepSeconds, java.util.Map<String, Double> steps) {
        static final ServerCounters NONE = new ServerCounters(java.util.Map.of(), java.util.Map.of());

        /** These counters less {@code before}'s: what a run between the two readings added. */
        ServerCounters since(ServerCounters before) {
            return new ServerCounters(minus(stepSeconds, before.stepSeconds), minus(steps, before.steps));
        }

        private static java.util.Map<String, Double> minus(java.util.Map<String, Double> after, java.util.Map<String, Double> before) {
            java.util.Map<String, Double> out = new java.util.TreeMap<>();
            after.forEach((k, v) -> out.put(k, v - before.getOrDefault(k, 0.0)));
            return out;
        }
    }

    ServerCounters serverCounters() {
        try {
            HttpResponse<String> r = http.send(request("/metrics").GET().build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                return ServerCounters.NONE;
            }
            java.util.Map<String, Double> seconds = new java.util.TreeMap<>(), steps = new java.util.TreeMap<>();
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^lightllm_step_seconds_total\\{phase=\"(\\w+)\"\\} (\\S+)$")
                    .matcher(r.body());
            while (m.find()) {
                seconds.put(m.group(1), Double.parseDouble(m.group(2)));
            }
            m = java.util.regex.Pattern.compile("(?m)^lightllm_(prefill|decode)_steps_total (\\S+)$").matcher(r.body());
            while (m.find()) {
                steps.put(m.group(1), Double.parseDouble(m.group(2)));
            }
            return new ServerCounters(seconds, steps);
        } catch (IOException | RuntimeException e) {
            return ServerCounters.NONE;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return ServerCounters.NONE;
        }
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(config.resolve(path)).timeout(config.requestTimeout());
        if (config.apiKey() != null) {
            b.header("Authorization", "Bearer " + config.apiKey());
        }
        return b;
    }

    private HttpRequest post(String path, JsonNode body) {
        return request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
    }

    private JsonNode send(HttpRequest.Builder b, String what) {
        HttpResponse<String> r = exchange(b.build(), what);
        return ok(r, parse(r, what), what);
    }

    private HttpResponse<String> exchange(HttpRequest req, String what) {
        try {
            return http.send(req, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new IllegalStateException(what + " at " + req.uri() + " failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(what + " was interrupted", e);
        }
    }

    /** The answer as JSON; a MissingNode when it is not JSON (an error page), which {@link #ok} then reports. */
    private static JsonNode parse(HttpResponse<String> r, String what) {
        try {
            return JsonBody.MAPPER.readTree(r.body());
        } catch (IOException notJson) {
            return com.fasterxml.jackson.databind.node.MissingNode.getInstance();
        }
    }

    private static JsonNode ok(HttpResponse<String> r, JsonNode answer, String what) {
        if (r.statusCode() != 200 || answer.isMissingNode()) {
            throw new IllegalStateException(what + " at " + r.uri() + " answered HTTP " + r.statusCode() + ": " + r.body());
        }
        return answer;
    }

    private static int requireInt(JsonNode n, String field, JsonNode answer) {
        if (!n.canConvertToInt()) {
            throw new IllegalStateException("the server's answer has no " + field + ": " + answer);
        }
        return n.intValue();
    }
}
