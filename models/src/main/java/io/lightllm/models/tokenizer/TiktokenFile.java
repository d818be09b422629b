package io.lightllm.models.tokenizer;

import io.lightllm.models.ModelLoadException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A tiktoken BPE file (a line "base64(token bytes) rank" per token, as Qwen v1 ships qwen.tiktoken and
 * OpenAI's encodings are stored) read as the vocabulary and merges of a byte-level BPE tokenizer.json.
 * tiktoken has no merge list: a token's rank orders it, and encoding merges the adjacent pair whose
 * concatenation ranks lowest. That is byte-level BPE whose merge of rank r is the pair that BPE over
 * the token's bytes with only the ranks below r leaves (as transformers' TikTokenConverter derives it),
 * so the same library runs both.
 *
 * @param tokens byte-level strings (GPT-2's byte-to-unicode map) by rank, which is the id
 * @param merges "left right" in rank order
 */
record TiktokenFile(String[] tokens, List<String> merges) {

    static TiktokenFile read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new ModelLoadException("cannot read " + file + ": " + e.getMessage(), e);
        }
        // token bytes as ISO-8859-1 strings: one char a byte, so they work as map keys and concatenate
        Map<String, Integer> ranks = new HashMap<>();
        List<String> byRank = new ArrayList<>();
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            String[] parts = line.trim().split(" ");
            int rank;
            byte[] bytes;
            try {
                bytes = Base64.getDecoder().decode(parts[0]);
                rank = Integer.parseInt(parts[1]);
            } catch (RuntimeException e) {
                throw new ModelLoadException(file + ": '" + line + "' is not a tiktoken line (base64 token, space, rank)");
            }
            if (rank != byRank.size()) {
                throw new ModelLoadException(file + ": ranks must run 0, 1, 2, ... in order; found " + rank + " at line " + (byRank.size() + 1));
            }
            String token = new String(bytes, StandardCharsets.ISO_8859_1);
            ranks.put(token, rank);
            byRank.add(token);
        }
        String[] tokens = new String[byRank.size()];
        List<String> merges = new ArrayList<>();
        for (int rank = 0; rank < tokens.length; rank++) {
            String token = byRank.get(rank);
            tokens[rank] = byteLevel(token);
            if (token.length() > 1) {
                List<String> pair = bpe(token, ranks, rank);
                if (pair.size() != 2) {
                    throw new ModelLoadException(file + ": token of rank " + rank + " is not the merge of two lower-ranked tokens");
                }
                merges.add(byteLevel(pair.get(0)) + " " + byteLevel(pair.get(1)));
            }
        }
        return new TiktokenFile(tokens, merges);
    }

    /** tiktoken's byte-pair merge of {@code bytes}, using only the ranks below {@code maxRank}. */
    static List<String> bpe(String bytes, Map<String, Integer> ranks, int maxRank) {
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < bytes.length(); i++) {
            parts.add(bytes.substring(i, i + 1));
        }
        while (true) {
            int best = -1, bestRank = maxRank;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer r = ranks.get(parts.get(i) + parts.get(i + 1));
                if (r != null && r < bestRank) {
                    best = i;
                    bestRank = r;
                }
            }
            if (best < 0) {
                return parts;
            }
            parts.set(best, parts.get(best) + parts.remove(best + 1));
        }
    }

    /** GPT-2's byte-to-unicode map applied to bytes held one a char: printable bytes stay, the others become U+0100 onwards. */
    static String byteLevel(String bytes) {
        StringBuilder out = new StringBuilder(bytes.length());
        for (int i = 0; i < bytes.length(); i++) {
            out.append(BYTE_TO_UNICODE[bytes.charAt(i)]);
        }
        return out.toString();
    }

    private static final char[] BYTE_TO_UNICODE = new char[256];

    static {
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
            BYTE_TO_UNICODE[b] = printable ? (char) b : (char) next++;
        }
    }
}
