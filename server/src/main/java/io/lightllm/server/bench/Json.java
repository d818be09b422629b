package io.lightllm.server.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** JSON numbers for the report: NaN and infinity are not JSON, so they are written as null (and the infinite rate as "inf"). */
final class Json {
    private Json() {
    }

    static void put(ObjectNode out, String field, double value) {
        if (Double.isFinite(value)) {
            out.put(field, value);
        } else {
            out.putNull(field);
        }
    }

    static void putRate(ObjectNode out, String field, double rate) {
        if (Double.isInfinite(rate)) {
            out.put(field, "inf");
        } else {
            out.put(field, rate);
        }
    }
}
