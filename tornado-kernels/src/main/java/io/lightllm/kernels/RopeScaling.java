package io.lightllm.kernels;

import io.lightllm.tornado.api.FloatArray;
import java.util.Map;

/**
 * How a model scales its rotary frequencies: Hugging Face's {@code rope_scaling} /
 * {@code rope_parameters} types default, linear, dynamic (NTK) and llama3. Computes the
 * inverse-frequency table that {@link Rotary} reads, on the host, in double precision rounded
 * once to float (Hugging Face rounds each step to fp32, so its table may differ in the last
 * bit or two).
 *
 * @param type                 the scaling rule
 * @param theta                rope_theta, the base of the frequencies
 * @param factor               the scaling factor (1 for default)
 * @param originalMaxPositions the context length the model was trained on: llama3's
 *                             original_max_position_embeddings, dynamic NTK's max_position_embeddings
 * @param lowFreqFactor        llama3 only
 * @param highFreqFactor       llama3 only
 */
public record RopeScaling(Type type, double theta, double factor, int originalMaxPositions, double lowFreqFactor, double highFreqFactor) {

    public enum Type { DEFAULT, LINEAR, DYNAMIC, LLAMA3 }

    public RopeScaling {
        if (!(theta > 1)) {
            throw new IllegalArgumentException("rope theta must be > 1, got " + theta);
        }
        if (type != Type.DEFAULT && !(factor > 0)) {
            throw new IllegalArgumentException(type + " rope scaling needs a positive factor, got " + factor);
        }
        if ((type == Type.DYNAMIC || type == Type.LLAMA3) && originalMaxPositions <= 0) {
            throw new IllegalArgumentException(type + " rope scaling needs the original max positions, got " + originalMaxPositions);
        }
        if (type == Type.LLAMA3 && !(highFreqFactor > lowFreqFactor)) {
            throw new IllegalArgumentException("llama3 rope scaling needs high_freq_factor > low_freq_factor, got " + highFreqFactor
                    + " and " + lowFreqFactor);
        }
    }

    public static RopeScaling none(double theta) {
        return new RopeScaling(Type.DEFAULT, theta, 1, 0, 0, 0);
    }

    /** Positions divided by {@code factor}: every inverse frequency divided by it. */
    public static RopeScaling linear(double theta, double factor) {
        return new RopeScaling(Type.LINEAR, theta, factor, 0, 0, 0);
    }

    public static RopeScaling dynamicNtk(double theta, double factor, int maxPositionEmbeddings) {
        return new RopeScaling(Type.DYNAMIC, theta, factor, maxPositionEmbeddings, 0, 0);
    }

    public static RopeScaling llama3(double theta, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        return new RopeScaling(Type.LLAMA3, theta, factor, originalMaxPositions, lowFreqFactor, highFreqFactor);
    }

    /**
     * From a config's {@code rope_scaling} or {@code rope_parameters} object (null or empty:
     * no scaling), as parsed JSON: numbers as {@link Number}, the type under "rope_type" or
     * the older "type". Its "rope_theta", when present, wins over {@code theta} (the top-level
     * one of older configs).
     */
    public static RopeScaling fromConfig(Map<String, ?> params, double theta, int maxPositionEmbeddings) {
        if (params == null || params.isEmpty()) {
            return none(theta);
        }
        double base = params.containsKey("rope_theta") ? number(params, "rope_theta") : theta;
        Object type = params.containsKey("rope_type") ? params.get("rope_type") : params.get("type");
        String name = type == null ? "default" : type.toString();
        return switch (name) {
            case "default" -> none(base);
            case "linear" -> linear(base, number(params, "factor"));
            case "dynamic" -> dynamicNtk(base, number(params, "factor"), maxPositionEmbeddings);
            case "llama3" -> llama3(base, number(params, "factor"), number(params, "low_freq_factor"), number(params, "high_freq_factor"),
                    (int) number(params, "original_max_position_embeddings"));
            default -> throw new IllegalArgumentException("unsupported rope scaling type '" + name + "' (supported: default, linear, "
                    + "dynamic, llama3)");
        };
    }

    private static double number(Map<String, ?> params, String key) {
        if (!(params.get(key) instanceof Number n)) {
            throw new IllegalArgumentException("rope scaling parameter '" + key + "' must be a number, got " + params.get(key));
        }
        return n.doubleValue();
    }

    /**
     * invFreq[i] for i < rotaryDim / 2. {@code seqLen} is the longest sequence the table serves
     * (dynamic NTK grows the base beyond {@link #originalMaxPositions}; other types ignore it).
     */
    public FloatArray inverseFrequencies(int rotaryDim, int seqLen) {
        if (rotaryDim < 2 || rotaryDim % 2 != 0 || (type == Type.DYNAMIC && rotaryDim == 2)) {
            throw new IllegalArgumentException("rotary dimension must be even and positive (dynamic NTK: > 2), got " + rotaryDim);
        }
        double base = theta;
        if (type == Type.DYNAMIC && seqLen > originalMaxPositions) {
            base = theta * Math.pow(factor * seqLen / originalMaxPositions - (factor - 1), rotaryDim / (rotaryDim - 2.0));
        }
        FloatArray out = FloatArray.allocate(rotaryDim / 2);
        for (int i = 0; i < rotaryDim / 2; i++) {
            double inv = 1.0 / Math.pow(base, 2.0 * i / rotaryDim);
            out.set(i, (float) scale(inv));
        }
        return out;
    }

    private double scale(double inv) {
        return switch (type) {
            case DEFAULT, DYNAMIC -> inv;
            case LINEAR -> inv / factor;
            case LLAMA3 -> llama3Scale(inv);
        };
    }

    /**
     * Hugging Face's {@code _compute_llama3_parameters}: wavelengths shorter than
     * original / highFreqFactor keep their frequency, longer than original / lowFreqFactor are
     * divided by factor, and those between blend the two linearly in original / wavelength.
     */
    private double llama3Scale(double inv) {
        double wavelength = 2 * Math.PI / inv;
        double lowFreqWavelength = originalMaxPositions / lowFreqFactor;
        double highFreqWavelength = originalMaxPositions / highFreqFactor;
        if (wavelength < highFreqWavelength) {
            return inv;
        }
        if (wavelength > lowFreqWavelength) {
            return inv / factor;
        }
        double smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * inv / factor + smooth * inv;
    }

    /** The factor Hugging Face multiplies cos and sin by; 1 for every type supported here. */
    public float attentionScaling() {
        return 1f;
    }
}
