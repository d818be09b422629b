package io.lightllm.models.decoder;

import io.lightllm.models.config.ModelConfig;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * What makes a decoder architecture what it is, as data: the config keys it names differently,
 * its tensor names (Hugging Face's; {@code %d} in {@link #layerPrefix} is the layer number), and
 * which shared block it uses where architectures differ. {@link DecoderModel} runs any
 * declaration; {@link Architectures} holds them all. A layer is always pre-norm:
 *
 * <pre>
 * residual ─ inputNorm ─ attention ─ (+ residual) ─ postAttentionNorm ─ mlp ─ (+ residual)
 * </pre>
 *
 * @param modelType    config.json's model_type (the registry key); {@link #aliases} are other spellings
 * @param family       the name users know it by, for messages and docs
 * @param when         which checkpoints of the model_type this declaration is for (variants of one
 *                     model_type, as Baichuan's, are separate declarations)
 * @param hfClasses    the transformers / remote-code classes it stands for (documentation)
 * @param ggufName     llama.cpp's general.architecture for it, or null where GGUF files are not read
 * @param configKeys   config.json keys to rename to the ones {@link ModelConfig} reads, and values
 *                     implied when absent (biases the family always has)
 * @param norm         the normalisation of every norm of the model
 * @param embeddings   token embedding, optional learned positions and embedding norm
 * @param attention    how q, k and v are stored, how positions enter, the output projection
 * @param mlp          the MLP block
 * @param finalNorm    the norm before the head
 * @param lmHead       the head's name when it is not tied to the embedding
 * @param normalizedHead the head's rows are divided by their L2 norm (Baichuan2's NormHead)
 * @param vision       the vision tower whose image features the prompt's image tokens read, or null for a
 *                     text-only model ({@code io.lightllm.models.vision})
 */
public record Architecture(String modelType, List<String> aliases, String family, Predicate<ModelConfig> when,
                           List<String> hfClasses, String ggufName, ConfigKeys configKeys, NormKind norm,
                           Embeddings embeddings, String layerPrefix, String inputNorm, String postAttentionNorm,
                           AttentionSpec attention, MlpSpec mlp, String finalNorm, String lmHead, boolean normalizedHead,
                           VisionSpec vision) {

    public Architecture {
        aliases = List.copyOf(aliases);
        hfClasses = List.copyOf(hfClasses);
    }

    /** RMSNorm (weight) or LayerNorm (weight and bias). */
    public enum NormKind { RMS, LAYER }

    /** How token positions enter attention. */
    public enum Positions {
        /** Rotary embeddings on q and k (the part of each head config.partial_rotary_factor names). */
        ROTARY,
        /** ALiBi: a per-head linear bias on the scores (BLOOM, Baichuan-13B). */
        ALIBI,
        /** Learned absolute position embeddings added to the token embeddings (StarCoder). */
        LEARNED
    }

    /**
     * How a family's config.json maps to the keys {@link ModelConfig} reads: keys renamed (where the
     * target is absent), values implied when absent, then a last adjustment of values that differ
     * in meaning (Qwen-7B's intermediate_size is twice its MLP width).
     */
    public record ConfigKeys(Map<String, String> renamed, Map<String, Object> implied, UnaryOperator<ObjectNode> adjust) {
        public static final ConfigKeys NONE = new ConfigKeys(Map.of(), Map.of(), c -> c);

        public static ConfigKeys implied(Object... keyValues) {
            return new ConfigKeys(Map.of(), pairs(keyValues), c -> c);
        }

        public static ConfigKeys renamed(String... fromTo) {
            return NONE.rename(fromTo);
        }

        public ConfigKeys rename(String... fromTo) {
            Map<String, String> m = new java.util.LinkedHashMap<>(renamed);
            for (int i = 0; i < fromTo.length; i += 2) {
                m.put(fromTo[i], fromTo[i + 1]);
            }
            return new ConfigKeys(m, implied, adjust);
        }

        public ConfigKeys imply(Object... keyValues) {
            Map<String, Object> m = new java.util.LinkedHashMap<>(implied);
            m.putAll(pairs(keyValues));
            return new ConfigKeys(renamed, m, adjust);
        }

        public ConfigKeys adjust(UnaryOperator<ObjectNode> f) {
            return new ConfigKeys(renamed, implied, f);
        }

        private static Map<String, Object> pairs(Object... keyValues) {
            Map<String, Object> m = new java.util.LinkedHashMap<>();
            for (int i = 0; i < keyValues.length; i += 2) {
                m.put((String) keyValues[i], keyValues[i + 1]);
            }
            return m;
        }
    }

    /** @param positions learned position table, or null; @param norm a norm right after the embedding, or null */
    public record Embeddings(String tokens, String positions, String norm) {
        public static Embeddings tokens(String name) {
            return new Embeddings(name, null, null);
        }
    }

    /** q, k, v and output projections (names relative to the layer); qNorm/kNorm: per-head RMSNorms of q and k (Qwen3), or null. */
    public record AttentionSpec(Qkv qkv, String o, Positions positions, String qNorm, String kNorm) {
        public AttentionSpec(Qkv qkv, String o, Positions positions) {
            this(qkv, o, positions, null, null);
        }

        public AttentionSpec withPositions(Positions p) {
            return new AttentionSpec(qkv, o, p, qNorm, kNorm);
        }
    }

    /** How q, k and v are stored. */
    public sealed interface Qkv {
        /** Three matrices. */
        record Separate(String q, String k, String v) implements Qkv {
        }

        /** One matrix of rows [all q; all k; all v] (Baichuan's W_pack, StarCoder's and Qwen's c_attn). */
        record Stacked(String name) implements Qkv {
        }

        /** One matrix of rows [q, k, v] for each head in turn (BLOOM's query_key_value). */
        record PerHead(String name) implements Qkv {
        }
    }

    /** The MLP block. */
    public sealed interface MlpSpec {
        /** down(act(gate(x)) · up(x)) (Llama). */
        record Gated(String gate, String up, String down) implements MlpSpec {
        }

        /** Gated, with gate and up stacked in one matrix [gate rows; up rows] (ChatGLM2's dense_h_to_4h). */
        record GatedStacked(String gateUp, String down) implements MlpSpec {
        }

        /** proj(act(fc(x))) (BLOOM, StarCoder). */
        record Plain(String fc, String proj) implements MlpSpec {
        }

        /**
         * A router over experts, each a gated MLP (Mixtral): {@code experts} has {@code %d} for the
         * expert number; gate, up and down are relative to it.
         */
        record Experts(String router, String experts, String gate, String up, String down) implements MlpSpec {
        }
    }

    public String layerPrefix(int layer) {
        return layerPrefix.formatted(layer);
    }

    /** Whether this declaration reads {@code c}: its model_type and its {@link #when}. */
    public boolean reads(String type, ModelConfig c) {
        return (modelType.equals(type) || aliases.contains(type)) && (c == null || when.test(c));
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    public static Builder builder(String modelType, String family) {
        return new Builder(new Architecture(modelType, List.of(), family, c -> true, List.of(), null, ConfigKeys.NONE, NormKind.RMS,
                null, null, null, null, null, null, null, null, false, null));
    }

    /**
     * A vision tower in front of the language model. {@link Tower#CLIP} (Llava): the tensors of a CLIP vision
     * transformer under {@code tower} and an MLP projector under {@code projector}, configured by config.json's
     * vision_config (image size, patches, the feature layer). {@link Tower#QWEN_VL}: Qwen-VL's ViT and Resampler
     * under {@code tower} (no separate projector), configured by config.json's visual; images sit between its
     * {@code <img>} and {@code </img>} tokens.
     */
    public record VisionSpec(Tower kind, String tower, String projector) {
        public enum Tower { CLIP, QWEN_VL }

        /** A CLIP tower and projector (Llava). */
        public VisionSpec(String tower, String projector) {
            this(Tower.CLIP, tower, projector);
        }
    }

    /** Declarations are written as a builder, or as a copy of another one with a few fields changed. */
    public static final class Builder {
        private String modelType, family, ggufName, layerPrefix, inputNorm, postAttentionNorm, finalNorm, lmHead;
        private List<String> aliases, hfClasses;
        private Predicate<ModelConfig> when;
        private ConfigKeys configKeys;
        private NormKind norm;
        private Embeddings embeddings;
        private AttentionSpec attention;
        private MlpSpec mlp;
        private boolean normalizedHead;
        private VisionSpec vision;

        private Builder(Architecture a) {
            modelType = a.modelType;
            aliases = a.aliases;
            family = a.family;
            when = a.when;
            hfClasses = a.hfClasses;
            ggufName = a.ggufName;
            configKeys = a.configKeys;
            norm = a.norm;
            embeddings = a.embeddings;
            layerPrefix = a.layerPrefix;
            inputNorm = a.inputNorm;
            postAttentionNorm = a.postAttentionNorm;
            attention = a.attention;
            mlp = a.mlp;
            finalNorm = a.finalNorm;
            lmHead = a.lmHead;
            normalizedHead = a.normalizedHead;
            vision = a.vision;
        }

        public Builder modelType(String type, String familyName, String... otherSpellings) {
            modelType = type;
            family = familyName;
            aliases = List.of(otherSpellings);
            return this;
        }

        public Builder when(Predicate<ModelConfig> p) {
            when = p;
            return this;
        }

        public Builder hfClasses(String... names) {
            hfClasses = List.of(names);
            return this;
        }

        public Builder gguf(String name) {
            ggufName = name;
            return this;
        }

        public Builder configKeys(ConfigKeys keys) {
            configKeys = keys;
            return this;
        }

        public Builder norm(NormKind kind) {
            norm = kind;
            return this;
        }

        public Builder embeddings(Embeddings e) {
            embeddings = e;
            return this;
        }

        /** The layer prefix ({@code %d}: layer number) and its two norms. */
        public Builder layers(String prefix, String inputNormName, String postAttentionNormName) {
            layerPrefix = prefix;
            inputNorm = inputNormName;
            postAttentionNorm = postAttentionNormName;
            return this;
        }

        public Builder attention(AttentionSpec spec) {
            attention = spec;
            return this;
        }

        public Builder mlp(MlpSpec spec) {
            mlp = spec;
            return this;
        }

        public Builder head(String finalNormName, String lmHeadName) {
            finalNorm = finalNormName;
            lmHead = lmHeadName;
            return this;
        }

        public Builder normalizedHead() {
            normalizedHead = true;
            return this;
        }

        public Builder vision(VisionSpec spec) {
            vision = spec;
            return this;
        }

        public Architecture build() {
            return new Architecture(modelType, aliases, family, when, hfClasses, ggufName, configKeys, norm, embeddings, layerPrefix,
                    inputNorm, postAttentionNorm, attention, mlp, finalNorm, lmHead, normalizedHead, vision);
        }
    }
}
