package io.lightllm.models.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A Hugging Face tokenizer.json run by the Rust tokenizers library through DJL, plus
 * tokenizer_config.json's settings. Encoding and decoding are DJL's; the vocabulary tables for
 * {@link #tokenToId}/{@link #idToToken} are read from tokenizer.json here.
 */
public final class HfTokenizer implements Tokenizer {
    private static final Map<String, String> OPTIONS = Map.of(
            "addSpecialTokens", "true", "truncation", "false", "padding", "false");

    private final HuggingFaceTokenizer djl;
    private final Map<String, Integer> ids;
    private final String[] tokens;
    private final TokenizerSettings settings;
    private final int bos;
    private final int[] eos;

    private HfTokenizer(HuggingFaceTokenizer djl, Map<String, Integer> ids, String[] tokens, TokenizerSettings settings) {
        this.djl = djl;
        this.ids = ids;
        this.tokens = tokens;
        this.settings = settings;
        this.bos = settings.bosToken().map(t -> ids.getOrDefault(t, NO_TOKEN)).orElse(NO_TOKEN);
        this.eos = settings.eosToken().map(ids::get).stream().mapToInt(Integer::intValue).toArray();
    }

    /** Loads {@code dir/tokenizer.json} (required) and {@code dir/tokenizer_config.json} (optional). */
    public static HfTokenizer load(Path dir) {
        Path json = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            throw new ModelLoadException(dir + " has no tokenizer.json");
        }
        return load(json, TokenizerSettings.load(dir));
    }

    private static HfTokenizer load(Path json, TokenizerSettings settings) {
        JsonNode root = JsonFields.read(json);
        Map<String, Integer> ids = vocabulary(json, root);
        String[] tokens = new String[ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1];
        ids.forEach((t, id) -> tokens[id] = t);
        DjlNativeLibrary.prepare();
        HuggingFaceTokenizer djl;
        try {
            djl = HuggingFaceTokenizer.newInstance(json, OPTIONS);
        } catch (IOException | RuntimeException e) {
            throw new ModelLoadException("cannot load tokenizer " + json + ": " + e.getMessage(), e);
        }
        return new HfTokenizer(djl, ids, tokens, settings);
    }

    /**
     * The byte-level BPE tokenizer of a GGUF file whose tokenizer.ggml.model is "gpt2" (BLOOM,
     * StarCoder, Qwen, Llama 3, ...): its vocabulary, merges and control tokens written as a
     * tokenizer.json for the same library. The pre-tokenizer is the one tokenizer.ggml.pre names;
     * those whose splitting rule is known here are listed in {@link #PRE_TOKENIZERS}.
     */
    public static HfTokenizer fromGguf(io.lightllm.models.gguf.GgufFile f) {
        String pre = f.has("tokenizer.ggml.pre") ? f.getString("tokenizer.ggml.pre") : "default";
        String split = PRE_TOKENIZERS.get(pre);
        if (split == null) {
            throw new ModelLoadException("GGUF pre-tokenizer '" + pre + "' in " + f.path() + " is not supported (supported: "
                    + String.join(", ", new java.util.TreeSet<>(PRE_TOKENIZERS.keySet())) + ")");
        }
        String[] tokens = f.getStringArray("tokenizer.ggml.tokens");
        int[] types = f.has("tokenizer.ggml.token_type") ? f.getIntArray("tokenizer.ggml.token_type") : new int[tokens.length];
        Map<Integer, Boolean> added = new java.util.TreeMap<>();
        for (int id = 0; id < tokens.length; id++) {
            if (types[id] == 3 || types[id] == 4) { // CONTROL (special), USER_DEFINED
                added.put(id, types[id] == 3);
            }
        }
        Optional<String> bos = tokenText(f, "tokenizer.ggml.bos_token_id", tokens), eos = tokenText(f, "tokenizer.ggml.eos_token_id", tokens);
        TokenizerSettings settings = new TokenizerSettings(Optional.of(f.getBoolean("tokenizer.ggml.add_bos_token", false)),
                Optional.of(f.getBoolean("tokenizer.ggml.add_eos_token", false)), bos, eos,
                f.has("tokenizer.chat_template") ? Optional.of(f.getString("tokenizer.chat_template")) : Optional.empty());
        return byteLevelBpe(tokens, added, java.util.Arrays.asList(f.getStringArray("tokenizer.ggml.merges")), split, pre.equals("qwen2"), settings,
                f.path().toString());
    }

    /**
     * Qwen v1's tokenizer (QWenTokenizer): qwen.tiktoken's 151,643 byte-level BPE tokens, then its special
     * tokens (&lt;|endoftext|&gt;, &lt;|im_start|&gt;, &lt;|im_end|&gt;, &lt;|extra_0|&gt; .. &lt;|extra_204|&gt;) from id 151,643 on,
     * Qwen's split rule and NFC normalisation, no BOS, &lt;|endoftext|&gt; as EOS, and ChatML as the chat template
     * where tokenizer_config.json gives none (Qwen's own code builds ChatML with that default system prompt).
     * Qwen-VL's (its config.json beside it has {@code visual}) adds its tags after those, as its tokenizer's IMAGE_ST:
     * &lt;ref&gt; &lt;/ref&gt; &lt;box&gt; &lt;/box&gt; &lt;quad&gt; &lt;/quad&gt; &lt;img&gt; &lt;/img&gt; &lt;imgpad&gt;
     * (Qwen-VL-Chat: &lt;img&gt; is 151,857, its config's visual.image_start_id).
     */
    public static HfTokenizer qwenTiktoken(Path dir) {
        TiktokenFile bpe = TiktokenFile.read(dir.resolve("qwen.tiktoken"));
        List<String> specials = new ArrayList<>(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>"));
        for (int i = 0; i < 205; i++) {
            specials.add("<|extra_" + i + "|>");
        }
        Path config = dir.resolve("config.json");
        if (java.nio.file.Files.isRegularFile(config) && JsonFields.read(config).path("visual").isObject()) {
            specials.addAll(List.of("<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>"));
        }
        String[] tokens = java.util.Arrays.copyOf(bpe.tokens(), bpe.tokens().length + specials.size());
        Map<Integer, Boolean> added = new java.util.TreeMap<>();
        for (int i = 0; i < specials.size(); i++) {
            tokens[bpe.tokens().length + i] = specials.get(i);
            added.put(bpe.tokens().length + i, true);
        }
        TokenizerSettings file = TokenizerSettings.load(dir);
        TokenizerSettings settings = new TokenizerSettings(Optional.of(false), Optional.of(false), Optional.empty(), Optional.of("<|endoftext|>"),
                file.chatTemplate().or(() -> Optional.of(CHATML)), file.tokenizerClass());
        return byteLevelBpe(tokens, added, bpe.merges(), PRE_TOKENIZERS.get("qwen2"), true, settings, dir.resolve("qwen.tiktoken").toString());
    }

    /** ChatML, as Qwen's make_context writes it, with its default system prompt. */
    static final String CHATML = "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
            + "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
            + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    /**
     * A byte-level BPE tokenizer (GPT-2's scheme) built from its parts as a tokenizer.json for the same
     * library: {@code tokens} by id, {@code added} the ids of added tokens (true: special), the merges in
     * order, the split rule ("" for GPT-2's own, inside the ByteLevel pre-tokenizer), NFC where the model wants it.
     */
    static HfTokenizer byteLevelBpe(String[] tokens, Map<Integer, Boolean> added, List<String> mergeList, String split, boolean nfc,
            TokenizerSettings settings, String source) {
        var json = JsonFields.mapper().createObjectNode();
        var model = json.putObject("model").put("type", "BPE").put("byte_fallback", false);
        var vocab = model.putObject("vocab");
        var addedTokens = json.putArray("added_tokens");
        for (int id = 0; id < tokens.length; id++) {
            vocab.put(tokens[id], id);
        }
        added.forEach((id, special) -> addedTokens.addObject().put("id", id).put("content", tokens[id]).put("single_word", false)
                .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", special));
        var merges = model.putArray("merges");
        mergeList.forEach(merges::add);
        var byteLevel = JsonFields.mapper().createObjectNode().put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", split.isEmpty());
        if (split.isEmpty()) {
            json.set("pre_tokenizer", byteLevel);
        } else {
            var seq = json.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
            seq.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false).putObject("pattern").put("Regex", split);
            seq.add(byteLevel);
        }
        if (nfc) {
            json.putObject("normalizer").put("type", "NFC");
        }
        json.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", true);
        try {
            Path file = Files.createTempFile("lightllm-tokenizer", ".json");
            try {
                Files.writeString(file, json.toString());
                return load(file, settings);
            } finally {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            throw new ModelLoadException("cannot build the tokenizer of " + source + ": " + e.getMessage(), e);
        }
    }

    /**
     * tokenizer.ggml.pre values and the split rule of their tokenizer.json ("": GPT-2's, inside the
     * ByteLevel pre-tokenizer). Others are refused rather than guessed. Qwen v1's tiktoken rule is qwen2's.
     */
    static final Map<String, String> PRE_TOKENIZERS = Map.of(
            "default", "", "gpt2", "",
            "llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            "qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");

    private static Optional<String> tokenText(io.lightllm.models.gguf.GgufFile f, String key, String[] tokens) {
        int id = SentencePieceBpeTokenizer.tokenId(f, key, tokens.length);
        return id == NO_TOKEN ? Optional.empty() : Optional.of(tokens[id]);
    }

    /** model.vocab (a map, or Unigram's list of [piece, score]) and added_tokens. */
    private static Map<String, Integer> vocabulary(Path json, JsonNode root) {
        Map<String, Integer> ids = new HashMap<>();
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.properties().iterator(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                ids.put(e.getKey(), e.getValue().asInt());
            }
        } else if (vocab.isArray()) {
            for (int i = 0; i < vocab.size(); i++) {
                ids.put(vocab.get(i).get(0).asText(), i);
            }
        } else {
            throw new ModelLoadException(json + " has no model.vocab");
        }
        for (JsonNode added : root.path("added_tokens")) {
            ids.put(added.path("content").asText(), added.path("id").asInt());
        }
        return ids;
    }

    public TokenizerSettings settings() {
        return settings;
    }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        boolean byFlags = addSpecial && (settings.addBosToken().isPresent() || settings.addEosToken().isPresent());
        long[] raw = djl.encode(text, addSpecial && !byFlags, false).getIds();
        if (!byFlags) {
            return toInts(raw, 0, 0);
        }
        int head = settings.addBosToken().orElse(false) && bos != NO_TOKEN ? 1 : 0;
        int tail = settings.addEosToken().orElse(false) && eos.length > 0 ? 1 : 0;
        int[] out = toInts(raw, head, tail);
        if (head == 1) {
            out[0] = bos;
        }
        if (tail == 1) {
            out[out.length - 1] = eos[0];
        }
        return out;
    }

    private static int[] toInts(long[] raw, int head, int tail) {
        int[] out = new int[raw.length + head + tail];
        for (int i = 0; i < raw.length; i++) {
            out[head + i] = (int) raw[i];
        }
        return out;
    }

    @Override
    public String decode(int[] ids, boolean skipSpecial) {
        long[] raw = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            raw[i] = ids[i];
        }
        return djl.decode(raw, skipSpecial);
    }

    @Override
    public int tokenToId(String token) {
        return ids.getOrDefault(token, NO_TOKEN);
    }

    @Override
    public String idToToken(int id) {
        if (id < 0 || id >= tokens.length || tokens[id] == null) {
            throw new IllegalArgumentException("token id " + id + " is not in the vocabulary (size " + tokens.length + ")");
        }
        return tokens[id];
    }

    @Override
    public int bosId() {
        return bos;
    }

    @Override
    public int[] eosIds() {
        return eos.clone();
    }

    @Override
    public int vocabSize() {
        return tokens.length;
    }

    @Override
    public Optional<String> chatTemplate() {
        return settings.chatTemplate();
    }

    @Override
    public void close() {
        djl.close();
    }
}
