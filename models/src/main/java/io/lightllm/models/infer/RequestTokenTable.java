package io.lightllm.models.infer;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Rows of token slots on the device, one row per running request (LightLLM's
 * {@code req_to_token_indexs}): attention kernels find a request's K/V through its row. The
 * rows are written by the forward pass itself (the scatter of each step's new slots).
 */
public final class RequestTokenTable implements AutoCloseable {
    private final java.util.List<AutoCloseable> companions = new java.util.ArrayList<>();
    private final DeviceBuffer table;
    private final int maxRequests;
    private final int maxLen;
    private final Deque<Integer> freeRows = new ArrayDeque<>();

    public RequestTokenTable(Device device, int maxRequests, int maxLen) {
        this.maxRequests = maxRequests;
        this.maxLen = maxLen;
        this.table = device.allocate(DType.I32, (long) maxRequests * maxLen);
        for (int r = 0; r < maxRequests; r++) {
            freeRows.add(r);
        }
    }

    /** A free row, or -1 when every row is in use. */
    public synchronized int acquire() {
        Integer r = freeRows.poll();
        return r == null ? -1 : r;
    }

    public synchronized void release(int row) {
        if (row < 0 || row >= maxRequests || freeRows.contains(row)) {
            throw new IllegalStateException("row " + row + " is not in use");
        }
        freeRows.addFirst(row);
    }

    public synchronized int freeRows() {
        return freeRows.size();
    }

    public DeviceBuffer buffer() {
        return table;
    }

    public int maxRequests() {
        return maxRequests;
    }

    /** Tokens one request can hold (the row length). */
    public int maxLen() {
        return maxLen;
    }

    /**
     * Closes {@code companion} with this object: what a tensor-parallel model keeps on its other
     * ranks' devices beside this rank-0 object (their pools or copies of the table).
     */
    public synchronized void closeWith(AutoCloseable companion) {
        companions.add(companion);
    }

    @Override
    public void close() {
        table.close();
        for (AutoCloseable c : companions) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing a companion of " + this + " failed", e);
            }
        }
    }
}
