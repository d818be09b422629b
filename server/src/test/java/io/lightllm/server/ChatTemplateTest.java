package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Real chat templates, as models ship them in tokenizer_config.json, against the prompts their authors document. */
class ChatTemplateTest {
    /** Qwen2's ChatML template (Qwen/Qwen2-0.5B-Instruct tokenizer_config.json). */
    private static final String CHATML = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
            + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Llama 2 chat's template (meta-llama/Llama-2-7b-chat-hf): slicing, set, strip(), raise_exception. */
    private static final String LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
            + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
            + "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    private static Map<String, Object> msg(String role, String content) {
        return Map.of("role", role, "content", content);
    }

    /** llava-hf's Llava-1.5 template: typed content parts, images first, and Python's str.upper() (a Jinja filter here). */
    @Test
    void llavaRendersItsImagePlaceholdersAndUpperCaseRoles() {
        List<Map<String, Object>> parts = List.of(Map.of("type", "text", "text", "What is this?"), Map.of("type", "image"));
        String out = new ChatTemplate(VisionServeTest.TEMPLATE, "<s>", "</s>").render(List.of(Map.of("role", "user", "content", parts)));
        assertEquals("USER: <image>\nWhat is this? ASSISTANT:", out);
        List<Map<String, Object>> turns = List.of(Map.of("role", "user", "content", parts),
                Map.of("role", "assistant", "content", List.of(Map.of("type", "text", "text", "A cat."))));
        assertEquals("USER: <image>\nWhat is this? ASSISTANT: A cat. ", new ChatTemplate(VisionServeTest.TEMPLATE, "", "").render(turns, false, Map.of()),
                "the assistant's text inside {% generation %}");
        assertTrue(new ChatTemplate(VisionServeTest.TEMPLATE, "", "").readsContentParts());
        assertTrue(!new ChatTemplate(CHATML, "", "").readsContentParts());
        assertEquals("{{ m|upper + x|lower }}{{ s.startsWith('a') }}", ChatTemplate.withJinjavaMethods("{{ m.upper() + x.lower() }}{{ s.startswith('a') }}"));
        assertEquals("[a  ][  a]", new ChatTemplate("[{{ messages[0]['content'].lstrip() }}][{{ messages[0]['content'].rstrip() }}]", "", "")
                .render(List.of(msg("user", "  a  ")), false, Map.of()));
    }

    /** lstrip_blocks as Jinja2 does it: indentation before a tag on its own line goes, a space mid-line before a tag stays. */
    @Test
    void lstripBlocksStripsOnlyFromTheStartOfALine() {
        String template = "{% for message in messages %}\n    {% if message['role'] == 'user' %}USER: {% endif %}{{ message['content'] }}\n  {# note #}\n{% endfor %}";
        assertEquals("USER: hi\n", new ChatTemplate(template, "", "").render(List.of(msg("user", "hi")), false, Map.of()));
        assertEquals("a {% if x %}\n{% x %}\n  {%+ y %}", ChatTemplate.lstripBlocks("a {% if x %}\n  \t{% x %}\n  {%+ y %}"));
    }

    @Test
    void chatMlAddsTheDefaultSystemPromptAndTheAssistantTurn() {
        String out = new ChatTemplate(CHATML, "", "<|endoftext|>").render(List.of(msg("user", "Hi there")));
        assertEquals("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", out);
    }

    @Test
    void llama2PutsTheSystemPromptInsideTheFirstInstruction() {
        String out = new ChatTemplate(LLAMA2, "<s>", "</s>").render(List.of(
                msg("system", "Be brief."), msg("user", " Hello "), msg("assistant", "Hi."), msg("user", "Bye")));
        // strip() applies to the joined content, so the user's leading space survives after the system block (as in Python)
        assertEquals("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hello [/INST] Hi. </s><s>[INST] Bye [/INST]", out);
    }

    @Test
    void aTemplateThatRaisesGivesA400OnMessages() {
        ApiException e = assertThrows(ApiException.class, () -> new ChatTemplate(LLAMA2, "<s>", "</s>").render(List.of(
                msg("assistant", "I speak first"))));
        assertEquals(400, e.status());
        assertEquals("messages", e.param());
        assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
    }

    /** ChatGLM2's prompt format ("[Round n]\n\n问：…\n\n答："), the template its tokenizer class supplies. */
    @Test
    void chatGlm2RoundsFromItsTokenizer(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        java.nio.file.Files.copy(io.lightllm.testing.SharedData.tokenizer("llama2").resolve("tokenizer.model"), dir.resolve("tokenizer.model"));
        java.nio.file.Files.writeString(dir.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"ChatGLMTokenizer\"}");
        try (io.lightllm.models.tokenizer.Tokenizer t = io.lightllm.models.tokenizer.Tokenizer.load(dir)) {
            String out = new ChatTemplate(t.chatTemplate().orElseThrow(), "", "").render(List.of(msg("system", "ignored"),
                    msg("user", "你好"), msg("assistant", "你好！"), msg("user", "讲个故事")));
            assertEquals("[Round 1]\n\n问：你好\n\n答：你好！\n\n[Round 2]\n\n问：讲个故事\n\n答：", out);
        }
    }

    /** vLLM's add_generation_prompt and chat_template_kwargs reach the template. */
    @Test
    void generationPromptAndKwargsAreTemplateVariables() {
        String t = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
                + "{% if enable_thinking %}<think>{% endif %}";
        ChatTemplate template = new ChatTemplate(t, "", "");
        List<Map<String, Object>> hi = List.of(msg("user", "hi"));
        assertEquals("<user>hi<assistant>", template.render(hi));
        assertEquals("<user>hi", template.render(hi, false, Map.of()));
        assertEquals("<user>hi<assistant><think>", template.render(hi, true, Map.of("enable_thinking", true)));
    }

    @Test
    void fallbackWritesRoleLinesAfterBos() {
        ChatTemplate t = new ChatTemplate(null, "<s>", "</s>");
        assertTrue(t.isFallback());
        assertEquals("<s>system: Be brief.\nuser: Tell a story.\nassistant:", t.render(List.of(msg("system", "Be brief."), msg("user", "Tell a story."))));
    }
}
