package io.lightllm.server;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders chat messages to a prompt with the model's Jinja {@code chat_template}
 * (tokenizer_config.json), the way Hugging Face's {@code apply_chat_template} does: variables
 * {@code messages}, {@code add_generation_prompt} (true), {@code bos_token}, {@code eos_token},
 * the function {@code raise_exception(message)}, and blocks trimmed as in transformers
 * ({@code trim_blocks}, {@code lstrip_blocks}). The rendered prompt already holds the special
 * tokens the template writes, so it is tokenized without adding more.
 *
 * <p>A model without a template gets {@link #FALLBACK}: the bos token, then one line per
 * message {@code role: content}, then {@code assistant:} for the reply.
 */
public final class ChatTemplate {
    public static final String FALLBACK = "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
            + "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

    private final String template;
    private final boolean readsContentParts;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    /** A template (null: {@link #FALLBACK}) with the text of the bos and eos tokens ("" when the model has none). */
    public ChatTemplate(String template, String bosToken, String eosToken) {
        this.template = lstripBlocks(template == null ? FALLBACK : withJinjavaMethods(template));
        this.readsContentParts = this.template.contains("'type'") || this.template.contains("\"type\"") || this.template.contains(".type");
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerTag(new GenerationTag());
    }

    /**
     * transformers' {@code {% generation %}...{% endgeneration %}}, which marks the assistant's text for training
     * masks (llava-hf's and other templates write it): renders its body, as apply_chat_template does.
     */
    static final class GenerationTag implements com.hubspot.jinjava.lib.tag.Tag {
        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String interpret(com.hubspot.jinjava.tree.TagNode tagNode, com.hubspot.jinjava.interpret.JinjavaInterpreter interpreter) {
            StringBuilder out = new StringBuilder();
            for (com.hubspot.jinjava.tree.Node child : tagNode.getChildren()) {
                out.append(child.render(interpreter).getValue());
            }
            return out.toString();
        }
    }

    /** Whether the template renders a {@code tools} variable (else the tools are described in a system message). */
    public boolean usesTools() {
        return template.contains("tools");
    }

    /**
     * Whether the template reads a message's content as a list of typed parts (as llava-hf's do, selecting
     * {@code type == 'image'}); else content is a string, with an image's placeholder text in it.
     */
    public boolean readsContentParts() {
        return readsContentParts;
    }

    public boolean isFallback() {
        return template.equals(FALLBACK);
    }

    /** The prompt for {@code messages} (maps with "role" and "content"); a template error is a 400 on {@code messages}. */
    public String render(List<Map<String, Object>> messages) {
        return render(messages, true, Map.of());
    }

    /**
     * {@link #render(List)} with vLLM's options: {@code addGenerationPrompt} opens the assistant's
     * turn (false: continue the last message), and {@code kwargs} are more template variables
     * (a template's own switches, e.g. {@code enable_thinking}); they cannot replace the messages.
     */
    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt, Map<String, Object> kwargs) {
        Map<String, Object> vars = new HashMap<>(kwargs);
        vars.put("messages", messages);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.put("bos_token", bosToken);
        vars.put("eos_token", eosToken);
        RenderResult r;
        try {
            r = jinjava.renderForResult(template, vars);
        } catch (RuntimeException e) {
            throw ApiException.invalid("messages", "the model's chat template refused the messages: " + rootMessage(e));
        }
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                String why = e.getException() != null ? rootMessage(e.getException()) : e.getMessage();
                throw ApiException.invalid("messages", "the model's chat template refused the messages: " + why);
            }
        }
        return r.getOutput();
    }

    /**
     * Python's string methods that Hugging Face templates call (Jinja2 evaluates them in Python; Jinjava
     * calls Java methods): the argument-less ones as the Jinja filters or Java methods that do the same,
     * startswith and endswith as Java's startsWith and endsWith. Those with arguments beyond these (strip(chars),
     * split) are left as written and may fail or differ. llava-hf's template writes {@code message['role'].upper()}.
     */
    static String withJinjavaMethods(String template) {
        return template.replaceAll("\\.upper\\(\\)", "|upper").replaceAll("\\.lower\\(\\)", "|lower").replaceAll("\\.strip\\(\\)", "|trim")
                .replaceAll("\\.title\\(\\)", "|title").replaceAll("\\.capitalize\\(\\)", "|capitalize")
                .replace(".lstrip()", ".stripLeading()").replace(".rstrip()", ".stripTrailing()")
                .replace(".startswith(", ".startsWith(").replace(".endswith(", ".endsWith(");
    }

    /**
     * Jinja2's lstrip_blocks, done on the source: the spaces and tabs between a line's start and a block or
     * comment tag go ({@code {%+} keeps them). Jinjava's own option also strips them mid-line, so that
     * {@code USER: {% endif %}} lost its space.
     */
    static String lstripBlocks(String template) {
        return template.replaceAll("(?m)^[ \\t]+(?=\\{%(?!\\+)|\\{#)", "");
    }

    /** Jinja's {@code raise_exception}: templates call it to refuse a conversation (e.g. roles out of order). */
    public static String raiseException(String message) {
        throw new TemplateRefusal(message);
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null && e.getCause() != e) {
            e = e.getCause();
        }
        return e.getMessage();
    }

    static final class TemplateRefusal extends RuntimeException {
        TemplateRefusal(String message) {
            super(message);
        }
    }
}
