package io.lightllm.models.tokenizer;

import io.lightllm.models.ModelLoadException;
import io.lightllm.models.gguf.GgufFile;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.PriorityQueue;

/**
 * Llama's SentencePiece BPE tokenizer from a GGUF file's tokenizer.ggml.* metadata (tokens,
 * scores, token types), so that a .gguf file alone is enough.
 *
 * <p>Encoding follows SentencePiece (as llama.cpp and llama2.c do): special-token strings are cut
 * out first; each other piece of text gets a leading space (the "dummy prefix"), spaces become
 * '▁', the text is split into characters (a character missing from the vocabulary becomes its
 * UTF-8 bytes, as &lt;0xXX&gt; tokens), and then the adjacent pair whose concatenation is the
 * vocabulary entry with the highest score is merged, leftmost first on ties, until none is left.
 * Decoding mirrors Hugging Face's decoder for these tokenizers: '▁' to space, runs of byte tokens
 * to UTF-8 (one U+FFFD per byte if a run is not valid UTF-8), and one leading space removed.
 */
public final class SentencePieceBpeTokenizer implements Tokenizer {
    /** llama.cpp's token types (tokenizer.ggml.token_type). */
    private static final int UNKNOWN = 2;
    private static final int CONTROL = 3;
    private static final int USER_DEFINED = 4;
    private static final int BYTE = 6;

    private final String[] tokens;
    private final float[] scores;
    private final int[] types;
    private final Map<String, Integer> ids = new HashMap<>();
    private final int[] byteIds = new int[256];
    /** Strings matched as whole tokens before BPE, longest first. */
    private final List<String> specials = new ArrayList<>();
    private final int bos;
    private final int unk;
    private final int[] eos;
    private final boolean addBos;
    private final boolean addEos;
    private final boolean addSpacePrefix;
    private final Optional<String> chatTemplate;
    /** Tokens that start every sequence encoded with special tokens, after BOS (ChatGLM2's [gMASK] sop). */
    private final int[] prefix;

    private SentencePieceBpeTokenizer(String[] tokens, float[] scores, int[] types, int bos, int unk, int[] eos,
                                      boolean addBos, boolean addEos, boolean addSpacePrefix, Optional<String> chatTemplate) {
        this(tokens, scores, types, bos, unk, eos, addBos, addEos, addSpacePrefix, chatTemplate, new int[0]);
    }

    private SentencePieceBpeTokenizer(String[] tokens, float[] scores, int[] types, int bos, int unk, int[] eos,
                                      boolean addBos, boolean addEos, boolean addSpacePrefix, Optional<String> chatTemplate, int[] prefix) {
        this.prefix = prefix.clone();
        this.tokens = tokens;
        this.scores = scores;
        this.types = types;
        this.bos = bos;
        this.unk = unk;
        this.eos = eos;
        this.addBos = addBos;
        this.addEos = addEos;
        this.addSpacePrefix = addSpacePrefix;
        this.chatTemplate = chatTemplate;
        Arrays.fill(byteIds, NO_TOKEN);
        for (int id = 0; id < tokens.length; id++) {
            ids.putIfAbsent(tokens[id], id);
            if (types[id] == BYTE) {
                byteIds[byteOf(tokens[id])] = id;
            } else if ((types[id] == CONTROL || types[id] == USER_DEFINED || types[id] == UNKNOWN) && !tokens[id].isEmpty()) {
                specials.add(tokens[id]);
            }
        }
        specials.sort(Comparator.comparingInt(String::length).reversed());
    }

    /** The tokenizer of a GGUF file whose tokenizer.ggml.model is "llama". */
    public static SentencePieceBpeTokenizer fromGguf(GgufFile f) {
        String model = f.getString("tokenizer.ggml.model");
        if (!model.equals("llama")) {
            throw new ModelLoadException("GGUF tokenizer model '" + model + "' in " + f.path()
                    + " is not supported (supported: llama, SentencePiece BPE)");
        }
        String[] tokens = f.getStringArray("tokenizer.ggml.tokens");
        float[] scores = f.getFloatArray("tokenizer.ggml.scores");
        int[] types = f.getIntArray("tokenizer.ggml.token_type");
        if (scores.length != tokens.length || types.length != tokens.length) {
            throw new ModelLoadException("GGUF tokenizer in " + f.path() + " has " + tokens.length + " tokens but "
                    + scores.length + " scores and " + types.length + " token types");
        }
        List<Integer> eos = new ArrayList<>();
        for (String key : new String[] {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
            int id = tokenId(f, key, tokens.length);
            if (id != NO_TOKEN && !eos.contains(id)) {
                eos.add(id);
            }
        }
        return new SentencePieceBpeTokenizer(tokens, scores, types, tokenId(f, "tokenizer.ggml.bos_token_id", tokens.length),
                tokenId(f, "tokenizer.ggml.unknown_token_id", tokens.length), eos.stream().mapToInt(Integer::intValue).toArray(),
                f.getBoolean("tokenizer.ggml.add_bos_token", true), f.getBoolean("tokenizer.ggml.add_eos_token", false),
                f.getBoolean("tokenizer.ggml.add_space_prefix", true),
                f.has("tokenizer.chat_template") ? Optional.of(f.getString("tokenizer.chat_template")) : Optional.empty());
    }

    /**
     * The tokenizer of a directory that ships a SentencePiece {@code tokenizer.model} and no
     * tokenizer.json (Baichuan, ChatGLM2): pieces, scores and types from the model file; bos/eos
     * and whether to add them from tokenizer_config.json where it says, else from the model file.
     */
    public static SentencePieceBpeTokenizer fromModelFile(Path dir) {
        Path file = dir.resolve("tokenizer.model");
        SentencePieceModelFile m = SentencePieceModelFile.read(file);
        if (m.modelType() != SentencePieceModelFile.BPE) {
            throw new ModelLoadException(file + " is a SentencePiece model of type " + m.modelType()
                    + " (1 = unigram); only BPE models (type 2) are supported");
        }
        TokenizerSettings settings = TokenizerSettings.load(dir);
        if (settings.tokenizerClass().filter(CHATGLM_TOKENIZER::equals).isPresent()) {
            return chatGlm(m, settings);
        }
        String[] tokens = m.pieces().toArray(String[]::new);
        Map<String, Integer> byText = new HashMap<>();
        for (int i = tokens.length - 1; i >= 0; i--) {
            byText.put(tokens[i], i);
        }
        int bos = settings.bosToken().map(t -> byText.getOrDefault(t, NO_TOKEN)).orElse(inRange(m.bosId(), tokens.length));
        int eos = settings.eosToken().map(t -> byText.getOrDefault(t, NO_TOKEN)).orElse(inRange(m.eosId(), tokens.length));
        return new SentencePieceBpeTokenizer(tokens, m.scores(), m.types(), bos, inRange(m.unkId(), tokens.length),
                eos == NO_TOKEN ? new int[0] : new int[] {eos}, settings.addBosToken().orElse(true), settings.addEosToken().orElse(false),
                m.addDummyPrefix(), settings.chatTemplate());
    }

    private static final String CHATGLM_TOKENIZER = "ChatGLMTokenizer";
    /** ChatGLM2's tokenization_chatglm.py: appended after the model's pieces, in this order. */
    private static final List<String> CHATGLM_SPECIALS = List.of("[MASK]", "[gMASK]", "[sMASK]", "sop", "eop");
    /** Its prompt format ("[Round n]\n\n问：...\n\n答："), as a chat template; system messages are dropped as there. */
    private static final String CHATGLM_TEMPLATE = "{% set ns = namespace(round=0) %}{% for m in messages %}"
            + "{% if m.role == 'user' %}{% set ns.round = ns.round + 1 %}[Round {{ ns.round }}]\n\n问：{{ m.content }}\n\n答："
            + "{% elif m.role == 'assistant' %}{{ m.content }}\n\n{% endif %}{% endfor %}";

    /**
     * ChatGLM2's tokenizer (its tokenizer_config.json names ChatGLMTokenizer): the SentencePiece model
     * plus five special tokens at ids vocab, vocab + 1, ...; every sequence starts with [gMASK] sop
     * and no BOS; EOS is the model's.
     */
    private static SentencePieceBpeTokenizer chatGlm(SentencePieceModelFile m, TokenizerSettings settings) {
        int n = m.pieces().size();
        String[] tokens = java.util.stream.Stream.concat(m.pieces().stream(), CHATGLM_SPECIALS.stream()).toArray(String[]::new);
        float[] scores = Arrays.copyOf(m.scores(), tokens.length);
        int[] types = Arrays.copyOf(m.types(), tokens.length);
        Arrays.fill(types, n, tokens.length, CONTROL);
        int eos = inRange(m.eosId(), n);
        int[] prefix = {n + CHATGLM_SPECIALS.indexOf("[gMASK]"), n + CHATGLM_SPECIALS.indexOf("sop")};
        return new SentencePieceBpeTokenizer(tokens, scores, types, NO_TOKEN, inRange(m.unkId(), n), eos == NO_TOKEN ? new int[0] : new int[] {eos},
                false, false, m.addDummyPrefix(), settings.chatTemplate().or(() -> Optional.of(CHATGLM_TEMPLATE)), prefix);
    }

    private static int inRange(int id, int vocabSize) {
        return id >= 0 && id < vocabSize ? id : NO_TOKEN;
    }

    /** A token id key; absent, or out of range (llama.cpp writes uint32 -1 for "none"), is NO_TOKEN. */
    static int tokenId(GgufFile f, String key, int vocabSize) {
        if (!f.has(key)) {
            return NO_TOKEN;
        }
        long id = ((Number) f.metadata().get(key)).longValue();
        return id >= 0 && id < vocabSize ? (int) id : NO_TOKEN;
    }

    private static int byteOf(String token) {
        if (token.length() != 6 || !token.startsWith("<0x") || !token.endsWith(">")) {
            throw new ModelLoadException("byte token '" + token + "' is not of the form <0xXX>");
        }
        return Integer.parseInt(token.substring(3, 5), 16);
    }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        List<Integer> out = new ArrayList<>();
        if (addSpecial && addBos && bos != NO_TOKEN) {
            out.add(bos);
        }
        for (int i = 0; addSpecial && i < prefix.length; i++) {
            out.add(prefix[i]);
        }
        boolean afterSpecial = true;
        int start = 0;
        for (int i = 0; i < text.length(); ) {
            String special = specialAt(text, i);
            if (special == null) {
                i++;
                continue;
            }
            if (i > start) {
                encodePiece(text.substring(start, i), afterSpecial, out);
            }
            out.add(ids.get(special));
            afterSpecial = true;
            i += special.length();
            start = i;
        }
        if (start < text.length()) {
            encodePiece(text.substring(start), afterSpecial, out);
        }
        if (addSpecial && addEos && eos.length > 0) {
            out.add(eos[0]);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private String specialAt(String text, int i) {
        for (String s : specials) {
            if (text.startsWith(s, i)) {
                return s;
            }
        }
        return null;
    }

    /** BPE over one piece of text between special tokens. */
    private void encodePiece(String text, boolean prefixSpace, List<Integer> out) {
        String normalized = ((addSpacePrefix && prefixSpace ? " " : "") + text).replace(' ', '▁');
        List<Symbol> symbols = new ArrayList<>();
        normalized.codePoints().forEach(cp -> {
            String ch = Character.toString(cp);
            Integer id = ids.get(ch);
            if (id != null) {
                symbols.add(new Symbol(ch, id, true));
            } else {
                for (byte b : ch.getBytes(StandardCharsets.UTF_8)) {
                    int byteId = byteIds[b & 0xff];
                    symbols.add(new Symbol(null, byteId != NO_TOKEN ? byteId : unk, false));
                }
            }
        });
        merge(symbols);
        for (Symbol s : symbols) {
            if (s.alive) {
                out.add(s.id);
            }
        }
    }

    private static final class Symbol {
        String text;
        int id;
        final boolean mergeable;
        boolean alive = true;
        int prev;
        int next;

        Symbol(String text, int id, boolean mergeable) {
            this.text = text;
            this.id = id;
            this.mergeable = mergeable;
        }
    }

    /** A possible merge of symbols left and right into token id; stale once either symbol has grown. */
    private record Candidate(int left, int right, float score, int id, int length) {
    }

    private void merge(List<Symbol> symbols) {
        int n = symbols.size();
        for (int i = 0; i < n; i++) {
            symbols.get(i).prev = i - 1;
            symbols.get(i).next = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Candidate> queue = new PriorityQueue<>(
                Comparator.comparingDouble((Candidate c) -> -c.score()).thenComparingInt(Candidate::left));
        for (int i = 0; i + 1 < n; i++) {
            offer(symbols, i, i + 1, queue);
        }
        while (!queue.isEmpty()) {
            Candidate c = queue.poll();
            Symbol l = symbols.get(c.left());
            Symbol r = symbols.get(c.right());
            if (!l.alive || !r.alive || l.next != c.right() || l.text.length() + r.text.length() != c.length()) {
                continue;
            }
            l.text = l.text + r.text;
            l.id = c.id();
            r.alive = false;
            l.next = r.next;
            if (r.next != -1) {
                symbols.get(r.next).prev = c.left();
            }
            if (l.prev != -1) {
                offer(symbols, l.prev, c.left(), queue);
            }
            if (l.next != -1) {
                offer(symbols, c.left(), l.next, queue);
            }
        }
    }

    private void offer(List<Symbol> symbols, int left, int right, PriorityQueue<Candidate> queue) {
        Symbol l = symbols.get(left);
        Symbol r = symbols.get(right);
        if (!l.mergeable || !r.mergeable) {
            return;
        }
        String joined = l.text + r.text;
        Integer id = ids.get(joined);
        if (id != null) {
            queue.add(new Candidate(left, right, scores[id], id, joined.length()));
        }
    }

    @Override
    public String decode(int[] tokenIds, boolean skipSpecial) {
        StringBuilder text = new StringBuilder();
        ByteArrayOutputStream byteRun = new ByteArrayOutputStream();
        for (int id : tokenIds) {
            checkId(id);
            if (skipSpecial && (types[id] == CONTROL || types[id] == UNKNOWN)) {
                continue;
            }
            if (types[id] == BYTE) {
                byteRun.write(byteOf(tokens[id]));
                continue;
            }
            flushBytes(byteRun, text);
            text.append(tokens[id].replace('▁', ' '));
        }
        flushBytes(byteRun, text);
        return addSpacePrefix && !text.isEmpty() && text.charAt(0) == ' ' ? text.substring(1) : text.toString();
    }

    /** A run of byte tokens: its UTF-8 text, or one U+FFFD per byte when it is not valid UTF-8 (as HF's ByteFallback). */
    private static void flushBytes(ByteArrayOutputStream run, StringBuilder text) {
        if (run.size() == 0) {
            return;
        }
        try {
            text.append(StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(run.toByteArray())));
        } catch (CharacterCodingException e) {
            text.append("\uFFFD".repeat(run.size()));
        }
        run.reset();
    }

    private void checkId(int id) {
        if (id < 0 || id >= tokens.length) {
            throw new IllegalArgumentException("token id " + id + " is not in the vocabulary (size " + tokens.length + ")");
        }
    }

    @Override
    public int tokenToId(String token) {
        return ids.getOrDefault(token, NO_TOKEN);
    }

    @Override
    public String idToToken(int id) {
        checkId(id);
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
        return chatTemplate;
    }
}
