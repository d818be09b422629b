package io.lightllm.engine;

import java.util.Arrays;

/** A growable list of ints without boxing (token ids, KV slots). */
final class IntSequence {
    private int[] values;
    private int size;

    IntSequence(int capacity) {
        values = new int[Math.max(4, capacity)];
    }

    void add(int v) {
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
        }
        values[size++] = v;
    }

    void addAll(int[] vs) {
        for (int v : vs) {
            add(v);
        }
    }

    int get(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("index " + i + " of " + size);
        }
        return values[i];
    }

    int last() {
        return get(size - 1);
    }

    int size() {
        return size;
    }

    void clear() {
        size = 0;
    }

    int[] toArray() {
        return Arrays.copyOf(values, size);
    }

    int[] range(int from, int to) {
        return Arrays.copyOfRange(values, from, to);
    }
}
