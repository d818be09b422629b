package io.lightllm.models.decoder;

/** Rows (or columns) {@code [from, from + count)} of a matrix. */
public record Range(int from, int count) {
    public static Range all(int count) {
        return new Range(0, count);
    }

    /** The same rows {@code offset} further on (a part of a stacked tensor). */
    public Range shifted(int offset) {
        return new Range(from + offset, count);
    }
}
