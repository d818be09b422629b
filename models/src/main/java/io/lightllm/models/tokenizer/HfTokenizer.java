package io.lightllm.models.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.config.JsonFields;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
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
        return new HfTokenizer(djl, ids, tokens, TokenizerSettings.load(dir));
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
