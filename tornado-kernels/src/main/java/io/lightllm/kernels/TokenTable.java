package io.lightllm.kernels;

import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.api.Parallel;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Grid;
import io.lightllm.tornado.runtime.KernelRef;

/**
 * The request-to-token table of Token Attention (LightLLM's {@code req_to_token_indexs}): row r
 * lists the KV pool slot of every token of the request in row r. Each step writes the slots of
 * its new tokens with one scatter instead of one host copy per request.
 */
public final class TokenTable {
    public static final KernelRef SCATTER = KernelRef.of(TokenTable.class, "scatterSlots");

    private TokenTable() {
    }

    /** table[rows[t] * maxLen + positions[t]] = slots[t] for each new token t. */
    public static void scatterSlots(IntArray table, IntArray rows, IntArray positions, IntArray slots, int tokens, int maxLen) {
        for (@Parallel int t = 0; t < tokens; t++) {
            table.set(rows.get(t) * maxLen + positions.get(t), slots.get(t));
        }
    }

    public static void launchScatter(Device device, DeviceBuffer table, DeviceBuffer rows, DeviceBuffer positions, DeviceBuffer slots,
            int tokens, int maxLen) {
        device.launch(SCATTER, Grid.of(Math.max(1, tokens)), table, rows, positions, slots, tokens, maxLen);
    }
}
