package io.lightllm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lightllm.engine.Completion;
import io.lightllm.engine.Engine;
import io.lightllm.engine.EngineConfig;
import io.lightllm.engine.SamplingParams;
import io.lightllm.models.ModelFiles;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.tornado.api.DType;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * {@code lightllm generate --model PATH (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N]
 * [--temperature T --top-p P --top-k K --seed S] [--ignore-eos] [--kv-dtype D] [--json]}: one request through
 * the engine. {@code --temperature 0} is greedy.
 */
final class GenerateCommand implements Main.Command {
    @Override
    public String help(String subcommand) {
        return "usage: lightllm generate --model PATH (--prompt TEXT | --prompt-ids 1,2,3) [flags]\n\n" + Main.MODEL_FLAGS + """
                  --prompt TEXT            the prompt, tokenized with the model's tokenizer (BOS as the model wants)
                  --prompt-ids 1,2,3       the prompt as token ids
                  --max-new-tokens N       tokens to generate at most (default 64)
                  --temperature T          0 for greedy (default 0)
                  --top-k K                -1 for all (default -1)
                  --top-p P                (default 1)
                  --seed S                 the random stream of sampling (a 64-bit integer; default: random)
                  --ignore-eos             generate max-new-tokens even past the end-of-sequence token
                  --json                   print the result as one JSON object
                """;
    }

    @Override
    public String summary() {
        return "generate text: --model PATH (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T ...] [--tp N] [--json]";
    }

    @Override
    public int run(Flags f) throws Exception {
        ModelOptions m = ModelOptions.read(f);
        String prompt = f.string("prompt", null);
        String promptIds = f.string("prompt-ids", null);
        if ((prompt == null) == (promptIds == null)) {
            throw new IllegalArgumentException("give exactly one of --prompt and --prompt-ids");
        }
        SamplingParams params = SamplingParams.builder()
                .maxNewTokens(f.integer("max-new-tokens", 64, 1, 1 << 20))
                .temperature((float) f.number("temperature", 0, 0, 100))
                .topP((float) f.number("top-p", 1, Double.MIN_VALUE, 1))
                .topK(f.integer("top-k", -1, -1, Integer.MAX_VALUE))
                .seed(f.has("seed") ? f.longInteger("seed", 0) : null)
                .ignoreEos(f.bool("ignore-eos"))
                .build();
        DType kvOption = ModelOptions.kvDtype(f);
        boolean json = f.bool("json");
        f.checkAllRead();
        if (m.dummy()) {
            throw new IllegalArgumentException("generate needs a real checkpoint (--load-format dummy has no tokenizer)");
        }
        try (ModelFiles files = m.files(json); CausalLM model = m.load(files, json)) {
            Set<Integer> eos = new HashSet<>();
            Arrays.stream(files.stopTokenIds()).forEach(eos::add);
            int[] ids = promptIds != null ? parseIds(promptIds) : files.tokenizer().encode(prompt, true);
            int promptTokens = ids.length;
            int maxNew = Math.min(params.maxNewTokens(), model.maxSequenceLength() - promptTokens);
            if (maxNew < 1) {
                throw new IllegalArgumentException("the prompt's " + promptTokens + " tokens leave no room in the model's "
                        + model.maxSequenceLength() + " positions");
            }
            try (Engine engine = Engine.start(model, new EngineConfig(io.lightllm.engine.RouterConfig.defaults(promptTokens + maxNew + 1),
                    model.kvDtype(kvOption), eos, 2), files.tokenizer())) {
                Completion c = engine.generate(ids, params.toBuilder().maxNewTokens(maxNew).build()).getFirst();
                if (c.error() != null) {
                    throw new IllegalStateException(c.error());
                }
                String text = files.tokenizer().decode(c.tokens(), true);
                if (json) {
                    ObjectMapper om = new ObjectMapper();
                    ObjectNode out = om.createObjectNode();
                    out.set("prompt_ids", om.valueToTree(ids));
                    out.set("output_ids", om.valueToTree(c.tokens()));
                    out.put("text", text);
                    out.put("finish_reason", c.finish().toString().toLowerCase());
                    System.out.println(om.writeValueAsString(out));
                } else {
                    System.out.println((prompt != null ? prompt : "") + text);
                }
            }
        }
        return 0;
    }

    private static int[] parseIds(String csv) {
        try {
            return Arrays.stream(csv.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--prompt-ids needs comma-separated integers, got '" + csv + "'");
        }
    }
}
