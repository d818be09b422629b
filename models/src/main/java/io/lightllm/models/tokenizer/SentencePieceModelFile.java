package io.lightllm.models.tokenizer;

import io.lightllm.models.ModelLoadException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a SentencePiece {@code tokenizer.model} (a serialised {@code ModelProto},
 * sentencepiece_model.proto) that a BPE tokenizer needs: each piece's text, score and type, the
 * model type and the special ids of its TrainerSpec, and add_dummy_prefix of its NormalizerSpec.
 * What Baichuan and ChatGLM2 ship instead of a tokenizer.json.
 */
record SentencePieceModelFile(List<String> pieces, float[] scores, int[] types, int modelType, int unkId, int bosId, int eosId,
                              boolean addDummyPrefix) {
    /** TrainerSpec.model_type: 1 unigram, 2 BPE. */
    static final int BPE = 2;

    static SentencePieceModelFile read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelLoadException("cannot read " + file + ": " + e.getMessage(), e);
        }
        try {
            return parse(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
        } catch (RuntimeException e) {
            throw new ModelLoadException(file + " is not a SentencePiece model: " + e.getMessage(), e);
        }
    }

    private static SentencePieceModelFile parse(ByteBuffer in) {
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        // proto defaults: model_type UNIGRAM, unk 0, bos 1, eos 2, add_dummy_prefix true
        int[] trainer = {1, 0, 1, 2};
        boolean addDummyPrefix = true;
        while (in.hasRemaining()) {
            long key = varint(in);
            int field = (int) (key >>> 3), wire = (int) (key & 7);
            if (field == 1 && wire == 2) { // repeated SentencePiece pieces
                ByteBuffer piece = sub(in);
                String text = "";
                float score = 0f;
                int type = 1; // NORMAL
                while (piece.hasRemaining()) {
                    long k = varint(piece);
                    switch ((int) (k >>> 3)) {
                        case 1 -> text = StandardCharsets.UTF_8.decode(sub(piece)).toString();
                        case 2 -> score = piece.getFloat();
                        case 3 -> type = (int) varint(piece);
                        default -> skip(piece, (int) (k & 7));
                    }
                }
                pieces.add(text);
                scores.add(score);
                types.add(type);
            } else if (field == 2 && wire == 2) { // TrainerSpec
                ByteBuffer spec = sub(in);
                while (spec.hasRemaining()) {
                    long k = varint(spec);
                    int f = (int) (k >>> 3);
                    if ((f == 3 || f == 40 || f == 41 || f == 42) && (k & 7) == 0) {
                        long v = varint(spec);
                        trainer[f == 3 ? 0 : f - 39] = (int) v; // -1 (none) arrives as a 64-bit varint
                    } else {
                        skip(spec, (int) (k & 7));
                    }
                }
            } else if (field == 3 && wire == 2) { // NormalizerSpec
                ByteBuffer spec = sub(in);
                while (spec.hasRemaining()) {
                    long k = varint(spec);
                    if ((k >>> 3) == 3 && (k & 7) == 0) {
                        addDummyPrefix = varint(spec) != 0;
                    } else {
                        skip(spec, (int) (k & 7));
                    }
                }
            } else {
                skip(in, wire);
            }
        }
        if (pieces.isEmpty()) {
            throw new IllegalArgumentException("no pieces");
        }
        float[] s = new float[scores.size()];
        int[] t = new int[types.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = scores.get(i);
            t[i] = types.get(i);
        }
        return new SentencePieceModelFile(pieces, s, t, trainer[0], trainer[1], trainer[2], trainer[3], addDummyPrefix);
    }

    private static long varint(ByteBuffer in) {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            byte b = in.get();
            v |= (long) (b & 0x7f) << shift;
            if (b >= 0) {
                return v;
            }
        }
        throw new IllegalArgumentException("varint longer than 10 bytes");
    }

    private static ByteBuffer sub(ByteBuffer in) {
        int n = (int) varint(in);
        ByteBuffer part = in.slice(in.position(), n).order(ByteOrder.LITTLE_ENDIAN);
        in.position(in.position() + n);
        return part;
    }

    private static void skip(ByteBuffer in, int wire) {
        switch (wire) {
            case 0 -> varint(in);
            case 1 -> in.position(in.position() + 8);
            case 2 -> sub(in);
            case 5 -> in.position(in.position() + 4);
            default -> throw new IllegalArgumentException("wire type " + wire);
        }
    }
}
